// SPDX-License-Identifier: Apache-2.0
#include "proc/aggregator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/addresses.hpp"
#include "support/table_owners.hpp"

namespace waitwatch {
namespace {

using testing::TableOwners;

using namespace std::chrono_literals;

Endpoint ep(const std::string& text) {
  return testing::endpoint(text);
}

SocketRecord sock(TcpState state, const std::string& local, const std::string& remote,
                  std::uint32_t inode, std::uint64_t cookie = 0, std::uint32_t uid = 1000) {
  SocketRecord s;
  s.state = state;
  s.local = ep(local);
  s.remote = ep(remote);
  s.family = s.local.address.family;
  s.inode = inode;
  s.cookie = cookie != 0 ? cookie : 0x100000 + inode;
  s.uid = uid;
  return s;
}

SocketRecord timeWait(const std::string& local, const std::string& remote,
                      std::uint32_t remainingMs) {
  SocketRecord s = sock(TcpState::TimeWait, local, remote, 0);
  s.timer = SocketTimer::TimeWait;
  s.timerRemainingMs = remainingMs;
  return s;
}

NetnsEntry netns(std::uint64_t inode, EphemeralRange range = EphemeralRange(32768, 60999)) {
  NetnsEntry e;
  e.ref.inode = inode;
  e.ephemeral = range;
  return e;
}

// One poll of one namespace: LISTEN sockets first, then the rest, as the kernel orders a dump.
// `sinceLastDump`: the time since the namespace's previous dump (nullopt: it had none).
void feed(SnapshotAggregator& agg, NetnsEntry ns, const std::vector<SocketRecord>& sockets,
          std::optional<Duration> sinceLastDump = std::nullopt) {
  agg.beginNamespace(std::move(ns));
  agg.beginDump(sinceLastDump);
  for (const auto& s : sockets) {
    if (s.state == TcpState::Listen) agg.add(s);
  }
  agg.beginDump(sinceLastDump);
  for (const auto& s : sockets) {
    if (s.state != TcpState::Listen) agg.add(s);
  }
  agg.endNamespace();
}

const ProcessEntry* find(const Snapshot& s, std::int32_t pid, std::uint32_t netnsIndex = 0) {
  for (const auto& p : s.processes) {
    if (p.info.key.pid == pid && p.netns == netnsIndex) return &p;
  }
  return nullptr;
}

std::vector<std::int32_t> ownerPids(const Snapshot& s, std::uint32_t begin, std::uint32_t count) {
  std::vector<std::int32_t> pids;
  for (std::uint32_t i = begin; i < begin + count; ++i) {
    pids.push_back(s.processes.at(s.ownerLinks.at(i)).info.key.pid);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

TEST(Aggregator, CountsPerProcessAndListenPorts) {
  TableOwners owners;
  const auto nginx = owners.addProcess(100, "nginx");
  const auto curl = owners.addProcess(200, "curl");
  for (std::uint32_t i : {1, 2, 3, 4, 5, 6})
    owners.own(i, nginx);
  owners.own(7, curl);
  owners.own(8, curl);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {sock(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", 1),
        sock(TcpState::Listen, "[::]:80", "[::]:0", 2),
        sock(TcpState::Listen, "0.0.0.0:443", "0.0.0.0:0", 3),
        sock(TcpState::Established, "10.0.0.1:80", "10.0.0.9:50000", 4),
        sock(TcpState::Established, "10.0.0.1:443", "10.0.0.9:50001", 5),
        sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.9:50002", 6),
        sock(TcpState::Established, "10.0.0.1:40000", "10.0.0.7:5432", 7),
        sock(TcpState::FinWait1, "10.0.0.1:40001", "10.0.0.7:5432", 8),
        sock(TcpState::FinWait2, "10.0.0.1:80", "10.0.0.9:50003", 0)});  // orphaned
  Snapshot s;
  agg.finish(s);

  ASSERT_EQ(s.namespaces.size(), 1u);
  const StateCounts& ns = s.namespaces[0].states;
  EXPECT_EQ(ns[TcpState::Listen], 3u);
  EXPECT_EQ(ns[TcpState::Established], 3u);
  EXPECT_EQ(ns[TcpState::CloseWait], 1u);
  EXPECT_EQ(ns[TcpState::FinWait1], 1u);
  EXPECT_EQ(ns[TcpState::FinWait2], 1u);
  EXPECT_EQ(ns.total(), 9u);
  EXPECT_EQ(s.totals(), ns);

  ASSERT_EQ(s.processes.size(), 2u);
  EXPECT_EQ(s.processes[0].info.key.pid, 100);  // ordered by pid
  const ProcessEntry* n = find(s, 100);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->info.comm, "nginx");
  EXPECT_EQ(n->states[TcpState::Listen], 3u);
  EXPECT_EQ(n->states[TcpState::Established], 2u);
  EXPECT_EQ(n->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(n->states.total(), 6u);
  EXPECT_EQ(n->listenPorts, (std::vector<std::uint16_t>{80, 443}));  // sorted, unique
  const ProcessEntry* c = find(s, 200);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->states[TcpState::Established], 1u);
  EXPECT_EQ(c->states[TcpState::FinWait1], 1u);
  EXPECT_TRUE(c->listenPorts.empty());

  ASSERT_EQ(s.closeWait.size(), 1u);
  EXPECT_EQ(s.closeWait[0].inode, 6u);
  EXPECT_EQ(s.local(s.closeWait[0]), ep("10.0.0.1:80"));
  EXPECT_EQ(ownerPids(s, s.closeWait[0].ownerBegin, s.closeWait[0].ownerCount),
            std::vector<std::int32_t>{100});
  EXPECT_EQ(s.unattributedNoPermission + s.unattributedVanished, 0u);
}

TEST(Aggregator, SharedSocketCountsOnceInTotalsAndUnderEachOwner) {
  TableOwners owners;
  const auto parent = owners.addProcess(300, "server");
  const auto child = owners.addProcess(301, "server");
  owners.own(50, parent);
  owners.own(50, child);  // inherited across fork()
  owners.own(51, child);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {sock(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.2:40000", 50),
        sock(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.2:40001", 51)});
  Snapshot s;
  agg.finish(s);
  EXPECT_EQ(s.totals()[TcpState::CloseWait], 2u);
  ASSERT_TRUE(find(s, 300));
  ASSERT_TRUE(find(s, 301));
  EXPECT_EQ(find(s, 300)->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(find(s, 301)->states[TcpState::CloseWait], 2u);
  ASSERT_EQ(s.closeWait.size(), 2u);
  const auto& shared = s.closeWait[0].inode == 50 ? s.closeWait[0] : s.closeWait[1];
  EXPECT_EQ(ownerPids(s, shared.ownerBegin, shared.ownerCount),
            (std::vector<std::int32_t>{300, 301}));
}

TEST(Aggregator, TimeWaitServerSideNamesTheListener) {
  TableOwners owners;
  const auto web = owners.addProcess(400, "web");
  owners.own(1, web);
  owners.own(2, web);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  std::vector<SocketRecord> sockets = {
      sock(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0", 1),
      sock(TcpState::Established, "10.0.0.1:8080", "10.0.0.5:41000", 2)};
  for (int i = 0; i < 5; ++i) {
    sockets.push_back(timeWait("10.0.0.1:8080", "10.0.0.5:" + std::to_string(42000 + i), 30000));
  }
  sockets.push_back(timeWait("10.0.0.2:8080", "10.0.0.6:42000", 30000));  // another local address
  feed(agg, netns(1), sockets);
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.timeWait.size(), 2u);
  const TimeWaitGroup& g = s.timeWait[0];  // the larger group first
  EXPECT_TRUE(g.serverSide);
  EXPECT_EQ(g.destination, ep("10.0.0.1:8080"));
  EXPECT_EQ(g.timeWait, 5u);
  EXPECT_EQ(g.live, 0u);  // accepted connections hold no ephemeral port
  ASSERT_NE(g.listener, kNoIndex);
  EXPECT_EQ(s.processes[g.listener].info.key.pid, 400);
  EXPECT_TRUE(s.timeWait[1].serverSide);
  EXPECT_EQ(s.timeWait[1].destination, ep("10.0.0.2:8080"));
  EXPECT_EQ(s.processes.at(s.timeWait[1].listener).info.key.pid, 400);  // via the wildcard
  EXPECT_EQ(s.namespaces[0].states[TcpState::TimeWait], 6u);
}

TEST(Aggregator, TimeWaitClientSideGroupsByDestinationWithLiveAndRatio) {
  TableOwners owners;
  const auto app = owners.addProcess(500, "app");
  for (std::uint32_t i = 1; i <= 3; ++i)
    owners.own(i, app);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  std::vector<SocketRecord> sockets;
  for (int i = 0; i < 30; ++i) {
    sockets.push_back(timeWait("10.0.0.1:" + std::to_string(33000 + i), "10.0.0.7:5432", 30000));
  }
  for (int i = 0; i < 4; ++i) {
    sockets.push_back(timeWait("10.0.0.1:" + std::to_string(34000 + i), "10.0.0.8:443", 30000));
  }
  // IPv4-mapped sockets of a dual-stack client group with their IPv4 twins.
  sockets.push_back(timeWait("[::ffff:10.0.0.1]:35000", "[::ffff:10.0.0.7]:5432", 30000));
  // Live connections of the same (source, destination) use the same port range.
  sockets.push_back(sock(TcpState::Established, "10.0.0.1:36000", "10.0.0.7:5432", 1));
  sockets.push_back(sock(TcpState::SynSent, "10.0.0.1:36001", "10.0.0.7:5432", 2));
  // A live connection elsewhere makes no TIME_WAIT group.
  sockets.push_back(sock(TcpState::Established, "10.0.0.1:36002", "10.0.0.9:80", 3));
  feed(agg, netns(1, EphemeralRange(32768, 32768 + 999)), sockets);
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.timeWait.size(), 2u);
  const TimeWaitGroup& db = s.timeWait[0];
  EXPECT_FALSE(db.serverSide);
  EXPECT_EQ(db.source, *IpAddress::parse("10.0.0.1"));
  EXPECT_EQ(db.destination, ep("10.0.0.7:5432"));
  EXPECT_EQ(db.timeWait, 31u);
  EXPECT_EQ(db.live, 2u);
  EXPECT_EQ(db.listener, kNoIndex);
  EXPECT_DOUBLE_EQ(db.portUsageRatio, 33.0 / 1000.0);
  const TimeWaitGroup& web = s.timeWait[1];
  EXPECT_EQ(web.destination, ep("10.0.0.8:443"));
  EXPECT_EQ(web.timeWait, 4u);
  EXPECT_EQ(web.live, 0u);
  EXPECT_DOUBLE_EQ(web.portUsageRatio, 4.0 / 1000.0);
}

TEST(Aggregator, CreatedCountsTimeWaitYoungerThanThePollInterval) {
  TableOwners owners;
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);  // created: more than 55 s left
  feed(agg, netns(1),
       {timeWait("10.0.0.1:40000", "10.0.0.7:80", 59999),
        timeWait("10.0.0.1:40001", "10.0.0.7:80", 55001),
        timeWait("10.0.0.1:40002", "10.0.0.7:80", 55000),
        timeWait("10.0.0.1:40003", "10.0.0.7:80", 100),
        timeWait("10.0.0.1:40004", "10.0.0.8:80", 58000)});
  Snapshot s;
  agg.finish(s);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 3u);
  ASSERT_EQ(s.timeWait.size(), 2u);
  EXPECT_EQ(s.timeWait[0].timeWait, 4u);
  EXPECT_EQ(s.timeWait[0].created, 2u);
  EXPECT_EQ(s.timeWait[1].created, 1u);

  // A poll interval of a minute or more: every TIME_WAIT socket is new.
  agg.begin(TimePoint{}, 60s, owners);
  feed(agg, netns(1), {timeWait("10.0.0.1:40000", "10.0.0.7:80", 10)});
  agg.finish(s);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 1u);
  EXPECT_EQ(s.namespaces[0].timeWaitWindow, 60s);
}

TEST(Aggregator, CreatedIsCountedOverTheTimeSinceTheNamespacesLastDump) {
  TableOwners owners;
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  // The previous dump started 3 s ago (this poll came early): a socket with 56 s left is
  // 4 s old and was in that dump, so it is not new, though younger than the interval.
  feed(agg, netns(1),
       {timeWait("10.0.0.1:40000", "10.0.0.7:80", 57500),
        timeWait("10.0.0.1:40001", "10.0.0.7:80", 56000)},
       3s);
  // A second namespace, never dumped before, falls back to the interval.
  feed(agg, netns(2), {timeWait("10.0.0.1:40000", "10.0.0.7:80", 56000)});
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.namespaces.size(), 2u);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 1u);
  EXPECT_EQ(s.namespaces[0].timeWaitWindow, 3s);
  EXPECT_EQ(s.namespaces[1].timeWaitCreated, 1u);
  EXPECT_EQ(s.namespaces[1].timeWaitWindow, 5s);

  // A dump restarted later starts its window later too.
  agg.begin(TimePoint{}, 5s, owners);
  agg.beginNamespace(netns(1));
  agg.beginDump(2s);
  agg.add(timeWait("10.0.0.1:40000", "10.0.0.7:80", 57500));
  agg.restartDump(4s);
  agg.add(timeWait("10.0.0.1:40000", "10.0.0.7:80", 57500));
  agg.add(timeWait("10.0.0.1:40001", "10.0.0.7:80", 56500));
  agg.endNamespace();
  agg.finish(s);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 2u);
  EXPECT_EQ(s.namespaces[0].timeWaitWindow, 4s);

  // No socket stays in TIME_WAIT longer than 60 s: after polls that failed for 10 minutes,
  // every socket is new and the window they were counted over is 60 s, not 10 minutes.
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {timeWait("10.0.0.1:40000", "10.0.0.7:80", 100),
        timeWait("10.0.0.1:40001", "10.0.0.7:80", 59000)},
       600s);
  agg.finish(s);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 2u);
  EXPECT_EQ(s.namespaces[0].timeWaitWindow, 60s);

  // A socket read 700 ms further into this dump than the previous dump lasted: its bucket was
  // read that much later than last time, so the window it is judged by is that much wider. One
  // 5.5 s old (54.5 s left) is new by a 5 s window read 700 ms late, not by one read on time.
  auto poll = [&](std::uint32_t lateMs, const std::vector<SocketRecord>& sockets) {
    agg.begin(TimePoint{}, 5s, owners);
    agg.beginNamespace(netns(1));
    agg.beginDump(5s);
    if (lateMs > 0) agg.widenCreatedWindow(lateMs);
    for (const SocketRecord& r : sockets)
      agg.add(r);
    agg.endNamespace();
    agg.finish(s);
    return s.namespaces[0].timeWaitCreated;
  };
  EXPECT_EQ(poll(700, {timeWait("10.0.0.1:40000", "10.0.0.7:80", 54500)}), 1u);
  EXPECT_EQ(poll(0, {timeWait("10.0.0.1:40001", "10.0.0.7:80", 54500)}), 0u);
  EXPECT_EQ(poll(700, {timeWait("10.0.0.1:40002", "10.0.0.7:80", 54000)}), 0u);  // 6 s old
  // The widening lasts to the end of the dump only: the next dump starts on its own window.
  agg.begin(TimePoint{}, 5s, owners);
  agg.beginNamespace(netns(1));
  agg.beginDump(5s);
  agg.widenCreatedWindow(700);
  agg.beginDump(5s);
  agg.add(timeWait("10.0.0.1:40003", "10.0.0.7:80", 54500));
  agg.endNamespace();
  agg.finish(s);
  EXPECT_EQ(s.namespaces[0].timeWaitCreated, 0u);
  EXPECT_EQ(s.namespaces[0].timeWaitWindow, 5s);
}

SocketRecord closeWait(std::uint32_t inode, std::uint32_t recvQ, std::uint16_t peerPort) {
  SocketRecord s =
      sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:" + std::to_string(peerPort), inode);
  s.recvQ = recvQ;
  return s;
}

// Each CLOSE_WAIT socket's kind from its Recv-Q (1: only the FIN unread, 0: end-of-stream read,
// more: data unread), counted under each owner, found late or not, and undone with a restarted
// dump like the states.
TEST(Aggregator, CloseWaitKindsFromRecvQPerOwner) {
  TableOwners owners;
  const auto a = owners.addProcess(800, "a");
  const auto b = owners.addProcess(801, "b");
  for (std::uint32_t i = 1; i <= 5; ++i)
    owners.own(i, a);
  owners.own(5, b);  // shared
  owners.late[6] = {b};
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  agg.beginNamespace(netns(1));
  agg.beginDump();
  agg.beginDump();
  agg.add(closeWait(1, 1, 40001));
  agg.add(closeWait(2, 7, 40002));  // not in the final pass
  agg.restartDump();
  for (const SocketRecord& r :
       {closeWait(1, 1, 40001), closeWait(2, 1, 40002), closeWait(3, 0, 40003),
        closeWait(4, 4096, 40004), closeWait(5, 0, 40005), closeWait(6, 2, 40006)}) {
    agg.add(r);
  }
  agg.endNamespace();
  Snapshot s;
  agg.finish(s);
  ASSERT_TRUE(find(s, 800) && find(s, 801));
  EXPECT_EQ(find(s, 800)->closeWaitKinds[CloseWaitKind::Abandoned], 2u);
  EXPECT_EQ(find(s, 800)->closeWaitKinds[CloseWaitKind::EofNotClosed], 2u);
  EXPECT_EQ(find(s, 800)->closeWaitKinds[CloseWaitKind::UnreadData], 1u);
  EXPECT_EQ(find(s, 801)->closeWaitKinds[CloseWaitKind::EofNotClosed], 1u);
  EXPECT_EQ(find(s, 801)->closeWaitKinds[CloseWaitKind::UnreadData], 1u);  // found late
  EXPECT_EQ(find(s, 801)->closeWaitKinds.total(), find(s, 801)->states[TcpState::CloseWait]);
  ASSERT_EQ(s.closeWait.size(), 6u);
  std::map<std::uint32_t, CloseWaitKind> byInode;
  for (const CloseWaitSocket& c : s.closeWait)
    byInode[c.inode] = c.kind();
  EXPECT_EQ(byInode[2], CloseWaitKind::Abandoned);
  EXPECT_EQ(byInode[3], CloseWaitKind::EofNotClosed);
  EXPECT_EQ(byInode[4], CloseWaitKind::UnreadData);
}

TEST(Aggregator, PendingSocketsSettleAfterTheSearch) {
  TableOwners owners;
  const auto late = owners.addProcess(600, "late");
  owners.late[70] = {late};
  owners.hiddenUids = {0};
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  auto withCgroup = sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 70, 0, 1000);
  withCgroup.hasCgroupId = true;
  withCgroup.cgroupId = 4242;
  feed(agg, netns(1),
       {withCgroup, sock(TcpState::Established, "10.0.0.1:80", "10.0.0.2:40001", 71, 0, 0),
        sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40002", 72, 0, 1001)});
  const PendingHints& hints = agg.pendingHints();
  EXPECT_EQ(hints.sockets, 3u);
  EXPECT_EQ(hints.uids, (std::vector<std::uint32_t>{0, 1000, 1001}));
  EXPECT_EQ(hints.cgroupIds, std::vector<std::uint64_t>{4242});
  Snapshot s;
  agg.finish(s);
  ASSERT_TRUE(find(s, 600));
  EXPECT_EQ(find(s, 600)->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(s.unattributedNoPermission, 1u);  // uid 0: its processes are hidden from us
  EXPECT_EQ(s.unattributedVanished, 1u);
  ASSERT_EQ(s.closeWait.size(), 2u);
  EXPECT_EQ(ownerPids(s, s.closeWait[0].ownerBegin, s.closeWait[0].ownerCount),
            std::vector<std::int32_t>{600});
  EXPECT_EQ(s.closeWait[1].ownerCount, 0u);
  // Next poll: known from the start, negative answers remembered.
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {withCgroup, sock(TcpState::Established, "10.0.0.1:80", "10.0.0.2:40001", 71, 0, 0)});
  EXPECT_EQ(agg.pendingHints().sockets, 0u);
  agg.finish(s);
  EXPECT_EQ(find(s, 600)->states[TcpState::CloseWait], 1u);
  EXPECT_EQ(s.unattributedNoPermission, 1u);
  EXPECT_EQ(s.unattributedVanished, 0u);
}

TEST(Aggregator, SocketWithoutInodeIsKernelHeldNotUnattributed) {
  TableOwners owners;
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  // A connection the application never accept()ed, closed by its peer: CLOSE_WAIT, no inode.
  feed(agg, netns(1), {sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 0, 77)});
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.closeWait.size(), 1u);
  EXPECT_EQ(s.closeWait[0].cookie, 77u);
  EXPECT_EQ(s.closeWait[0].ownerCount, 0u);
  EXPECT_EQ(s.unattributedNoPermission + s.unattributedVanished, 0u);
  EXPECT_TRUE(s.processes.empty());
}

TEST(Aggregator, RestartedDumpCountsOnlyTheFinalPass) {
  TableOwners owners;
  const auto a = owners.addProcess(700, "a");
  const auto b = owners.addProcess(701, "b");
  for (std::uint32_t i = 1; i <= 4; ++i)
    owners.own(i, a);
  owners.own(9, b);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  agg.beginNamespace(netns(1));
  agg.beginDump();
  agg.add(sock(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", 1));
  agg.beginDump();
  // First pass, interrupted (NLM_F_DUMP_INTR): b appears only here.
  agg.add(sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 2));
  agg.add(sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40001", 9));
  agg.add(sock(TcpState::Established, "10.0.0.1:40000", "10.0.0.3:80", 3));
  agg.add(timeWait("10.0.0.1:80", "10.0.0.2:40009", 30000));
  agg.add(sock(TcpState::Established, "10.0.0.1:80", "10.0.0.2:40002", 55));  // pending
  agg.restartDump();
  agg.add(sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 2));
  agg.add(sock(TcpState::Established, "10.0.0.1:40000", "10.0.0.3:80", 3));
  agg.endNamespace();
  EXPECT_EQ(agg.pendingHints().sockets, 0u);
  Snapshot s;
  agg.finish(s);
  const StateCounts& ns = s.namespaces[0].states;
  EXPECT_EQ(ns[TcpState::Listen], 1u);
  EXPECT_EQ(ns[TcpState::CloseWait], 1u);
  EXPECT_EQ(ns[TcpState::Established], 1u);
  EXPECT_EQ(ns[TcpState::TimeWait], 0u);
  EXPECT_TRUE(s.timeWait.empty());
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].info.key.pid, 700);
  EXPECT_EQ(s.processes[0].states[TcpState::Listen], 1u);  // kept from the finished dump
  EXPECT_EQ(s.processes[0].states[TcpState::CloseWait], 1u);
  EXPECT_EQ(s.processes[0].states.total(), 3u);
  EXPECT_EQ(s.processes[0].listenPorts, std::vector<std::uint16_t>{80});
  ASSERT_EQ(s.closeWait.size(), 1u);
  EXPECT_EQ(ownerPids(s, s.closeWait[0].ownerBegin, s.closeWait[0].ownerCount),
            std::vector<std::int32_t>{700});
}

TEST(Aggregator, AbortedNamespaceLeavesNoTrace) {
  TableOwners owners;
  const auto a = owners.addProcess(800, "a");
  owners.own(1, a);
  owners.own(2, a);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1), {sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 1)});
  agg.beginNamespace(netns(2));
  agg.beginDump();
  agg.add(sock(TcpState::CloseWait, "10.1.0.1:80", "10.1.0.2:40000", 2));
  agg.add(timeWait("10.1.0.1:40000", "10.1.0.9:80", 30000));
  agg.abortNamespace();  // deleted while being dumped
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.namespaces.size(), 1u);
  EXPECT_EQ(s.namespaces[0].ref.inode, 1u);
  ASSERT_EQ(s.processes.size(), 1u);
  EXPECT_EQ(s.processes[0].states.total(), 1u);
  EXPECT_EQ(s.closeWait.size(), 1u);
  EXPECT_TRUE(s.timeWait.empty());
}

TEST(Aggregator, ProcessInTwoNamespacesAppearsOncePerNamespace) {
  TableOwners owners;
  const auto b = owners.addProcess(900, "b");
  const auto a = owners.addProcess(50, "a");
  owners.own(1, b);
  owners.own(2, b);
  owners.own(3, a);
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(11), {sock(TcpState::Established, "10.0.0.1:40000", "10.0.0.2:80", 1)});
  feed(agg, netns(22),
       {sock(TcpState::CloseWait, "10.1.0.1:80", "10.1.0.2:40000", 2),
        sock(TcpState::CloseWait, "10.1.0.1:80", "10.1.0.2:40001", 3)});
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.processes.size(), 3u);
  EXPECT_EQ(s.processes[0].netns, 0u);
  EXPECT_EQ(s.processes[0].info.key.pid, 900);
  EXPECT_EQ(s.processes[1].netns, 1u);
  EXPECT_EQ(s.processes[1].info.key.pid, 50);  // namespace, then pid
  EXPECT_EQ(s.processes[2].info.key.pid, 900);
  EXPECT_EQ(find(s, 900, 0)->states[TcpState::Established], 1u);
  EXPECT_EQ(find(s, 900, 1)->states[TcpState::CloseWait], 1u);
  for (const auto& cw : s.closeWait) {
    EXPECT_EQ(cw.netns, 1u);
    ASSERT_EQ(cw.ownerCount, 1u);
    EXPECT_EQ(s.processes[s.ownerLinks[cw.ownerBegin]].netns, 1u);
  }
}

TEST(Aggregator, KeepsEverySocketWithItsOwnersWhenAsked) {
  TableOwners owners;
  const auto a = owners.addProcess(1000, "a");
  owners.own(1, a);
  owners.hiddenUids = {0};
  SnapshotAggregator agg(AggregatorOptions{.keepAllSockets = true});
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 1),
        timeWait("10.0.0.1:40000", "10.0.0.2:80", 1000),
        sock(TcpState::Established, "10.0.0.1:22", "10.0.0.2:40000", 2, 0, 0),
        sock(TcpState::Established, "10.0.0.1:22", "10.0.0.2:40001", 3, 0, 1000)});
  Snapshot s;
  agg.finish(s);
  const auto& lines = agg.sockets();
  ASSERT_EQ(lines.size(), 4u);
  std::map<std::uint32_t, Attribution> byInode;
  for (const auto& l : lines)
    byInode[l.socket.inode] = l.attribution;
  EXPECT_EQ(byInode[1], Attribution::Owned);
  EXPECT_EQ(byInode[0], Attribution::NoOwner);
  EXPECT_EQ(byInode[2], Attribution::NoPermission);
  EXPECT_EQ(byInode[3], Attribution::Vanished);
  const auto listen = std::find_if(lines.begin(), lines.end(),
                                   [](const SocketLine& l) { return l.socket.inode == 1; });
  EXPECT_EQ(ownerPids(s, listen->ownerBegin, listen->ownerCount), std::vector<std::int32_t>{1000});
  // Off by default: no per-socket memory beyond CLOSE_WAIT.
  SnapshotAggregator plain;
  plain.begin(TimePoint{}, 5s, owners);
  feed(plain, netns(1), {sock(TcpState::Listen, "0.0.0.0:22", "0.0.0.0:0", 1)});
  plain.finish(s);
  EXPECT_TRUE(plain.sockets().empty());
}

TEST(Aggregator, BuffersAreReusedWithoutLeakingAcrossPolls) {
  TableOwners owners;
  const auto slot = owners.addProcess(1100, "first");
  owners.own(1, slot);
  SnapshotAggregator agg;
  Snapshot s;
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1),
       {sock(TcpState::CloseWait, "10.0.0.1:80", "10.0.0.2:40000", 1),
        timeWait("10.0.0.1:40000", "10.0.0.7:80", 30000)});
  agg.finish(s);
  ASSERT_EQ(s.processes.size(), 1u);
  // The slot now names another process (the resolver reuses slots across polls).
  owners.infos[slot].key = ProcessKey{1200, 5};
  owners.infos[slot].comm = "second";
  Snapshot recycled = std::move(s);
  agg.begin(TimePoint{}, 5s, owners);
  feed(agg, netns(1), {sock(TcpState::Established, "10.0.0.1:80", "10.0.0.2:40001", 1)});
  agg.finish(recycled);
  ASSERT_EQ(recycled.processes.size(), 1u);
  EXPECT_EQ(recycled.processes[0].info.comm, "second");
  EXPECT_EQ(recycled.processes[0].states.total(), 1u);
  EXPECT_EQ(recycled.processes[0].states[TcpState::Established], 1u);
  EXPECT_TRUE(recycled.closeWait.empty());
  EXPECT_TRUE(recycled.addresses.empty());
  EXPECT_TRUE(recycled.timeWait.empty());
  EXPECT_EQ(recycled.namespaces.size(), 1u);
  EXPECT_EQ(recycled.namespaces[0].states.total(), 1u);
}

TEST(Aggregator, CloseWaitRecordsShareOneTableOfDistinctAddresses) {
  TableOwners owners;
  SnapshotAggregator agg;
  agg.begin(TimePoint{}, 5s, owners);
  // Two namespaces, both families, peers that repeat out of order, and a restarted dump whose
  // abandoned records named an address the final pass never sees.
  std::vector<SocketRecord> first;
  std::vector<std::string> peers = {"10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.4", "10.0.0.3"};
  for (std::size_t i = 0; i < peers.size(); ++i) {
    first.push_back(sock(TcpState::CloseWait, "10.0.0.1:80",
                         peers[i] + ":" + std::to_string(40000 + i),
                         static_cast<std::uint32_t>(10 + i)));
  }
  feed(agg, netns(1), first);
  agg.beginNamespace(netns(2));
  agg.beginDump();
  agg.add(sock(TcpState::CloseWait, "10.9.9.9:80", "10.0.0.99:40000", 30));
  agg.restartDump();
  agg.add(sock(TcpState::CloseWait, "[fd00::1]:443", "[fd00::2]:50000", 31));
  agg.add(sock(TcpState::CloseWait, "[fd00::1]:443", "10.0.0.2:50001", 32));
  agg.add(sock(TcpState::CloseWait, "10.0.0.1:8080", "[fd00::2]:50002", 33));
  agg.endNamespace();
  Snapshot s;
  agg.finish(s);

  ASSERT_EQ(s.closeWait.size(), 8u);
  std::vector<std::string> seen;
  for (const CloseWaitSocket& c : s.closeWait) {
    ASSERT_LT(c.localAddress, s.addresses.size());
    ASSERT_LT(c.remoteAddress, s.addresses.size());
    seen.push_back(s.local(c).toString() + " " + s.remote(c).toString());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "10.0.0.1:80 10.0.0.2:40000", "10.0.0.1:80 10.0.0.3:40001",
                      "10.0.0.1:80 10.0.0.2:40002", "10.0.0.1:80 10.0.0.4:40003",
                      "10.0.0.1:80 10.0.0.3:40004", "[fd00::1]:443 [fd00::2]:50000",
                      "[fd00::1]:443 10.0.0.2:50001", "10.0.0.1:8080 [fd00::2]:50002"}));
  // Each address once (the restarted pass's two may stay: they are never referenced).
  std::set<IpAddress> distinct(s.addresses.begin(), s.addresses.end());
  EXPECT_EQ(distinct.size(), s.addresses.size());
  EXPECT_LE(s.addresses.size(), 8u);
  EXPECT_GE(s.addresses.size(), 6u);
  EXPECT_EQ(s.closeWait[0].remoteAddress, s.closeWait[2].remoteAddress);
  EXPECT_EQ(s.closeWait[0].localAddress, s.closeWait[7].localAddress);
}

}  // namespace
}  // namespace waitwatch

namespace waitwatch {
namespace {

TEST(Aggregator, KeepsClosingSocketsWithTheirGroupAndSoleOwnersOfLiveOnes) {
  TableOwners owners;
  const auto web = owners.addProcess(400, "web");
  const auto app = owners.addProcess(500, "app");
  const auto late = owners.addProcess(600, "late");
  owners.own(1, web);
  owners.own(2, app);
  owners.own(3, app);
  owners.own(3, web);  // shared: which holder will close it is unknown
  owners.late[4] = {late};
  const auto tw = [](const std::string& local, const std::string& remote, std::uint32_t ms,
                     std::uint64_t cookie) {
    SocketRecord r = timeWait(local, remote, ms);
    r.cookie = cookie;
    return r;
  };
  SnapshotAggregator agg(AggregatorOptions{.keepClosing = true, .keepOwned = true});
  agg.begin(TimePoint{}, 5s, owners);
  // Namespace 1: a live-only client group (dropped at its end) sits between TIME_WAIT groups,
  // so group indices move when the namespace ends.
  feed(agg, netns(1),
       {sock(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0", 1),
        sock(TcpState::Established, "10.0.0.1:40000", "10.0.0.9:80", 2, 9002),
        tw("10.0.0.1:41000", "10.0.0.7:5432", 59000, 1),
        sock(TcpState::Established, "10.0.0.1:40001", "10.0.0.9:81", 3, 9003),
        tw("10.0.0.1:8080", "10.0.0.5:42000", 30000, 2),
        tw("10.0.0.1:8080", "10.0.0.5:42001", 30000, 3),
        sock(TcpState::FinWait2, "10.0.0.1:41001", "10.0.0.7:5432", 0, 9005)});
  feed(agg, netns(2),
       {tw("10.1.0.1:41000", "10.1.0.7:5432", 30000, 4),
        sock(TcpState::Established, "10.1.0.1:40000", "10.1.0.9:80", 4, 9004)});
  Snapshot s;
  agg.finish(s);
  ASSERT_EQ(s.timeWait.size(), 3u);
  std::map<std::uint64_t, ClosingSocket> closing;
  for (const ClosingSocket& c : agg.closing())
    closing[c.cookie] = c;
  ASSERT_EQ(closing.size(), 5u);
  for (const auto& [cookie, c] : closing) {
    if (cookie == 9005) {
      EXPECT_EQ(c.group, kNoIndex);  // FIN_WAIT2: on its way to TIME_WAIT
      continue;
    }
    ASSERT_LT(c.group, s.timeWait.size());
  }
  // Each TIME_WAIT socket points at its own group in the finished snapshot.
  const auto groupOf = [&](std::uint64_t cookie) { return s.timeWait[closing.at(cookie).group]; };
  const TimeWaitGroup server = groupOf(2);
  EXPECT_TRUE(server.serverSide);
  EXPECT_EQ(server.timeWait, 2u);
  EXPECT_EQ(closing.at(3).group, closing.at(2).group);
  const TimeWaitGroup client = groupOf(1);
  EXPECT_EQ(client.destination, ep("10.0.0.7:5432"));
  EXPECT_EQ(client.netns, 0u);
  EXPECT_TRUE(closing.at(1).created);
  EXPECT_FALSE(closing.at(2).created);
  const TimeWaitGroup other = groupOf(4);
  EXPECT_EQ(other.netns, 1u);

  // Sole owners of live connections, a settled pending one included; the shared one is not.
  std::map<std::uint64_t, std::int32_t> owned;
  for (const OwnedSocket& o : agg.owned())
    owned[o.cookie] = s.processes.at(o.process).info.key.pid;
  EXPECT_EQ(owned, (std::map<std::uint64_t, std::int32_t>{{9002, 500}, {9004, 600}}));
}

}  // namespace
}  // namespace waitwatch
