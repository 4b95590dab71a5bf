// SPDX-License-Identifier: Apache-2.0
// The TCP socket iterator built without BPF support: every load fails with the reason, and the
// callers dump through inet_diag.
#include <cerrno>

#include "bpf/socket_fds.hpp"
#include "bpf/tcp_sockets.hpp"

namespace waitwatch::bpf {

struct TcpSocketIterator::Loaded {};

TcpSocketIterator::TcpSocketIterator(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
TcpSocketIterator::TcpSocketIterator(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator& TcpSocketIterator::operator=(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator::~TcpSocketIterator() = default;

Result<TcpSocketIterator> TcpSocketIterator::load() {
  return Error{ENOTSUP, unavailableReason()};
}

Result<TcpSocketIterator> TcpSocketIterator::reusePinned() {
  return Error{ENOTSUP, unavailableReason()};
}

Result<std::string> TcpSocketIterator::pin() {
  return Error{ENOTSUP, unavailableReason()};
}

bool TcpSocketIterator::reused() const {
  return false;
}

Result<UniqueFd> TcpSocketIterator::start() {
  return Error{ENOTSUP, unavailableReason()};
}

Result<TcpWalkStats> TcpSocketIterator::read(UniqueFd, bool,
                                             FunctionRef<void(const SocketRecord&)>) {
  return Error{ENOTSUP, unavailableReason()};
}

}  // namespace waitwatch::bpf
