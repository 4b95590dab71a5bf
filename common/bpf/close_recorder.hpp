// SPDX-License-Identifier: Apache-2.0
#pragma once
// Who closed each TCP connection first, recorded in the kernel as it happens (closes.bpf.c): a
// BPF program on the sock:inet_sock_set_state tracepoint, a ring buffer, and a reader thread
// that empties it whenever it is half full, so that no storm between two polls overflows it.
//
// Needs CAP_BPF and CAP_PERFMON (or root) to load, a kernel with BTF and Linux >= 5.12 (ring
// buffers, tp_btf programs). Once loaded it needs no privilege: the ring and the lost count
// (the program's .bss) are read through mmap.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace waitwatch::bpf {

// A process that closed connections.
struct Closer {
  std::uint64_t startTicks = 0;  // /proc/<pid>/stat field 22: a reused pid is another process
  std::uint64_t cgroupId = 0;    // its cgroup v2 id: the inode of its cgroup directory
  std::int32_t pid = 0;   // thread group id as the caller's /proc numbers it; 0 when not visible
  std::uint32_t uid = 0;  // the closing thread's uid, in the initial user namespace
  std::array<char, 16> comm{};  // the process's comm, NUL-terminated
  friend bool operator==(const Closer&, const Closer&) = default;
};

// One active close: 16 bytes, since a storm brings hundreds of thousands between two polls and
// they come from few processes.
struct CloseEvent {
  std::uint64_t cookie = 0;  // the socket's, which its TIME_WAIT successor keeps
  std::uint32_t closer = 0;  // index into CloseBatch::closers
  friend bool operator==(const CloseEvent&, const CloseEvent&) = default;
};

// The closes recorded since the last take(), and who made them.
struct CloseBatch {
  std::vector<CloseEvent> closes;
  std::vector<Closer> closers;
};

class CloseRecorder {
 public:
  // Loads and attaches the program; the reader thread starts with the first take(), so that it
  // does not inherit the capabilities the load needed. At most `maxWaiting` closes
  // wait between two take() calls; more are counted as lost. Errors name the reason: no
  // privilege (EPERM), no BTF (ENOENT), an old kernel, or a build without BPF (ENOTSUP).
  static Result<CloseRecorder> load(std::size_t maxWaiting);

  CloseRecorder(CloseRecorder&&) noexcept;
  CloseRecorder& operator=(CloseRecorder&&) noexcept;
  ~CloseRecorder();

  // Every close recorded since the last call, replacing `out` (whose memory it reuses). Not
  // thread-safe against itself.
  void take(CloseBatch& out);
  // Closes that could not be recorded since load: the ring was full, or `maxWaiting` closes
  // were already waiting.
  [[nodiscard]] std::uint64_t lost() const;
  // The ring's size in bytes.
  [[nodiscard]] std::size_t ringBytes() const;

  struct Loaded;

 private:
  explicit CloseRecorder(std::unique_ptr<Loaded> loaded);
  std::unique_ptr<Loaded> loaded_;
};

}  // namespace waitwatch::bpf
