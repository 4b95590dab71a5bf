// SPDX-License-Identifier: Apache-2.0
#pragma once
// One TCP socket as the kernel reports it through inet_diag. Plain data, no allocation.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/address.hpp"
#include "core/tcp_state.hpp"

namespace waitwatch {

// idiag_timer values (see ss(8) "timer:" and the inet_diag uapi).
enum class SocketTimer : std::uint8_t {
  None = 0,
  Retransmit = 1,
  KeepAlive = 2,
  TimeWait = 3,
  ZeroWindowProbe = 4,
};

// An idiag_timer value; None for one waitwatch does not know.
constexpr SocketTimer socketTimer(std::uint8_t v) {
  return v <= static_cast<std::uint8_t>(SocketTimer::ZeroWindowProbe) ? static_cast<SocketTimer>(v)
                                                                      : SocketTimer::None;
}

struct SocketRecord {
  AddressFamily family = AddressFamily::Unspec;
  TcpState state = TcpState::Close;
  SocketTimer timer = SocketTimer::None;
  std::uint8_t retransmits = 0;
  Endpoint local;
  Endpoint remote;
  std::uint32_t uid = 0;
  std::uint32_t inode = 0;             // 0 for TIME_WAIT and other sockets no process holds
  std::uint64_t cookie = 0;            // the kernel's socket cookie: stable identity across polls
  std::uint32_t recvQ = 0;             // bytes unread (LISTEN: accept queue length)
  std::uint32_t sendQ = 0;             // bytes unacknowledged (LISTEN: backlog)
  std::uint32_t timerRemainingMs = 0;  // for TIME_WAIT: time until the kernel frees it
  std::uint64_t cgroupId = 0;          // INET_DIAG_CGROUP_ID when hasCgroupId
  bool hasCgroupId = false;

  bool operator==(const SocketRecord&) const = default;

  // Sets `family` and both endpoints from addresses and ports as the kernel sends them (network
  // order; an IPv4 address in the first 4 of the bytes at `localAddress` / `remoteAddress`).
  void setEndpoints(AddressFamily f, const void* localAddress, const void* remoteAddress,
                    std::uint16_t localPortBe, std::uint16_t remotePortBe) {
    const std::size_t length = f == AddressFamily::V4 ? 4 : 16;
    family = f;
    local = Endpoint{};
    remote = Endpoint{};
    local.address.family = f;
    remote.address.family = f;
    std::memcpy(local.address.bytes.data(), localAddress, length);
    std::memcpy(remote.address.bytes.data(), remoteAddress, length);
    local.port = static_cast<std::uint16_t>((localPortBe >> 8) | (localPortBe << 8));
    remote.port = static_cast<std::uint16_t>((remotePortBe >> 8) | (remotePortBe << 8));
  }
};

}  // namespace waitwatch
