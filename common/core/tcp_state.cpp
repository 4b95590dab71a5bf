// SPDX-License-Identifier: Apache-2.0
#include "core/tcp_state.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace waitwatch {
namespace {
struct Names {
  std::string_view json;
  std::string_view ss;
};
constexpr std::array<Names, kTcpStateSlots> kNames = {{
    {"UNKNOWN", "UNKNOWN"},
    {"ESTABLISHED", "ESTAB"},
    {"SYN_SENT", "SYN-SENT"},
    {"SYN_RECV", "SYN-RECV"},
    {"FIN_WAIT1", "FIN-WAIT-1"},
    {"FIN_WAIT2", "FIN-WAIT-2"},
    {"TIME_WAIT", "TIME-WAIT"},
    {"CLOSE", "UNCONN"},
    {"CLOSE_WAIT", "CLOSE-WAIT"},
    {"LAST_ACK", "LAST-ACK"},
    {"LISTEN", "LISTEN"},
    {"CLOSING", "CLOSING"},
}};

// Upper-case and drop '-' and '_' so every spelling compares equal.
std::string fold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '-' || c == '_') continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}
}  // namespace

std::string_view stateName(TcpState s) {
  auto i = static_cast<std::size_t>(s);
  return i < kNames.size() ? kNames[i].json : kNames[0].json;
}

std::string_view ssStateName(TcpState s) {
  auto i = static_cast<std::size_t>(s);
  return i < kNames.size() ? kNames[i].ss : kNames[0].ss;
}

std::optional<TcpState> parseTcpState(std::string_view text) {
  const std::string want = fold(text);
  if (want.empty()) return std::nullopt;
  for (TcpState s : kAllTcpStates) {
    if (fold(stateName(s)) == want || fold(ssStateName(s)) == want) return s;
  }
  // The names ss(8) takes in a state filter besides those it prints (`ss state listening`).
  if (want == fold("closed")) return TcpState::Close;
  if (want == fold("listening")) return TcpState::Listen;
  return std::nullopt;
}

std::uint64_t StateCounts::total() const {
  std::uint64_t t = 0;
  for (std::size_t i = 1; i < byState.size(); ++i)
    t += byState[i];
  return t;
}

StateCounts& StateCounts::operator+=(const StateCounts& other) {
  for (std::size_t i = 0; i < byState.size(); ++i)
    byState[i] += other.byState[i];
  return *this;
}

}  // namespace waitwatch
