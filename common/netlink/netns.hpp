// SPDX-License-Identifier: Apache-2.0
#pragma once
// Entering a network namespace on the calling thread for the time it takes to open a socket or
// a file, and coming back. A netlink socket and a /proc/sys file stay bound to the namespace
// they were opened in, so the thread itself never has to stay there.
#include <cstdint>

#include "core/result.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

class NetnsGuard {
 public:
  // Moves the calling thread into the namespace `netnsFd` refers to. The thread's previous
  // namespace is restored by restore() or, at the latest, by the destructor.
  static Result<NetnsGuard> enter(int netnsFd);

  NetnsGuard(NetnsGuard&&) noexcept = default;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

  // Returns the thread to its original namespace. An error here means the thread is stranded
  // in the other namespace: callers must treat it as fatal for anything namespace-dependent.
  Result<void> restore();

 private:
  explicit NetnsGuard(UniqueFd original) : original_(std::move(original)) {}
  UniqueFd original_;  // invalid once restored
};

// The inode of an open namespace file (what /proc/<pid>/ns/net reads as net:[inode]).
Result<std::uint64_t> namespaceInode(int netnsFd);
// Whether `fd` is a network namespace file (nsfs, CLONE_NEWNET), so that a stray regular file
// in /run/netns is reported by name rather than as a setns() EINVAL.
bool isNetworkNamespace(int fd);

}  // namespace waitwatch
