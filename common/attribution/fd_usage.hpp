// SPDX-License-Identifier: Apache-2.0
#pragma once
// Open file descriptors and their limit for the processes that hold CLOSE_WAIT sockets: each
// leaked socket is an fd, and a process out of fds fails every accept() and socket() (EMFILE).
// Read per poll from /proc/<pid>: a stat of fd/ and a read of limits, a few microseconds each.
#include <cstdint>
#include <string>
#include <vector>

#include "core/snapshot.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

class FdUsageReader {
 public:
  explicit FdUsageReader(std::string procRoot = "/proc");

  // Sets openFds and maxFds of every process of `snap` that holds CLOSE_WAIT sockets; leaves 0
  // where /proc cannot say (the process exited, was replaced by a reused pid, or is not
  // readable) and for "unlimited" limits.
  void read(Snapshot& snap);

  // Processes whose fd directory had to be listed because its size was not the count (kernels
  // before 6.2), in the last read.
  [[nodiscard]] std::uint64_t listed() const { return listed_; }

 private:
  std::string procRoot_;
  UniqueFd procFd_;
  std::string text_;
  std::vector<char> dents_;
  std::uint64_t listed_ = 0;
};

}  // namespace waitwatch
