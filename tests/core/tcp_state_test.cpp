// SPDX-License-Identifier: Apache-2.0
#include "core/tcp_state.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

TEST(TcpState, NamesMatchJsonAndSs) {
  EXPECT_EQ(stateName(TcpState::CloseWait), "CLOSE_WAIT");
  EXPECT_EQ(ssStateName(TcpState::CloseWait), "CLOSE-WAIT");
  EXPECT_EQ(ssStateName(TcpState::Established), "ESTAB");
  EXPECT_EQ(stateName(TcpState::FinWait2), "FIN_WAIT2");
  EXPECT_EQ(ssStateName(TcpState::FinWait2), "FIN-WAIT-2");
}

TEST(TcpState, ParsesEverySpelling) {
  EXPECT_EQ(parseTcpState("close-wait"), TcpState::CloseWait);
  EXPECT_EQ(parseTcpState("CLOSE_WAIT"), TcpState::CloseWait);
  EXPECT_EQ(parseTcpState("estab"), TcpState::Established);
  EXPECT_EQ(parseTcpState("time-wait"), TcpState::TimeWait);
  EXPECT_EQ(parseTcpState("fin-wait-1"), TcpState::FinWait1);
  // ss(8)'s filter names.
  EXPECT_EQ(parseTcpState("closed"), TcpState::Close);
  EXPECT_EQ(parseTcpState("listening"), TcpState::Listen);
  EXPECT_FALSE(parseTcpState("half-open"));
  EXPECT_FALSE(parseTcpState(""));
  for (TcpState s : kAllTcpStates) {
    EXPECT_EQ(parseTcpState(stateName(s)), s);
    EXPECT_EQ(parseTcpState(ssStateName(s)), s);
  }
}

TEST(StateCounts, TotalsAndAdds) {
  StateCounts a;
  a[TcpState::CloseWait] = 3;
  a[TcpState::Listen] = 1;
  StateCounts b;
  b[TcpState::CloseWait] = 2;
  a += b;
  EXPECT_EQ(a[TcpState::CloseWait], 5u);
  EXPECT_EQ(a.total(), 6u);
  EXPECT_EQ(stateBit(TcpState::CloseWait) | stateBit(TcpState::TimeWait), (1u << 8) | (1u << 6));
}

}  // namespace
}  // namespace waitwatch
