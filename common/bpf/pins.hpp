// SPDX-License-Identifier: Apache-2.0
#pragma once
// The BPF programs a daemon pins for the command line (TcpSocketIterator::pin,
// SocketFdScanner::pin) go with their programs; an exit that skips destructors removes them here.

namespace waitwatch::bpf {

// Removes every pin this process made that is still its own (the same file at its path).
void removePinsOfThisProcess();

}  // namespace waitwatch::bpf
