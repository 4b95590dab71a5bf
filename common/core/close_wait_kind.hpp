// SPDX-License-Identifier: Apache-2.0
#pragma once
// What kind of bug holds a CLOSE_WAIT socket, read from its Recv-Q. inet_diag reports
// rcv_nxt - copied_seq for it (net/ipv4/tcp_diag.c, tcp_diag_get_info). The peer's FIN takes
// one sequence number, and a read that returns end-of-stream moves copied_seq past it
// (net/ipv4/tcp.c, tcp_recvmsg_locked, found_fin_ok: *seq + 1). So:
//   1  nothing but the FIN is unread: the program has not read since the peer closed;
//   0  it read end-of-stream and did not close();
//  >1  data besides the FIN is unread: it stopped reading.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace waitwatch {

enum class CloseWaitKind : std::uint8_t { Abandoned, EofNotClosed, UnreadData };
inline constexpr std::size_t kCloseWaitKindCount = 3;

constexpr CloseWaitKind closeWaitKind(std::uint32_t recvQ) {
  if (recvQ == 0) return CloseWaitKind::EofNotClosed;
  return recvQ == 1 ? CloseWaitKind::Abandoned : CloseWaitKind::UnreadData;
}

// "abandoned", "eof_not_closed", "unread_data": JSON keys, metric labels, journal fields.
std::string_view closeWaitKindName(CloseWaitKind kind);
// What happened to such a socket: "not read since the peer closed".
std::string_view closeWaitKindSummary(CloseWaitKind kind);
// Where to look in the code: "look for connections kept and never used again (...)".
std::string_view closeWaitKindHint(CloseWaitKind kind);

// CLOSE_WAIT sockets counted by kind.
struct CloseWaitKinds {
  std::array<std::uint32_t, kCloseWaitKindCount> counts{};

  std::uint32_t& operator[](CloseWaitKind k) { return counts[static_cast<std::size_t>(k)]; }
  std::uint32_t operator[](CloseWaitKind k) const { return counts[static_cast<std::size_t>(k)]; }
  [[nodiscard]] std::uint64_t total() const {
    return std::uint64_t{counts[0]} + counts[1] + counts[2];
  }
  CloseWaitKinds& operator+=(const CloseWaitKinds& other) {
    for (std::size_t i = 0; i < counts.size(); ++i)
      counts[i] += other.counts[i];
    return *this;
  }
  bool operator==(const CloseWaitKinds&) const = default;
};

inline constexpr std::array<CloseWaitKind, kCloseWaitKindCount> kCloseWaitKinds = {
    CloseWaitKind::Abandoned, CloseWaitKind::EofNotClosed, CloseWaitKind::UnreadData};

}  // namespace waitwatch
