// SPDX-License-Identifier: Apache-2.0
#pragma once
// Every TCP socket of a network namespace through a BPF iter/tcp program (tcp_sockets.bpf.c),
// the kernel's own walk of its socket hash, instead of an inet_diag dump: the same records
// (SocketRecord, field for field as inet_diag reports them) at a fraction of the cost.
//
// What it needs and what it sees:
// - CAP_BPF and CAP_PERFMON (or root) to load, once; Linux >= 5.15 with BTF; the kernel's
//   configuration readable (/proc/config.gz or /boot/config-<release>) for CONFIG_HZ, in which
//   the kernel counts its timers. Each walk is then a bpf(BPF_ITER_CREATE) on the attached
//   program, which needs no capability on Linux >= 5.19 (kernel/bpf/syscall.c: since c8644cd0efe7
//   only map creation and program loads need CAP_BPF); before, it needs CAP_BPF kept.
// - A walk covers the network namespace the calling thread is in when start() creates it; to
//   walk another, enter it (setns) around start() alone: reading needs no namespace.
// - Like a dump, a walk is not an atomic snapshot: the kernel walks bucket by bucket, so a socket
//   that moves (e.g. ESTABLISHED to TIME_WAIT, a new timewait socket in another bucket) while it
//   walks can be seen twice or not at all, as with inet_diag. Unlike a dump, it is never
//   interrupted and restarted.
#include <cstdint>
#include <memory>
#include <string>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "core/socket.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::bpf {

struct TcpWalkStats {
  std::uint64_t sockets = 0;  // records delivered
  std::uint64_t reads = 0;    // read() calls that returned records
};

class TcpSocketIterator {
 public:
  // Errors name the reason: no privilege (EPERM), no BTF (ENOENT), no kernel configuration, an
  // old kernel, or a build without BPF (ENOTSUP).
  static Result<TcpSocketIterator> load();
  // The program a running waitwatchd pinned (pin()), when it is this build's: no load at all
  // (measured: ~21 ms of a one-shot run's ~100 at 100k sockets). ENOENT when there is none.
  static Result<TcpSocketIterator> reusePinned();

  // Leaves the loaded program pinned in the BPF filesystem (IteratorProgram::pin) until this
  // iterator goes, for the command line's reusePinned(). Returns the pin's path.
  Result<std::string> pin();
  // Whether this iterator came from reusePinned().
  [[nodiscard]] bool reused() const;

  TcpSocketIterator(TcpSocketIterator&&) noexcept;
  TcpSocketIterator& operator=(TcpSocketIterator&&) noexcept;
  ~TcpSocketIterator();

  // A walk of the calling thread's current network namespace, to pass to read().
  Result<UniqueFd> start();
  // Reads a started walk to its end, calling `visit` once per socket in the kernel's order
  // (every listening socket first). `withCgroupId` as DumpOptions::wantCgroupId. Not
  // reentrant: one reader at a time.
  Result<TcpWalkStats> read(UniqueFd walk, bool withCgroupId,
                            FunctionRef<void(const SocketRecord&)> visit);

  struct Loaded;

 private:
  explicit TcpSocketIterator(std::unique_ptr<Loaded> loaded);
  std::unique_ptr<Loaded> loaded_;
};

}  // namespace waitwatch::bpf
