// SPDX-License-Identifier: Apache-2.0
// A one-shot `waitwatch` finds owners with the BPF scan where it loads, and the answer is the
// /proc walk's: on one sockfarm population (both families, several holders, sockets shared
// across a fork), `waitwatch --json` with the scan and with WAITWATCH_NO_BPF=1 gives the same
// counts for every process, and LocalCollector (in this process) the same facts about each.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "attribution/collector.hpp"
#include "attribution/one_shot_owners.hpp"
#include "bpf/socket_fds.hpp"
#include "cli/collect.hpp"
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {

using cli::Collection;
using cli::CollectRequest;
using cli::Environment;
using cli::LocalCollector;
using nlohmann::json;

class BpfCliTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    auto s = bpf::scanSocketFds();
    if (!s) GTEST_SKIP() << "the BPF iterator cannot load here: " << s.error().message;
  }

  json runJson(bool noBpf) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    if (noBpf) argv.push_back("WAITWATCH_NO_BPF=1");
    argv.insert(argv.end(), {WAITWATCH_CLI_PATH, "--json", "--netns", netns().name()});
    const auto r = runCommand(argv);
    EXPECT_EQ(r.exitCode, 0) << r.describe();
    EXPECT_EQ(r.err, "");  // nothing to warn about as root, with or without the scan
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << r.out;
    return j.is_object() ? j : json::object();
  }

  Result<Collection> collectInProcess(bool noBpf) {
    if (noBpf) ::setenv("WAITWATCH_NO_BPF", "1", 1);
    LocalCollector collector(
        CollectRequest{.netns = NamespaceSelection::Named, .netnsName = netns().name()},
        Environment{});
    auto c = collector.collect(TimePoint{});
    ::unsetenv("WAITWATCH_NO_BPF");
    return c;
  }
};

std::map<int, StateCounts> byPid(const json& out) {
  std::map<int, StateCounts> m;
  for (const auto& p : out.at("processes")) {
    auto s = statesFromJson(p["states"]);
    EXPECT_TRUE(s.ok()) << p.dump();
    m[p["pid"].get<int>()] = s.ok() ? *s : StateCounts{};
  }
  return m;
}

std::map<int, StateCounts> holdersByPid(const SockFarm& farm) {
  std::map<int, StateCounts> m;
  for (const auto& h : farm.holders()) {
    auto s = statesFromJson(h["states"]);
    EXPECT_TRUE(s.ok()) << h.dump();
    m[h["pid"].get<int>()] = s.ok() ? *s : StateCounts{};
  }
  return m;
}

TEST_F(BpfCliTest, OneShotCountsAreTheSameWithAndWithoutTheScan) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const auto expected = holdersByPid(*farm);
  ASSERT_EQ(expected.size(), 4u);  // 3 holders and holder 0's sharer

  const json withScan = runJson(false);
  const json withWalk = runJson(true);
  // The binary really used the scan (where it loads, which SetUp checked), and the walk when
  // told.
  EXPECT_EQ(withScan["owners_from"], "bpf");
  EXPECT_EQ(withWalk["owners_from"], "proc");
  EXPECT_EQ(byPid(withScan), expected) << withScan["processes"].dump();
  EXPECT_EQ(byPid(withScan), byPid(withWalk));
  EXPECT_EQ(withScan["states"], withWalk["states"]);
  EXPECT_EQ(withScan["unattributed"], (json{{"no_permission", 0}, {"vanished", 0}}));
  EXPECT_EQ(withScan["unattributed"], withWalk["unattributed"]);
  for (const char* key : {"comm", "user", "unit", "container"}) {
    std::map<int, json> a;
    std::map<int, json> b;
    for (const auto& p : withScan["processes"])
      a[p["pid"].get<int>()] = p[key];
    for (const auto& p : withWalk["processes"])
      b[p["pid"].get<int>()] = p[key];
    EXPECT_EQ(a, b) << key;
  }
}

TEST_F(BpfCliTest, LocalCollectorUsesTheScanUnlessTold) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto scanned = collectInProcess(false);
  ASSERT_TRUE(scanned.ok()) << scanned.error().message;
  auto walked = collectInProcess(true);
  ASSERT_TRUE(walked.ok()) << walked.error().message;
  EXPECT_TRUE(scanned->ownersFromBpf);
  EXPECT_FALSE(walked->ownersFromBpf);
  EXPECT_FALSE(scanned->privilegeWarning) << *scanned->privilegeWarning;

  // Every fact about every process, the same both ways.
  auto facts = [](const Snapshot& s) {
    std::map<ProcessKey, std::tuple<std::string, std::uint32_t, std::string, std::string,
                                    std::string, std::string, std::string, StateCounts>>
        m;
    for (const ProcessEntry& p : s.processes) {
      const ProcessInfo& i = p.info;
      m[i.key] = {i.comm, i.uid, i.user, i.cmdline, i.exe, i.cgroup, i.unit, p.states};
    }
    return m;
  };
  const auto a = facts(scanned->snapshot);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a, facts(walked->snapshot));
  for (const auto& [key, f] : a) {
    EXPECT_EQ(std::get<0>(f), "sockfarm");
    EXPECT_NE(std::get<3>(f).find("sockfarm"), std::string::npos);  // cmdline
    EXPECT_NE(std::get<4>(f).find("sockfarm"), std::string::npos);  // exe
  }
  EXPECT_EQ(scanned->snapshot.unattributedVanished, walked->snapshot.unattributedVanished);
  EXPECT_EQ(scanned->snapshot.unattributedNoPermission, 0u);
}

// The scan's claims taken in while the walk goes on (every process it found, Unix-only holders
// too), after it (only holders of sockets the walk saw), or split between the two: the same
// owners, in the same order, and the same facts. This process holds a Unix socket and no TCP
// socket in the namespace: only the first way reads it.
TEST_F(BpfCliTest, ClaimsTakenInBeforeOrAfterTheWalkGiveTheSameOwners) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const UniqueFd a(pair[0]);
  const UniqueFd b(pair[1]);

  // A split with the first holder (in the scan's order, by pid) taken in ahead and the others
  // after the walk.
  std::set<int> holderPids;
  for (const auto& h : farm->holders())
    holderPids.insert(h["pid"].get<int>());
  auto scan = bpf::scanSocketFds();
  ASSERT_TRUE(scan.ok()) << scan.error().message;
  std::size_t split = 0;
  int groupPid = 0;
  int holdersSeen = 0;
  for (const bpf::SocketFd& fd : scan->fds) {
    if (static_cast<int>(fd.pid) == groupPid) continue;
    groupPid = static_cast<int>(fd.pid);
    if (holderPids.contains(groupPid) && ++holdersSeen == 2) break;
    ++split;
  }
  ASSERT_EQ(holdersSeen, 2) << "the scan did not find the holders";

  struct Look {
    Snapshot snapshot;
    std::vector<std::pair<std::uint64_t, std::vector<ProcessKey>>> owners;  // by cookie
    ResolverStats stats;
  };
  auto look = [&](std::size_t ahead) -> Look {
    auto finder = std::make_unique<OneShotOwners>(
        OneShotOwnersOptions{.bpf = true, .threads = 2, .claimAheadProcesses = ahead});
    OneShotOwners* o = finder.get();
    Collector collector(CollectorOptions{.namespaces = NamespaceSelection::Named,
                                         .names = {netns().name()},
                                         .keepAllSockets = true,
                                         .sampler = SamplerMode::Auto},
                        std::move(finder));
    Look l;
    auto r = collector.collect(TimePoint{}, Duration{0}, l.snapshot);
    EXPECT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(o->usedBpf());
    for (const SocketLine& line : collector.sockets()) {
      std::vector<ProcessKey> keys;
      for (std::uint32_t i = 0; i < line.ownerCount; ++i)
        keys.push_back(l.snapshot.processes[l.snapshot.ownerLinks[line.ownerBegin + i]].info.key);
      l.owners.emplace_back(line.socket.cookie, std::move(keys));
    }
    std::sort(l.owners.begin(), l.owners.end());
    l.stats = collector.stats().resolver;
    return l;
  };
  const Look after = look(0);
  const Look ahead = look(std::numeric_limits<std::size_t>::max());
  const Look partly = look(split);

  auto facts = [](const Snapshot& s) {
    std::map<ProcessKey, std::tuple<std::string, std::string, std::string, std::string, std::string,
                                    std::string, StateCounts, CloseWaitKinds>>
        m;
    for (const ProcessEntry& p : s.processes) {
      const ProcessInfo& i = p.info;
      m[i.key] = {i.comm, i.user, i.cmdline, i.exe, i.cgroup, i.unit, p.states, p.closeWaitKinds};
    }
    return m;
  };
  const auto expected = facts(after.snapshot);
  EXPECT_EQ(expected.size(), 4u);  // 3 holders and holder 0's sharer
  for (const auto& [key, f] : expected) {
    EXPECT_NE(std::get<2>(f).find("sockfarm"), std::string::npos) << "cmdline of " << key.pid;
    EXPECT_FALSE(std::get<1>(f).empty()) << "user of " << key.pid;
  }
  for (const Look* l : {&ahead, &partly}) {
    EXPECT_EQ(facts(l->snapshot), expected);
    EXPECT_EQ(l->owners, after.owners);
    ASSERT_EQ(l->snapshot.namespaces.size(), 1u);
    EXPECT_EQ(l->snapshot.namespaces[0].states, after.snapshot.namespaces[0].states);
    EXPECT_EQ(l->snapshot.unattributedVanished, 0u);
  }
  EXPECT_EQ(after.snapshot.unattributedVanished, 0u);
  EXPECT_GT(after.owners.size(), 100u);
  // Taken in ahead: the holders, and at least this process, read for nothing.
  EXPECT_GT(ahead.stats.walks, after.stats.walks);
  EXPECT_GE(after.stats.walks, 4u);
}

// Connections made by this process while collections run (ESTABLISHED client sockets, which
// the dump meets anywhere in its walk of the established hash): the scan beside the dump cannot
// have seen those made after it passed this process, so the second scan must find them; none
// may be reported as vanished (all stay open). The server sides stay in the accept queue:
// they have no inode, hence no holder to find (an accept() installs the fd only after the
// socket got its inode, a window in which no walk of fd tables can see the holder).
TEST_F(BpfCliTest, SocketsMadeDuringTheRunAreStillAttributed) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "60000", "--holders", "4"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  const rlimit saved = nofile;
  nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 8192);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &nofile), 0);
  const std::size_t maxSockets = std::min<std::size_t>(nofile.rlim_cur - 512, 4000);

  std::atomic<bool> stop{false};
  std::atomic<std::size_t> made{0};
  std::vector<UniqueFd> sockets;
  std::thread churner([&] {
    UniqueFd ns(::open(("/run/netns/" + netns().name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = sizeof a;
    if (!listener || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener.get(), 4096) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    while (!stop.load() && sockets.size() < maxSockets) {
      UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!client || ::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        break;
      }
      sockets.push_back(std::move(client));
      made.store(sockets.size());
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    while (!stop.load())  // the listener (and its queue) stays until the rounds are done
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (made.load() < 10)
    std::this_thread::yield();
  std::uint64_t ours = 0;
  int rounds = 0;
  for (; rounds < 5 && made.load() < maxSockets; ++rounds) {
    auto c = collectInProcess(false);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_TRUE(c->ownersFromBpf);
    EXPECT_EQ(c->snapshot.unattributedVanished, 0u) << "round " << rounds;
    EXPECT_EQ(c->snapshot.unattributedNoPermission, 0u) << "round " << rounds;
    for (const ProcessEntry& p : c->snapshot.processes)
      if (p.info.key.pid == ::getpid()) ours = p.states[TcpState::Established];
  }
  stop = true;
  churner.join();
  EXPECT_GE(rounds, 1);
  EXPECT_GT(ours, 0u);
  sockets.clear();
  ::setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
}  // namespace waitwatch::testing
