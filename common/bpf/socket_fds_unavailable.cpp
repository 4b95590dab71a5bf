// SPDX-License-Identifier: Apache-2.0
// waitwatch::bpf built without BPF support (WAITWATCH_BPF=OFF, or no clang/libbpf at build
// time): every load fails with the reason, and callers walk /proc.
#include <cerrno>

#include "bpf/pins.hpp"
#include "bpf/socket_fds.hpp"

namespace waitwatch::bpf {

struct SocketFdScanner::Loaded {};

bool compiledIn() {
  return false;
}
std::string unavailableReason() {
  return WAITWATCH_BPF_UNAVAILABLE;
}

void removePinsOfThisProcess() {}

SocketFdScanner::SocketFdScanner(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
SocketFdScanner::SocketFdScanner(SocketFdScanner&&) noexcept = default;
SocketFdScanner& SocketFdScanner::operator=(SocketFdScanner&&) noexcept = default;
SocketFdScanner::~SocketFdScanner() = default;

Result<SocketFdScanner> SocketFdScanner::load() {
  return Error{ENOTSUP, unavailableReason()};
}

Result<SocketFdScanner> SocketFdScanner::reusePinned() {
  return Error{ENOTSUP, unavailableReason()};
}

Result<std::string> SocketFdScanner::pin() {
  return Error{ENOTSUP, unavailableReason()};
}

bool SocketFdScanner::reused() const {
  return false;
}

Result<void> SocketFdScanner::scan(std::vector<SocketFd>& out) {
  out.clear();
  return Error{ENOTSUP, unavailableReason()};
}

Result<SocketFdScan> scanSocketFds() {
  return Error{ENOTSUP, unavailableReason()};
}

}  // namespace waitwatch::bpf
