// SPDX-License-Identifier: Apache-2.0
// The ss output parser the integration tests compare against: pure, no root needed.
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {

TEST(SsParse, StatesQueuesAndEndpoints) {
  const auto parsed = parseSs(
      "LISTEN     0      4096       127.0.0.1:8080      0.0.0.0:*\n"
      "CLOSE-WAIT 1001   0          127.0.0.1:8080    127.0.1.1:32768\n"
      "ESTAB      0      0              [::1]:8080        [::1]:32769\n"
      "TIME-WAIT  0      0          127.0.0.1:40000   127.0.0.2:9000\n"
      "FIN-WAIT-2 0      0          127.0.1.1:32770   127.0.0.1:8080\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 5u);
  EXPECT_EQ((*parsed)[0].state, TcpState::Listen);
  EXPECT_EQ((*parsed)[0].sendQ, 4096u);
  EXPECT_EQ((*parsed)[1].state, TcpState::CloseWait);
  EXPECT_EQ((*parsed)[1].recvQ, 1001u);
  EXPECT_EQ((*parsed)[1].peer, "127.0.1.1:32768");
  EXPECT_EQ((*parsed)[2].local, "[::1]:8080");
  EXPECT_TRUE((*parsed)[2].pids.empty());
  const StateCounts c = countStates(*parsed);
  EXPECT_EQ(c.total(), 5u);
  EXPECT_EQ(c[TcpState::FinWait2], 1u);
  EXPECT_EQ(c[TcpState::TimeWait], 1u);
}

TEST(SsParse, OwnersUidAndInode) {
  const auto parsed = parseSs(
      "CLOSE-WAIT 1 0 127.0.0.1:8080 127.0.1.1:32768 "
      "users:((\"sock farm\",pid=101,fd=7),(\"sockfarm\",pid=202,fd=7),(\"x\",pid=101,fd=9))\n"
      "ESTAB 0 0 127.0.0.1:8080 127.0.1.1:32769 users:((\"sockfarm\",pid=202,fd=8))\n"
      "CLOSE-WAIT 1 0 127.0.0.1:8080 127.0.1.1:32770 uid:4242 ino:123456 sk:1 cgroup:/ <->\n"
      "TIME-WAIT 0 0 127.0.0.1:1 127.0.0.1:2 timer:(timewait,59sec,0) ino:0 sk:2\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ((*parsed)[0].pids, (std::vector<int>{101, 202}));
  EXPECT_EQ((*parsed)[2].uid, 4242u);
  EXPECT_EQ((*parsed)[2].inode, 123456u);
  EXPECT_FALSE((*parsed)[3].uid.has_value());
  EXPECT_EQ((*parsed)[3].inode, 0u);
  const auto byPid = countByPid(*parsed);
  ASSERT_EQ(byPid.size(), 2u);
  EXPECT_EQ(byPid.at(101)[TcpState::CloseWait], 1u);
  EXPECT_EQ(byPid.at(202)[TcpState::CloseWait], 1u);
  EXPECT_EQ(byPid.at(202)[TcpState::Established], 1u);
}

TEST(SsParse, SkipsTheIndentedInfoLines) {
  const auto parsed = parseSs("ESTAB 0 0 127.0.0.1:1 127.0.0.1:2\n\t cubic wscale:7,7 rto:204\n\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->size(), 1u);
}

TEST(SsParse, MalformedLinesAreNamed) {
  auto r = parseSs("ESTAB 0 0 127.0.0.1:1 127.0.0.1:2\nWEIRD 0 0 a b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "ss line 2 \"WEIRD 0 0 a b\": unknown state");
  r = parseSs("ESTAB 0 0 127.0.0.1:1\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "ss line 1 \"ESTAB 0 0 127.0.0.1:1\": fewer than 5 columns");
  r = parseSs("ESTAB x 0 a b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Recv-Q/Send-Q not numbers"), std::string::npos);
}

TEST(SsParse, StatesFromJson) {
  auto c = statesFromJson(nlohmann::json{{"CLOSE_WAIT", 3}, {"TIME_WAIT", 5}, {"CLOSE", 0}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)[TcpState::CloseWait], 3u);
  EXPECT_EQ(describe(*c), "TIME_WAIT=5 CLOSE_WAIT=3");
  EXPECT_FALSE(statesFromJson(nlohmann::json{{"NOPE", 1}}).ok());
  EXPECT_FALSE(statesFromJson(nlohmann::json{{"LISTEN", -1}}).ok());
  EXPECT_FALSE(statesFromJson(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace waitwatch::testing
