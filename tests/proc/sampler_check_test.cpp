// SPDX-License-Identifier: Apache-2.0
// The sampler check: a socket both dumps agree on must be in the walk, identical, with its
// TIME_WAIT timer between theirs; what changed between the dumps, or lived only between them,
// is no fault.
#include "proc/sampler_check.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

SocketRecord socketOf(std::uint64_t cookie, TcpState state = TcpState::Established) {
  SocketRecord s;
  s.family = AddressFamily::V4;
  s.state = state;
  s.local = Endpoint{IpAddress::v4({10, 0, 0, 1}), 8080};
  s.remote = Endpoint{IpAddress::v4({10, 0, 0, 2}), static_cast<std::uint16_t>(40000 + cookie)};
  s.cookie = cookie;
  s.inode = static_cast<std::uint32_t>(1000 + cookie);
  if (state == TcpState::TimeWait) {
    s.inode = 0;
    s.timer = SocketTimer::TimeWait;
  }
  return s;
}

TEST(SamplerCheck, AgreementIsNoFault) {
  const std::vector<SocketRecord> all = {socketOf(1), socketOf(2, TcpState::CloseWait)};
  const SamplerCheck c = checkSampler(all, all, all);
  EXPECT_EQ(c.compared, 2u);
  EXPECT_EQ(c.faults(), 0u);
  EXPECT_TRUE(c.examples.empty());
}

TEST(SamplerCheck, ASocketBothDumpsSawMustBeInTheWalk) {
  const std::vector<SocketRecord> dumps = {socketOf(1), socketOf(2)};
  const std::vector<SocketRecord> walk = {socketOf(1)};
  const SamplerCheck c = checkSampler(dumps, walk, dumps);
  EXPECT_EQ(c.compared, 2u);
  EXPECT_EQ(c.missing, 1u);
  ASSERT_EQ(c.examples.size(), 1u);
  EXPECT_EQ(c.examples[0],
            "cookie 2 ESTABLISHED 10.0.0.1:8080 -> 10.0.0.2:40002: in both dumps, not in the walk");
}

TEST(SamplerCheck, AFieldTheWalkReportsOtherwiseIsNamed) {
  const std::vector<SocketRecord> dumps = {socketOf(1)};
  SocketRecord other = socketOf(1);
  other.inode = 0;
  const SamplerCheck c = checkSampler(dumps, std::vector<SocketRecord>{other}, dumps);
  EXPECT_EQ(c.differing, 1u);
  ASSERT_EQ(c.examples.size(), 1u);
  EXPECT_EQ(c.examples[0],
            "cookie 1 ESTABLISHED 10.0.0.1:8080 -> 10.0.0.2:40001: inode 1001 by the dump, 0 by "
            "the walk");
}

TEST(SamplerCheck, QueuesMoveWithTrafficExceptACloseWaitSocketsRecvQ) {
  SocketRecord busy = socketOf(1);
  SocketRecord leak = socketOf(2, TcpState::CloseWait);
  leak.recvQ = 1;
  const std::vector<SocketRecord> dumps = {busy, leak};
  // Data in flight during the walk only: not a difference.
  busy.sendQ = 4096;
  busy.recvQ = 512;
  EXPECT_EQ(checkSampler(dumps, std::vector<SocketRecord>{busy, leak}, dumps).faults(), 0u);
  // A CLOSE_WAIT socket's Recv-Q cannot grow back: a walk that says otherwise is wrong.
  leak.recvQ = 0;
  const SamplerCheck c = checkSampler(dumps, std::vector<SocketRecord>{busy, leak}, dumps);
  EXPECT_EQ(c.differing, 1u);
  ASSERT_EQ(c.examples.size(), 1u);
  EXPECT_NE(c.examples[0].find("Recv-Q 1 by the dump, 0 by the walk"), std::string::npos)
      << c.examples[0];
}

TEST(SamplerCheck, WhatChangedBetweenTheDumpsProvesNothing) {
  SocketRecord closed = socketOf(1);
  closed.state = TcpState::CloseWait;
  const std::vector<SocketRecord> before = {socketOf(1)};
  const std::vector<SocketRecord> after = {closed};
  // The walk may have seen either state, or (a socket that only lived between the dumps) more.
  const std::vector<SocketRecord> walk = {closed, socketOf(7)};
  const SamplerCheck c = checkSampler(before, walk, after);
  EXPECT_EQ(c.compared, 0u);
  EXPECT_EQ(c.faults(), 0u);
  EXPECT_EQ(c.walkOnly, 1u);
}

TEST(SamplerCheck, ATimeWaitTimerMustLieBetweenTheDumps) {
  SocketRecord first = socketOf(1, TcpState::TimeWait);
  first.timerRemainingMs = 50'000;
  SocketRecord second = first;
  second.timerRemainingMs = 49'900;
  SocketRecord inside = first;
  inside.timerRemainingMs = 49'950;
  SocketRecord wrong = first;
  wrong.timerRemainingMs = 20'000;
  const std::vector<SocketRecord> before = {first}, after = {second};
  EXPECT_EQ(checkSampler(before, std::vector<SocketRecord>{inside}, after).faults(), 0u);
  // One tick of rounding either way is allowed.
  inside.timerRemainingMs = 49'892;
  EXPECT_EQ(checkSampler(before, std::vector<SocketRecord>{inside}, after).faults(), 0u);
  // Re-armed between the dumps (a retransmitted FIN): the later value is higher, and the walk's
  // may be anything between.
  SocketRecord rearmed = first;
  rearmed.timerRemainingMs = 59'990;
  EXPECT_EQ(
      checkSampler(before, std::vector<SocketRecord>{wrong}, std::vector<SocketRecord>{rearmed})
          .faults(),
      0u);
  const SamplerCheck c = checkSampler(before, std::vector<SocketRecord>{wrong}, after);
  EXPECT_EQ(c.differing, 1u);
  ASSERT_EQ(c.examples.size(), 1u);
  EXPECT_NE(c.examples[0].find("20000 ms left by the walk, 50000 then 49900 by the dumps"),
            std::string::npos)
      << c.examples[0];
}

TEST(SamplerCheck, ExamplesAreFewAndTotalsAdd) {
  std::vector<SocketRecord> dumps;
  for (std::uint64_t i = 1; i <= 10; ++i)
    dumps.push_back(socketOf(i));
  SamplerCheck total;
  total.add(checkSampler(dumps, {}, dumps));
  total.add(checkSampler(dumps, dumps, dumps));
  EXPECT_EQ(total.compared, 20u);
  EXPECT_EQ(total.missing, 10u);
  EXPECT_EQ(total.examples.size(), SamplerCheck::kExamples);
}

}  // namespace
}  // namespace waitwatch
