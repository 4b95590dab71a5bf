// SPDX-License-Identifier: Apache-2.0
#pragma once
// The BPF programs a daemon pins for the command line (TcpSocketIterator::pin,
// SocketFdScanner::pin) go with their programs; an exit that skips destructors removes them here.
#include "core/result.hpp"

namespace waitwatch::bpf {

// The program (TcpSocketIterator, SocketFdScanner) a running waitwatchd pinned, where there is
// one of this build; else one loaded here.
template <typename Program>
Result<Program> reusePinnedOrLoad() {
  if (auto pinned = Program::reusePinned()) return pinned;
  return Program::load();
}

// Removes every pin this process made that is still its own (the same file at its path).
void removePinsOfThisProcess();

}  // namespace waitwatch::bpf
