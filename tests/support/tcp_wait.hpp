// SPDX-License-Identifier: Apache-2.0
#pragma once
// Waiting for a socket's TCP state: a condition, not a sleep that a loaded machine outruns.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <thread>

namespace waitwatch::testing {

// Linux TCP states as TCP_INFO's tcpi_state reports them (include/net/tcp_states.h).
inline constexpr std::uint8_t kTcpFinWait2 = 5;
inline constexpr std::uint8_t kTcpCloseWait = 8;

// True once `fd` is in `state`; false after `timeout`.
inline bool waitForTcpState(int fd, std::uint8_t state,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == state) {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace waitwatch::testing
