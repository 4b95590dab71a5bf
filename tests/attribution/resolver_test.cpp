// SPDX-License-Identifier: Apache-2.0
// ProcessResolver over fixture /proc trees (fake_proc.hpp), driven the way the Collector drives
// it: beginPoll, a "dump" through the real SnapshotAggregator, resolve, finish, endPoll.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "attribution/process_resolver.hpp"
#include "fake_proc.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch {
namespace {

using namespace std::chrono_literals;
using testing::FakeProc;
using testing::FakeProcess;
using namespace std::string_literals;

const std::string kId = "3f4e2b1c9d8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a2b1c0d";

SocketRecord sock(TcpState state, std::uint32_t inode, std::uint32_t uid,
                  std::uint16_t localPort = 8080, std::uint16_t remotePort = 40000) {
  SocketRecord s;
  s.family = AddressFamily::V4;
  s.state = state;
  s.local = Endpoint{*IpAddress::parse("127.0.0.1"), localPort};
  s.remote = Endpoint{*IpAddress::parse("127.0.0.1"), remotePort};
  s.inode = inode;
  s.cookie = inode;
  s.uid = uid;
  return s;
}

struct Hooks {
  std::function<void()> afterListing;  // between beginPoll and the dump
  std::function<void()> afterDump;     // between the dump and the search
};

class Poller {
 public:
  explicit Poller(ProcessResolverOptions options) : resolver(std::move(options)) {}

  Snapshot poll(const std::vector<SocketRecord>& sockets, const Hooks& hooks = {}) {
    auto begun = resolver.beginPoll(now);
    EXPECT_TRUE(begun) << begun.error().message;
    if (hooks.afterListing) hooks.afterListing();
    aggregator.begin(now, 5s, resolver);
    NetnsEntry ns;
    ns.ref.inode = 1;
    aggregator.beginNamespace(ns);
    aggregator.beginDump();
    for (const auto& s : sockets) {
      if (s.state == TcpState::Listen) aggregator.add(s);
    }
    aggregator.beginDump();
    for (const auto& s : sockets) {
      if (s.state != TcpState::Listen) aggregator.add(s);
    }
    aggregator.endNamespace();
    if (hooks.afterDump) hooks.afterDump();
    resolver.resolve(aggregator.pendingHints(), now);
    Snapshot snapshot;
    aggregator.finish(snapshot);
    resolver.endPoll();
    now += 5s;
    return snapshot;
  }

  ProcessResolver resolver;
  SnapshotAggregator aggregator;
  TimePoint now{std::chrono::hours(1)};
};

ProcessResolverOptions optionsFor(const FakeProc& fake) {
  return ProcessResolverOptions{.procRoot = fake.procRoot(), .cgroupRoot = fake.cgroupRoot()};
}

const ProcessEntry* find(const Snapshot& s, std::int32_t pid) {
  for (const auto& p : s.processes) {
    if (p.info.key.pid == pid) return &p;
  }
  return nullptr;
}

std::vector<std::int32_t> ownersOf(const Snapshot& s, std::uint32_t inode) {
  for (const auto& cw : s.closeWait) {
    if (cw.inode != inode) continue;
    std::vector<std::int32_t> pids;
    for (std::uint32_t i = cw.ownerBegin; i < cw.ownerBegin + cw.ownerCount; ++i) {
      pids.push_back(s.processes[s.ownerLinks[i]].info.key.pid);
    }
    std::sort(pids.begin(), pids.end());
    return pids;
  }
  return {-1};
}

const std::uint32_t kMe = static_cast<std::uint32_t>(::geteuid());  // owner of the fixture fd dirs
const std::uint32_t kOther = kMe + 4242;

TEST(Resolver, AttributesSocketsWithProcessDetails) {
  FakeProc fake;
  fake.addProcess({.pid = 100,
                   .comm = "nginx",
                   .startTime = 4242,
                   .uid = 0,
                   .cgroup = "0::/system.slice/nginx.service\n",
                   .cmdline = "nginx: master process /usr/sbin/nginx\0"s,
                   .exe = "/usr/sbin/nginx"});
  fake.addSocket(100, 3, 1001);
  fake.addSocket(100, 4, 1002);
  fake.link(100, 5, "pipe:[77]");
  fake.link(100, 6, "/dev/null");
  fake.addProcess({.pid = 200,
                   .comm = "redis-server",
                   .uid = 54321,
                   .cgroup = "0::/system.slice/docker-" + kId + ".scope\n",
                   .cmdline = "redis-server\0*:6379\0"s});
  fake.addSocket(200, 7, 2001);
  Poller poller(optionsFor(fake));
  const Snapshot s = poller.poll({sock(TcpState::Listen, 1001, kMe, 80, 0),
                                  sock(TcpState::CloseWait, 1002, kMe, 80, 40000),
                                  sock(TcpState::Established, 2001, kMe, 6379, 40001)});
  ASSERT_EQ(s.processes.size(), 2u);
  const ProcessEntry* nginx = find(s, 100);
  ASSERT_TRUE(nginx);
  EXPECT_EQ(nginx->info.key, (ProcessKey{100, 4242}));
  EXPECT_EQ(nginx->info.comm, "nginx");
  EXPECT_EQ(nginx->info.cmdline, "nginx: master process /usr/sbin/nginx");
  EXPECT_EQ(nginx->info.exe, "/usr/sbin/nginx");
  EXPECT_EQ(nginx->info.uid, 0u);
  EXPECT_EQ(nginx->info.user, "root");
  EXPECT_EQ(nginx->info.unit, "nginx.service");
  EXPECT_EQ(nginx->info.cgroup, "/system.slice/nginx.service");
  EXPECT_TRUE(nginx->info.container.empty());
  EXPECT_EQ(nginx->states[TcpState::Listen], 1u);
  EXPECT_EQ(nginx->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(nginx->listenPorts, std::vector<std::uint16_t>{80});
  const ProcessEntry* redis = find(s, 200);
  ASSERT_TRUE(redis);
  EXPECT_EQ(redis->info.user, "54321");  // no such user: the uid as text
  EXPECT_EQ(redis->info.cmdline, "redis-server *:6379");
  EXPECT_EQ(redis->info.container.runtime, "docker");
  EXPECT_EQ(redis->info.container.id, kId);
  EXPECT_EQ(redis->info.unit, "docker-" + kId + ".scope");
  EXPECT_EQ(redis->states[TcpState::Established], 1u);
  EXPECT_EQ(s.unattributedVanished + s.unattributedNoPermission, 0u);
  // Everything was learnt from the walk of new processes before the dump.
  EXPECT_EQ(poller.resolver.stats().pending, 0u);
  EXPECT_FALSE(poller.resolver.stats().fullWalk);
}

TEST(Resolver, WithoutProcessDetailsKeepsWhatTheDaemonShows) {
  FakeProc fake;
  fake.addProcess({.pid = 100,
                   .comm = "nginx",
                   .startTime = 4242,
                   .uid = 0,
                   .cgroup = "0::/system.slice/docker-" + kId + ".scope\n",
                   .cmdline = "nginx: master process /usr/sbin/nginx\0"s,
                   .exe = "/usr/sbin/nginx"});
  fake.addSocket(100, 3, 1001);
  ProcessResolverOptions options = optionsFor(fake);
  options.processDetails = false;
  Poller poller(options);
  const Snapshot s = poller.poll({sock(TcpState::CloseWait, 1001, kMe, 80, 40000)});
  const ProcessEntry* nginx = find(s, 100);
  ASSERT_TRUE(nginx);
  EXPECT_EQ(nginx->info.key, (ProcessKey{100, 4242}));
  EXPECT_EQ(nginx->info.comm, "nginx");
  EXPECT_EQ(nginx->info.user, "root");
  EXPECT_EQ(nginx->info.unit, "docker-" + kId + ".scope");
  EXPECT_EQ(nginx->info.container.runtime, "docker");
  EXPECT_EQ(nginx->info.container.id, kId);
  EXPECT_EQ(nginx->states[TcpState::CloseWait], 1u);
  // Not read, not kept: only the CLI shows them.
  EXPECT_EQ(nginx->info.cmdline, "");
  EXPECT_EQ(nginx->info.exe, "");
  EXPECT_EQ(nginx->info.cgroup, "");
}

TEST(Resolver, SharedSocketListsEveryOwner) {
  FakeProc fake;
  fake.addProcess({.pid = 300, .comm = "server"});
  fake.addProcess({.pid = 301, .comm = "server"});
  fake.addSocket(300, 4, 3001);  // inherited across fork(): both hold it
  fake.addSocket(301, 4, 3001);
  fake.addSocket(301, 5, 3002);
  Poller poller(optionsFor(fake));
  const Snapshot s =
      poller.poll({sock(TcpState::CloseWait, 3001, kMe), sock(TcpState::CloseWait, 3002, kMe)});
  EXPECT_EQ(s.totals()[TcpState::CloseWait], 2u);
  EXPECT_EQ(ownersOf(s, 3001), (std::vector<std::int32_t>{300, 301}));
  EXPECT_EQ(ownersOf(s, 3002), std::vector<std::int32_t>{301});
  EXPECT_EQ(find(s, 300)->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(find(s, 301)->states[TcpState::CloseWait], 2u);
}

TEST(Resolver, NewSocketOfAKnownProcessIsFoundByUidWithoutAFullWalk) {
  FakeProc fake;
  fake.addProcess({.pid = 100});
  fake.addSocket(100, 3, 1001);
  fake.link(100, 4, "/var/log/demo.log");
  fake.addProcess({.pid = 200});
  fake.addSocket(200, 3, 2001);
  auto options = optionsFor(fake);
  options.revalidatePerPoll = 0;  // only the uid/cgroup search may find it
  Poller poller(options);
  poller.poll({sock(TcpState::Established, 1001, kMe), sock(TcpState::Established, 2001, kOther)});

  fake.addSocket(100, 5, 1003);
  const Snapshot s = poller.poll({sock(TcpState::Established, 1001, kMe),
                                  sock(TcpState::Established, 2001, kOther),
                                  sock(TcpState::CloseWait, 1003, kMe)});
  EXPECT_EQ(ownersOf(s, 1003), std::vector<std::int32_t>{100});
  EXPECT_EQ(find(s, 100)->states.total(), 2u);
  const ResolverStats& st = poller.resolver.stats();
  EXPECT_EQ(st.pending, 1u);
  EXPECT_FALSE(st.fullWalk);
  EXPECT_EQ(st.walks, 1u);    // of the socket's uid, only the process whose fd table changed
  EXPECT_EQ(st.fdsRead, 2u);  // the log file and the new fd: fd 3 is a socket it still holds
}

TEST(Resolver, OtherUidsNeedTheRateLimitedFullWalk) {
  FakeProc fake;
  fake.addProcess({.pid = 100});
  fake.addSocket(100, 3, 1001);
  auto options = optionsFor(fake);
  options.revalidatePerPoll = 0;
  options.fullWalkInterval = 30s;
  Poller poller(options);
  poller.poll({sock(TcpState::Established, 1001, kMe)});

  // A socket whose uid matches no process (say, passed over a unix socket): only a full walk
  // can find it.
  fake.addSocket(100, 4, 1002);
  Snapshot s = poller.poll(
      {sock(TcpState::Established, 1001, kMe), sock(TcpState::CloseWait, 1002, kOther)});
  EXPECT_TRUE(poller.resolver.stats().fullWalk);
  EXPECT_EQ(ownersOf(s, 1002), std::vector<std::int32_t>{100});

  // Five seconds later another one: the full walk is rate-limited, so it is unattributed...
  fake.addSocket(100, 5, 1003);
  s = poller.poll({sock(TcpState::Established, 1001, kMe), sock(TcpState::CloseWait, 1002, kOther),
                   sock(TcpState::CloseWait, 1003, kOther)});
  EXPECT_FALSE(poller.resolver.stats().fullWalk);
  EXPECT_EQ(ownersOf(s, 1003), std::vector<std::int32_t>{});
  EXPECT_EQ(s.unattributedVanished, 1u);
  EXPECT_EQ(find(s, 100)->states.total(), 2u);

  // ...until the interval has passed.
  poller.now += 30s;
  s = poller.poll({sock(TcpState::Established, 1001, kMe), sock(TcpState::CloseWait, 1002, kOther),
                   sock(TcpState::CloseWait, 1003, kOther)});
  EXPECT_TRUE(poller.resolver.stats().fullWalk);
  EXPECT_EQ(poller.resolver.stats().fullWalks, 2u);
  EXPECT_EQ(ownersOf(s, 1003), std::vector<std::int32_t>{100});
  EXPECT_EQ(s.unattributedVanished, 0u);
}

TEST(Resolver, CgroupOfTheSocketNarrowsTheSearch) {
  FakeProc fake;
  fake.addProcess({.pid = 700, .cgroup = "0::/system.slice/app.service\n"});
  fake.addSocket(700, 3, 7001);
  fake.addProcess({.pid = 701});
  const std::uint64_t cgroupId = fake.addCgroup("system.slice/app.service", "700\n");
  fake.addCgroup("system.slice/other.service", "701\n");
  auto options = optionsFor(fake);
  options.revalidatePerPoll = 0;
  Poller poller(options);
  poller.poll({sock(TcpState::Established, 7001, kMe)});

  fake.addSocket(700, 4, 7002);
  fake.addSocket(701, 4, 7100);  // changed too, but in another cgroup and uid
  SocketRecord s = sock(TcpState::CloseWait, 7002, kOther);  // e.g. created before a setuid()
  s.hasCgroupId = true;
  s.cgroupId = cgroupId;
  const Snapshot snap = poller.poll({sock(TcpState::Established, 7001, kMe), s});
  EXPECT_EQ(ownersOf(snap, 7002), std::vector<std::int32_t>{700});
  EXPECT_FALSE(poller.resolver.stats().fullWalk);
  EXPECT_EQ(poller.resolver.stats().walks, 1u);  // not 701
}

TEST(Resolver, ProcessBornAfterTheListingIsFound) {
  FakeProc fake;
  fake.addProcess({.pid = 100});
  fake.addSocket(100, 3, 1001);
  Poller poller(optionsFor(fake));
  poller.poll({sock(TcpState::Established, 1001, kMe)});
  Hooks hooks;
  hooks.afterListing = [&] {
    fake.addProcess({.pid = 400, .comm = "worker"});
    fake.addSocket(400, 3, 4001);
  };
  const Snapshot s = poller.poll(
      {sock(TcpState::Established, 1001, kMe), sock(TcpState::CloseWait, 4001, kOther)}, hooks);
  EXPECT_EQ(ownersOf(s, 4001), std::vector<std::int32_t>{400});
  EXPECT_EQ(find(s, 400)->info.comm, "worker");
  EXPECT_FALSE(poller.resolver.stats().fullWalk);
}

// A process new in this poll is walked before the dump; a socket it opens between that walk and
// the dump (a short-lived client connecting right after its start, such as `waitwatch --from`)
// is found after the dump, in the same poll: it is not reported unattributed for a poll.
TEST(Resolver, NewProcessOpeningASocketAfterItsWalkIsFoundInTheSamePoll) {
  FakeProc fake;
  fake.addProcess({.pid = 100});
  fake.addSocket(100, 3, 1001);
  Poller poller(optionsFor(fake));  // the round-robin re-check only visits processes with sockets
  poller.poll({sock(TcpState::Established, 1001, kMe)});

  fake.addProcess({.pid = 400, .comm = "client"});  // listed and walked by the next poll
  Hooks hooks;
  hooks.afterListing = [&] { fake.addSocket(400, 3, 4001); };
  const Snapshot s = poller.poll(
      {sock(TcpState::Established, 1001, kMe), sock(TcpState::CloseWait, 4001, kMe)}, hooks);
  EXPECT_EQ(ownersOf(s, 4001), std::vector<std::int32_t>{400});
  EXPECT_EQ(s.unattributedVanished + s.unattributedNoPermission, 0u);
  EXPECT_FALSE(poller.resolver.stats().fullWalk);
}

// At the first poll every process is new and walked before the dump; a socket still unknown
// after it costs no second walk of them all (at most the rate-limited full walk, which skips
// what this poll walked).
TEST(Resolver, FirstPollWalksEachProcessOnce) {
  FakeProc fake;
  for (int pid = 100; pid < 110; ++pid) {
    fake.addProcess({.pid = pid});
    fake.addSocket(pid, 3, 1000 + static_cast<std::uint32_t>(pid));
  }
  Poller poller(optionsFor(fake));
  std::vector<SocketRecord> sockets;
  for (std::uint32_t pid = 100; pid < 110; ++pid)
    sockets.push_back(sock(TcpState::Established, 1000 + pid, kMe));
  sockets.push_back(sock(TcpState::CloseWait, 9999, kMe));  // its holder exited meanwhile
  const Snapshot s = poller.poll(sockets);
  EXPECT_EQ(poller.resolver.stats().walks, 10u);
  EXPECT_EQ(s.unattributedVanished, 1u);
}

TEST(Resolver, ExitedProcessLosesItsSockets) {
  FakeProc fake;
  fake.addProcess({.pid = 500});
  fake.addSocket(500, 3, 5001);
  fake.addProcess({.pid = 501});
  fake.addSocket(501, 3, 5002);
  Poller poller(optionsFor(fake));
  Snapshot s =
      poller.poll({sock(TcpState::CloseWait, 5001, kMe), sock(TcpState::CloseWait, 5002, kMe)});
  ASSERT_TRUE(find(s, 500));

  // 500 exits between polls; its socket is still in the dump (the kernel has not caught up):
  // never attributed to a process that is gone.
  fake.removeProcess(500);
  // 501 exits after the listing, before the walk that looks for a new socket of its.
  fake.addSocket(501, 4, 5003);
  Hooks hooks;
  hooks.afterDump = [&] { fake.removeProcess(501); };
  s = poller.poll({sock(TcpState::CloseWait, 5001, kMe), sock(TcpState::CloseWait, 5002, kMe),
                   sock(TcpState::CloseWait, 5003, kMe)},
                  hooks);
  EXPECT_FALSE(find(s, 500));
  EXPECT_EQ(ownersOf(s, 5001), std::vector<std::int32_t>{});
  EXPECT_EQ(ownersOf(s, 5003), std::vector<std::int32_t>{});
  EXPECT_EQ(s.unattributedVanished, 2u);
  // 501 held 5002 when the dump ran: that is what the dump saw, and the snapshot still names
  // it although its slot was released after the dump.
  EXPECT_EQ(ownersOf(s, 5002), std::vector<std::int32_t>{501});
  ASSERT_TRUE(find(s, 501));
  EXPECT_EQ(find(s, 501)->info.key.pid, 501);

  s = poller.poll({sock(TcpState::CloseWait, 5002, kMe)});
  EXPECT_TRUE(s.processes.empty());
  EXPECT_EQ(s.unattributedVanished, 1u);
}

TEST(Resolver, ReusedPidIsANewProcess) {
  FakeProc fake;
  fake.addProcess({.pid = 600, .comm = "old", .startTime = 1000});
  fake.addSocket(600, 3, 6001);
  Poller poller(optionsFor(fake));
  Snapshot s = poller.poll({sock(TcpState::CloseWait, 6001, kMe)});
  ASSERT_TRUE(find(s, 600));
  EXPECT_EQ(find(s, 600)->info.key.startTime, 1000u);

  // The old process exited and the pid now names another one, holding another socket; the old
  // socket lingers in the dump: it must not be pinned on the newcomer.
  fake.reusePid({.pid = 600, .comm = "new", .startTime = 2000});
  fake.addSocket(600, 3, 6002);
  s = poller.poll({sock(TcpState::CloseWait, 6001, kMe), sock(TcpState::CloseWait, 6002, kMe)});
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].info.key, (ProcessKey{600, 2000}));
  EXPECT_EQ(s.processes[0].info.comm, "new");
  EXPECT_EQ(ownersOf(s, 6002), std::vector<std::int32_t>{600});
  EXPECT_EQ(ownersOf(s, 6001), std::vector<std::int32_t>{});
  EXPECT_EQ(s.processes[0].states.total(), 1u);
}

TEST(Resolver, ClaimOnASocketClosedHereButHeldElsewhereIsDropped) {
  FakeProc fake;
  fake.addProcess({.pid = 800});
  fake.addProcess({.pid = 801});
  fake.addSocket(800, 3, 8001);  // fork(): both hold it, then the parent closes its copy
  fake.addSocket(801, 3, 8001);
  Poller poller(optionsFor(fake));
  Snapshot s = poller.poll({sock(TcpState::CloseWait, 8001, kMe)});
  EXPECT_EQ(ownersOf(s, 8001), (std::vector<std::int32_t>{800, 801}));
  fake.closeFd(800, 3);
  poller.poll({sock(TcpState::CloseWait, 8001, kMe)});  // the changed fd table is re-read
  s = poller.poll({sock(TcpState::CloseWait, 8001, kMe)});
  EXPECT_EQ(ownersOf(s, 8001), std::vector<std::int32_t>{801});
  EXPECT_FALSE(find(s, 800));
}

TEST(Resolver, CacheFollowsTheDump) {
  FakeProc fake;
  fake.addProcess({.pid = 900});
  for (int fd = 3; fd < 13; ++fd)
    fake.addSocket(900, fd, static_cast<std::uint32_t>(9000 + fd));
  fake.link(900, 20, "socket:[99999]");  // a unix socket: never in a TCP dump
  Poller poller(optionsFor(fake));
  std::vector<SocketRecord> all;
  for (int fd = 3; fd < 13; ++fd)
    all.push_back(sock(TcpState::Established, static_cast<std::uint32_t>(9000 + fd), kMe));
  poller.poll(all);
  EXPECT_EQ(poller.resolver.stats().cachedInodes, 10u);
  all.resize(4);
  const Snapshot s = poller.poll(all);
  EXPECT_EQ(poller.resolver.stats().cachedInodes, 4u);
  EXPECT_EQ(find(s, 900)->states.total(), 4u);
}

TEST(Resolver, SecondPollReadsNoFdDirectoryWhenNothingChanged) {
  // The cold walk claims every socket a process holds, the unix and UDP ones too (it cannot
  // tell them apart before the dump); the sweep drops those, and that alone must not make the
  // next poll re-read the holders.
  FakeProc fake;
  for (std::int32_t pid = 100; pid < 104; ++pid) {
    fake.addProcess({.pid = pid});
    const auto base = static_cast<std::uint32_t>(pid) * 100;
    for (int fd = 3; fd < 8; ++fd)
      fake.addSocket(pid, fd, base + static_cast<std::uint32_t>(fd));
    fake.link(pid, 10, "socket:[" + std::to_string(base + 90) + "]");  // unix: never dumped
    fake.link(pid, 11, "socket:[" + std::to_string(base + 91) + "]");  // UDP: never dumped
  }
  std::vector<SocketRecord> dump;
  for (std::int32_t pid = 100; pid < 104; ++pid) {
    for (std::uint32_t fd = 3; fd < 8; ++fd)
      dump.push_back(sock(TcpState::Established, static_cast<std::uint32_t>(pid) * 100 + fd, kMe,
                          static_cast<std::uint16_t>(40000 + pid * 10 + fd), 443));
  }
  Poller poller(optionsFor(fake));  // revalidation on: it checks owners every poll
  poller.poll(dump);
  EXPECT_EQ(poller.resolver.stats().walks, 4u);
  EXPECT_EQ(poller.resolver.stats().fdsRead, 28u);
  EXPECT_EQ(poller.resolver.stats().cachedInodes, 20u);

  for (int n = 0; n < 3; ++n) {
    const Snapshot s = poller.poll(dump);
    const ResolverStats& st = poller.resolver.stats();
    EXPECT_EQ(st.walks, 0u) << "poll " << n + 2;
    EXPECT_EQ(st.fdsRead, 0u) << "poll " << n + 2;
    EXPECT_EQ(st.changeChecks, 4u) << "poll " << n + 2;  // one stat() per owner, no walk
    EXPECT_EQ(st.pending, 0u);
    ASSERT_TRUE(find(s, 101));
    EXPECT_EQ(find(s, 101)->states[TcpState::Established], 5u);
  }

  // A socket the dump had shown goes away: its holder is re-read at the next check.
  std::vector<SocketRecord> fewer(dump.begin() + 1, dump.end());
  poller.poll(fewer);
  const Snapshot s = poller.poll(fewer);
  EXPECT_EQ(poller.resolver.stats().walks, 1u);
  EXPECT_EQ(find(s, 100)->states[TcpState::Established], 4u);
}

TEST(Resolver, GarbageProcFilesNeverCrashOrMisattribute) {
  FakeProc fake;
  fake.addProcess({.pid = 110});
  fake.writeFile(110, "stat", "110 garbage");  // unparsable: the process is skipped
  fake.addSocket(110, 3, 1101);
  fake.addProcess({.pid = 111, .comm = "odd"});
  fake.writeFile(111, "cgroup", "\xff\xfe garbage\n");
  fake.writeFile(111, "status", "Uid: x\n");
  fake.writeFile(111, "cmdline", std::string(100000, '\x01'));
  fake.link(111, 3, "socket:[abc]");
  fake.link(111, 4, "socket:[1111");
  fake.addSocket(111, 5, 1111);
  fake.addProcess({.pid = 112});
  std::filesystem::remove_all(fake.dir(112) / "fd");  // exits mid-walk
  std::filesystem::create_directories(fake.procRoot() + "/self");
  std::filesystem::create_directories(fake.procRoot() + "/0123");
  Poller poller(optionsFor(fake));
  const Snapshot s =
      poller.poll({sock(TcpState::CloseWait, 1101, kMe), sock(TcpState::CloseWait, 1111, kMe)});
  EXPECT_EQ(ownersOf(s, 1101), std::vector<std::int32_t>{});
  EXPECT_EQ(ownersOf(s, 1111), std::vector<std::int32_t>{111});
  const ProcessEntry* odd = find(s, 111);
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->info.unit, "");
  EXPECT_LE(odd->info.cmdline.size(), kMaxCmdlineBytes);
  EXPECT_EQ(odd->info.cmdline.substr(0, 3), "???");
}

// Runs `check` without the privilege to read other users' fds: as root, in a child that
// dropped to nobody (root would bypass the permission bits); otherwise directly.
void withoutPrivilege(const std::function<void()>& check) {
  if (::geteuid() != 0) {
    check();
    return;
  }
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    check();
    ::_exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the unprivileged check failed (see its output above)";
}

TEST(Resolver, UnreadableFdsAreCountedAndReportedOnce) {
  FakeProc fake;
  const std::uint32_t fixtureOwner = kMe;  // owner of the fixture's /proc/<pid> directories
  fake.addProcess({.pid = 120, .comm = "mine"});
  fake.addSocket(120, 3, 1201);
  fake.addProcess({.pid = 121, .comm = "sshd"});
  fake.addSocket(121, 3, 1211);
  fake.setFdDirMode(121, ::geteuid() == 0 ? 0700 : 0000);
  withoutPrivilege([&] {
    Poller poller(optionsFor(fake));
    const Snapshot s = poller.poll({sock(TcpState::CloseWait, 1201, fixtureOwner),
                                    sock(TcpState::CloseWait, 1211, fixtureOwner),
                                    sock(TcpState::CloseWait, 1299, fixtureOwner + 1)});
    EXPECT_EQ(ownersOf(s, 1201), std::vector<std::int32_t>{120});
    EXPECT_EQ(ownersOf(s, 1211), std::vector<std::int32_t>{});
    EXPECT_EQ(s.unattributedNoPermission, 1u);  // the hidden process's uid
    EXPECT_EQ(s.unattributedVanished, 1u);      // nobody of that uid is hidden from us
    EXPECT_EQ(poller.resolver.stats().unreadableProcesses, 1u);
    auto warning = poller.resolver.takePermissionWarning();
    ASSERT_TRUE(warning);
    EXPECT_NE(warning->find("121/fd (sshd"), std::string::npos) << *warning;
    EXPECT_NE(warning->find("CAP_SYS_PTRACE"), std::string::npos) << *warning;
    EXPECT_FALSE(poller.resolver.takePermissionWarning());  // said once
    // It keeps working with what it can see.
    const Snapshot again = poller.poll({sock(TcpState::CloseWait, 1201, fixtureOwner),
                                        sock(TcpState::CloseWait, 1211, fixtureOwner)});
    EXPECT_EQ(again.unattributedNoPermission, 1u);
    EXPECT_EQ(find(again, 120)->states[TcpState::CloseWait], 1u);
    EXPECT_FALSE(poller.resolver.takePermissionWarning());
  });
}

}  // namespace
}  // namespace waitwatch
