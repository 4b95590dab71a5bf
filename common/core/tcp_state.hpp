// SPDX-License-Identifier: Apache-2.0
#pragma once
// TCP states with the kernel's numbering (include/net/tcp_states.h), so a state byte from
// inet_diag converts without a table.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace waitwatch {

enum class TcpState : std::uint8_t {
  Established = 1,
  SynSent = 2,
  SynRecv = 3,
  FinWait1 = 4,
  FinWait2 = 5,
  TimeWait = 6,
  Close = 7,
  CloseWait = 8,
  LastAck = 9,
  Listen = 10,
  Closing = 11,
};

inline constexpr std::size_t kTcpStateSlots =
    12;  // index 0 unused: direct indexing by kernel value
inline constexpr std::array<TcpState, 11> kAllTcpStates = {
    TcpState::Established, TcpState::SynSent,  TcpState::SynRecv, TcpState::FinWait1,
    TcpState::FinWait2,    TcpState::TimeWait, TcpState::Close,   TcpState::CloseWait,
    TcpState::LastAck,     TcpState::Listen,   TcpState::Closing};

// Bit mask of states as inet_diag's idiag_states expects: bit (1 << state).
using TcpStateMask = std::uint32_t;
inline constexpr TcpStateMask kAllStatesMask = 0xFFE;  // bits 1..11
constexpr TcpStateMask stateBit(TcpState s) {
  return TcpStateMask{1} << static_cast<unsigned>(s);
}

constexpr bool isValidTcpState(std::uint8_t v) {
  return v >= 1 && v <= 11;
}

// "ESTABLISHED", "CLOSE_WAIT", ...: the names used in JSON output, metrics and config.
std::string_view stateName(TcpState s);
// "ESTAB", "CLOSE-WAIT", ...: the names `ss` prints, for tables an operator compares with ss.
std::string_view ssStateName(TcpState s);
// Accepts "CLOSE_WAIT", "close-wait", "close_wait", "closewait", and ss names ("estab").
std::optional<TcpState> parseTcpState(std::string_view text);

// Per-state counters indexed by the kernel's state value.
struct StateCounts {
  std::array<std::uint64_t, kTcpStateSlots> byState{};

  std::uint64_t& operator[](TcpState s) { return byState[static_cast<std::size_t>(s)]; }
  std::uint64_t operator[](TcpState s) const { return byState[static_cast<std::size_t>(s)]; }
  [[nodiscard]] std::uint64_t total() const;
  StateCounts& operator+=(const StateCounts& other);
  bool operator==(const StateCounts&) const = default;
};

}  // namespace waitwatch
