// SPDX-License-Identifier: Apache-2.0
// sockfarm builds exactly what it is asked for: checked against `ss` in the same namespace, with
// expectations written out from the arguments (not taken from sockfarm's own report).
#include <set>

#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {

using nlohmann::json;

class SockFarmTest : public NetnsTest {};

StateCounts counts(std::initializer_list<std::pair<TcpState, std::uint64_t>> list) {
  StateCounts c;
  for (const auto& [s, n] : list)
    c[s] = n;
  return c;
}

TEST_F(SockFarmTest, CountsPerStateAreExactAndMatchSs) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  // Per family: 3 listeners, 21 ESTABLISHED, 30 + 5 + 2 CLOSE_WAIT, 10 FIN_WAIT2, 40 + 5 TIME_WAIT.
  const StateCounts perFamily = counts({{TcpState::Listen, 3},
                                        {TcpState::Established, 21},
                                        {TcpState::CloseWait, 37},
                                        {TcpState::FinWait2, 10},
                                        {TcpState::TimeWait, 45}});
  StateCounts both = perFamily;
  both += perFamily;
  EXPECT_EQ(farm->expectedStates(), both) << describe(farm->expectedStates());

  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  EXPECT_EQ(countStates(*ss), both) << "ss: " << describe(countStates(*ss));
  StateCounts v6;
  for (const auto& s : *ss) {
    if (s.local.front() == '[') v6[s.state]++;
  }
  EXPECT_EQ(v6, perFamily) << "IPv6 per ss: " << describe(v6);
}

TEST_F(SockFarmTest, RecvQueuesAreExact) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  std::map<std::uint32_t, int> closeWaitByRecvQ;
  for (const auto& s : *ss) {
    if (s.state == TcpState::CloseWait) {
      closeWaitByRecvQ[s.recvQ]++;
    } else if (s.state != TcpState::Listen) {
      EXPECT_EQ(s.recvQ, 0u) << s.local << " -> " << s.peer;
    }
    EXPECT_EQ(s.sendQ, s.state == TcpState::Listen ? 4096u : 0u) << s.local << " -> " << s.peer;
  }
  // The unread FIN counts as one byte: idle CLOSE_WAIT shows 1, 1000 unread bytes show 1001.
  const std::map<std::uint32_t, int> want = {{1, 2 * 32}, {1001, 2 * 5}};
  EXPECT_EQ(closeWaitByRecvQ, want);
}

TEST_F(SockFarmTest, PerProcessCountsMatchSsP) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto ss = ssSockets(netns(), "p");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  const auto byPid = countByPid(*ss);

  std::map<int, StateCounts> want;
  std::uint64_t ownedTotal = 0;
  int sharerPid = 0, holder0Pid = 0;
  for (const auto& h : farm->holders()) {
    auto states = statesFromJson(h.at("states"));
    ASSERT_TRUE(states.ok()) << states.error().message;
    want[h.at("pid").get<int>()] = *states;
    if (h.at("role") == "sharer") {
      sharerPid = h.at("pid").get<int>();
    } else {
      ownedTotal += states->total();
    }
    if (h.at("index") == 0) holder0Pid = h.at("pid").get<int>();
  }
  EXPECT_EQ(byPid, want);
  EXPECT_EQ(byPid.count(farm->pid()), 0u) << "the coordinator must hold no socket";
  // Holders 0..2 share everything but TIME_WAIT; the sharer holds the 2 x 2 shared sockets.
  EXPECT_EQ(ownedTotal, 2u * (3 + 21 + 37 + 10));
  ASSERT_NE(sharerPid, 0);
  EXPECT_EQ(want[sharerPid], counts({{TcpState::CloseWait, 4}}));
  int sharedSockets = 0;
  for (const auto& s : *ss) {
    if (s.pids.size() == 2) {
      ++sharedSockets;
      EXPECT_EQ(std::set<int>(s.pids.begin(), s.pids.end()),
                (std::set<int>{holder0Pid, sharerPid}));
      EXPECT_EQ(s.state, TcpState::CloseWait);
    } else {
      EXPECT_EQ(s.pids.size(), s.state == TcpState::TimeWait ? 0u : 1u) << s.local << " " << s.peer;
    }
  }
  EXPECT_EQ(sharedSockets, 4);
}

TEST_F(SockFarmTest, ExitCommandRemovesExactlyThatHoldersSockets) {
  auto farm =
      SockFarm::start(netns(), {"--holders", "3", "--close-wait", "30", "--established", "12",
                                "--fin-wait2", "6", "--shared", "2", "--time-wait", "7"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  // Holder 1 holds 10 CLOSE_WAIT, 4 ESTABLISHED (two pairs), 2 FIN_WAIT2.
  auto answer = farm->command("exit 1");
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ(answer->at("event"), "exited");
  const int exitedPid = farm->holders()[1].at("pid").get<int>();
  EXPECT_EQ(answer->at("pid").get<int>(), exitedPid);
  const StateCounts after = counts({{TcpState::Listen, 1},
                                    {TcpState::CloseWait, 32 - 10},
                                    {TcpState::Established, 12 - 4},
                                    {TcpState::FinWait2, 6 - 2},
                                    {TcpState::TimeWait, 7}});
  auto ss = ssSockets(netns(), "p");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  EXPECT_EQ(countStates(*ss), after) << describe(countStates(*ss));
  EXPECT_EQ(countByPid(*ss).count(exitedPid), 0u);
  auto reported = statesFromJson(answer->at("states"));
  ASSERT_TRUE(reported.ok());
  EXPECT_EQ(*reported, after);

  // Holder 0 exits: its shared sockets live on in the sharer (index 3).
  answer = farm->command("exit 0");
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  ss = ssSockets(netns(), "p");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  // Holder 2 keeps 10 + 4 + 2; the sharer 2 CLOSE_WAIT; the listener went with holder 0.
  EXPECT_EQ(countStates(*ss), counts({{TcpState::CloseWait, 12},
                                      {TcpState::Established, 4},
                                      {TcpState::FinWait2, 2},
                                      {TcpState::TimeWait, 7}}))
      << describe(countStates(*ss));
  const int sharerPid = farm->holders()[3].at("pid").get<int>();
  EXPECT_EQ(countByPid(*ss)[sharerPid], counts({{TcpState::CloseWait, 2}}));

  answer = farm->command("bogus");
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ(answer->at("event"), "error");
}

TEST_F(SockFarmTest, ExitOneLeavesTheOtherHolders) {
  auto farm = SockFarm::start(netns(), {"--holders", "2", "--close-wait", "10", "--exit-one"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  EXPECT_FALSE(farm->holders()[1].at("alive").get<bool>());
  auto ss = ssSockets(netns(), "p");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  EXPECT_EQ(countStates(*ss), counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 5}}));
  EXPECT_EQ(farm->expectedStates(), countStates(*ss));
  EXPECT_EQ(countByPid(*ss).count(farm->holders()[1].at("pid").get<int>()), 0u);
}

TEST_F(SockFarmTest, TimeWaitTowardOneDestination) {
  auto farm = SockFarm::start(netns(), {"--time-wait", "200", "--tw-dest", "127.0.0.2:9000",
                                        "--source-ports", "40000-40099"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  std::set<std::string> sources;
  int timeWait = 0;
  for (const auto& s : *ss) {
    if (s.state != TcpState::TimeWait) continue;
    ++timeWait;
    EXPECT_EQ(s.peer, "127.0.0.2:9000");
    sources.insert(s.local.substr(0, s.local.find(':')));
  }
  EXPECT_EQ(timeWait, 200);
  // 100 source ports per address: two source addresses.
  EXPECT_EQ(sources, (std::set<std::string>{"127.0.0.1", "127.0.0.2"}));
  EXPECT_EQ(countStates(*ss)[TcpState::Listen], 2u);  // the main listener and 127.0.0.2:9000
  EXPECT_EQ(farm->report().at("time_wait").at("sources"), json({"127.0.0.1", "127.0.0.2"}));
}

TEST_F(SockFarmTest, UidOwnsEverySocket) {
  auto farm = SockFarm::start(
      netns(), {"--uid", "4242", "--close-wait", "3", "--established", "2", "--time-wait", "2"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto ss = ssSockets(netns(), "e");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  ASSERT_EQ(ss->size(), 1u + 3 + 2 + 2);
  for (const auto& s : *ss) {
    if (s.state == TcpState::TimeWait) {
      EXPECT_EQ(s.inode, 0u);
      continue;
    }
    EXPECT_EQ(s.uid, 4242u) << s.local << " " << s.peer;
    EXPECT_NE(s.inode, 0u);
  }
}

TEST_F(SockFarmTest, DetailsDescribeEverySocket) {
  auto farm =
      SockFarm::start(netns(), {"--details", "--family", "46", "--close-wait", "2", "--fin-wait2",
                                "1", "--established", "2", "--time-wait", "3", "--shared", "1"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto ss = ssSockets(netns(), "e");
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  std::map<std::uint64_t, const SsSocket*> byInode;
  for (const auto& s : *ss) {
    if (s.inode != 0) byInode[s.inode] = &s;
  }
  std::size_t described = 0;
  for (const auto& h : farm->holders()) {
    if (h.at("role") == "sharer") continue;
    for (const auto& d : h.at("sockets")) {
      ++described;
      const auto it = byInode.find(d.at("inode").get<std::uint64_t>());
      ASSERT_NE(it, byInode.end()) << d.dump();
      EXPECT_EQ(stateName(it->second->state), d.at("state").get<std::string>());
      EXPECT_EQ(it->second->local, d.at("local").get<std::string>());
      EXPECT_EQ(it->second->recvQ, d.at("recv_q").get<std::uint32_t>());
      EXPECT_NE(d.at("cookie").get<std::uint64_t>(), 0u);
    }
  }
  for (const auto& l : farm->report().at("listeners")) {
    EXPECT_EQ(byInode.count(l.at("inode").get<std::uint64_t>()), 1u) << l.dump();
  }
  // Every socket but the 2 x 3 TIME_WAIT ones is listed once by its holder.
  EXPECT_EQ(described, ss->size() - 2 * 3);
  std::set<std::pair<std::string, std::string>> timeWait;
  for (const auto& s : *ss) {
    if (s.state == TcpState::TimeWait) timeWait.emplace(s.local, s.peer);
  }
  std::set<std::pair<std::string, std::string>> described_tw;
  for (const auto& t : farm->report().at("time_wait").at("sockets")) {
    described_tw.emplace(t.at("local").get<std::string>(), t.at("remote").get<std::string>());
    EXPECT_NE(t.at("cookie").get<std::uint64_t>(), 0u);
  }
  EXPECT_EQ(described_tw, timeWait);
}

TEST_F(SockFarmTest, StopRemovesEveryHeldSocket) {
  auto farm =
      SockFarm::start(netns(), {"--holders", "2", "--close-wait", "20", "--established", "10",
                                "--fin-wait2", "4", "--shared", "1", "--time-wait", "3"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto status = farm->stop();
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(*status, 0);
  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  // Held sockets are aborted (RST, no FIN_WAIT/TIME_WAIT left); TIME_WAIT ones run their 60 s.
  EXPECT_EQ(countStates(*ss), counts({{TcpState::TimeWait, 3}})) << describe(countStates(*ss));
}

// No root and no namespace needed: these fail before sockfarm touches anything.
TEST(SockFarmArguments, BadArgumentsGiveAClearErrorAndExit2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--close-wait"}, "--close-wait needs a value"},
      {{"--close-wait", "lots"}, "--close-wait: \"lots\" is not a count"},
      {{"--close-wait-unread", "5"}, "--close-wait-unread: \"5\" is not COUNT:BYTES"},
      {{"--close-wait-unread", "5:100000"}, "BYTES in 1..65536"},
      {{"--family", "5"}, "--family: \"5\" is not 4, 6 or 46"},
      {{"--holders", "0"}, "--holders: must be at least 1"},
      {{"--tw-dest", "nowhere"}, "--tw-dest: \"nowhere\" is not ADDR:PORT"},
      {{"--tw-dest", "[::1]:9000"}, "--tw-dest: its family must be the only one built"},
      {{"--source-ports", "9-3"}, "--source-ports: \"9-3\" is not LO-HI"},
      {{"--frobnicate"}, "unknown option \"--frobnicate\""},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {sockfarmPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = runCommand(argv, Millis(10000));
    EXPECT_EQ(r.exitCode, 2) << args[0] << ": " << r.describe();
    EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(SockFarmArguments, RefusesANamespaceWithRealInterfaces) {
  const auto links = runCommand({"ip", "-o", "link", "show"}, Millis(10000));
  if (links.exitCode != 0 || std::count(links.out.begin(), links.out.end(), '\n') < 2) {
    GTEST_SKIP() << "this namespace has only lo: nothing to refuse";
  }
  const auto r = runCommand({sockfarmPath(), "--close-wait", "1"}, Millis(10000));
  EXPECT_EQ(r.exitCode, 2) << r.describe();
  EXPECT_NE(r.err.find("refusing to run in a network namespace with interfaces other than lo"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace waitwatch::testing
