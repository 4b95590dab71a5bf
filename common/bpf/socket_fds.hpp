// SPDX-License-Identifier: Apache-2.0
#pragma once
// The socket fds of every process in one kernel pass, through a BPF task_file iterator
// (socket_fds.bpf.c), instead of a readlink() per fd under /proc/<pid>/fd.
//
// What it sees and what it does not:
// - Every process of the caller's pid namespace, pids numbered as that namespace's /proc
//   numbers them. Threads that share their process's file table are visited once.
// - Measured on Linux 6.18: in the initial pid namespace the iteration never visits pid 1 (in a
//   child pid namespace its pid 1 is visited). Callers read /proc/1/fd themselves (init can
//   hold sockets) and should ignore pid 1 in a scan, so that both cases give one answer.
// - A scan is not a snapshot: a process or fd created or closed while the kernel walks may be
//   missed or seen. Sockets that existed before the scan began and still exist after it are
//   always seen, so scanning after a netlink dump finds the holder of every socket the dump
//   showed that is still open.
// - Needs CAP_BPF and CAP_PERFMON (or root), a kernel with BTF (/sys/kernel/btf/vmlinux,
//   CONFIG_DEBUG_INFO_BTF) and Linux >= 5.8. It then sees every process whatever its owner:
//   no per-process permission check, unlike /proc/<pid>/fd.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace waitwatch::bpf {

// One socket fd of one process.
struct SocketFd {
  std::int32_t pid = 0;  // thread group id, in the caller's pid namespace
  std::int32_t fd = 0;
  std::uint32_t inode = 0;  // the socket inode, as in "socket:[N]"
  // The process's start time in clock ticks after boot: /proc/<pid>/stat field 22, so that a
  // pid reused after the scan can be told apart.
  std::uint64_t startTicks = 0;

  friend bool operator==(const SocketFd&, const SocketFd&) = default;
};

struct SocketFdScan {
  std::vector<SocketFd> fds;  // in the kernel's order: by pid, then by fd
};

// False when the library was built without BPF support; unavailableReason() says why.
bool compiledIn();
std::string unavailableReason();

// A loaded and attached iterator program. Loading is paid once per process (measured: 11-14 ms
// of CPU, most of it libbpf reading and parsing the kernel's 5.5 MB BTF for the relocations);
// each scan() is one pass over every file table (~24 ms at 70k socket fds).
class SocketFdScanner {
 public:
  // Errors name the reason: no privilege (EPERM), no BTF (ENOENT), an old kernel, or a build
  // without BPF (ENOTSUP).
  static Result<SocketFdScanner> load();
  // The program a running waitwatchd pinned (pin()), when it is this build's: no load.
  // ENOENT when there is none.
  static Result<SocketFdScanner> reusePinned();

  // Leaves the loaded program pinned until this scanner goes, for the command line's
  // reusePinned(). Returns the pin's path.
  Result<std::string> pin();
  // Whether this scanner came from reusePinned().
  [[nodiscard]] bool reused() const;

  SocketFdScanner(SocketFdScanner&&) noexcept;
  SocketFdScanner& operator=(SocketFdScanner&&) noexcept;
  ~SocketFdScanner();

  // One pass. Replaces `out`'s contents, reusing its capacity. A failed pass leaves `out`
  // partial; a new pass starts from the first process again (an iteration cannot be resumed).
  Result<void> scan(std::vector<SocketFd>& out);

  struct Loaded;

 private:
  explicit SocketFdScanner(std::unique_ptr<Loaded> loaded);
  std::unique_ptr<Loaded> loaded_;
};

// load() and one scan().
Result<SocketFdScan> scanSocketFds();

}  // namespace waitwatch::bpf
