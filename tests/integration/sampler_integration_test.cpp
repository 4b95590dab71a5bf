// SPDX-License-Identifier: Apache-2.0
// The sock_diag sampler against real sockets in real states: counts exact and equal
// to `ss -tan` in the same namespace, every field of every socket checked against what sockfarm
// knows about it (inode, cookie from SO_COOKIE, endpoints, Recv-Q), the kernel-side state filter,
// cookie stability, and finding the namespace among all of the host's.
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "netlink/sampler.hpp"
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {

using nlohmann::json;

class SamplerTest : public NetnsTest {
 protected:
  // Dumps the test namespace with `options`; fails the test on error.
  std::vector<SocketRecord> dump(const DumpOptions& options = {}, DumpStats* statsOut = nullptr) {
    std::vector<SocketRecord> records;
    auto handle = openNamedNetworkNamespace(netns().name());
    EXPECT_TRUE(handle.ok()) << handle.error().message;
    if (!handle.ok()) return records;
    auto sampler = SockDiagSampler::openInNamespace(handle->fd.get());
    EXPECT_TRUE(sampler.ok()) << sampler.error().message;
    if (!sampler.ok()) return records;
    auto stats = sampler->dump(
        options, [&](const SocketRecord& r) { records.push_back(r); }, [&] { records.clear(); });
    EXPECT_TRUE(stats.ok()) << stats.error().message;
    if (stats.ok() && statsOut != nullptr) *statsOut = *stats;
    return records;
  }
};

StateCounts countRecords(const std::vector<SocketRecord>& records) {
  StateCounts c;
  for (const auto& r : records)
    c[r.state]++;
  return c;
}

TEST_F(SamplerTest, CountsAreExactAndEqualToSs) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  DumpStats stats;
  const auto records = dump({}, &stats);
  const StateCounts sampled = countRecords(records);

  StateCounts perFamily;
  perFamily[TcpState::Listen] = 3;
  perFamily[TcpState::Established] = 21;
  perFamily[TcpState::CloseWait] = 30 + 5 + 2;
  perFamily[TcpState::FinWait2] = 10;
  perFamily[TcpState::TimeWait] = 40 + 5;
  StateCounts want = perFamily;
  want += perFamily;
  EXPECT_EQ(sampled, want) << "sampled: " << describe(sampled);

  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  EXPECT_EQ(sampled, countStates(*ss)) << "ss: " << describe(countStates(*ss));
  EXPECT_EQ(stats.sockets, want.total());
  EXPECT_EQ(stats.retries, 0u);

  StateCounts v6;
  for (const auto& r : records) {
    EXPECT_EQ(r.local.address.family, r.remote.address.family);
    if (r.family == AddressFamily::V6) v6[r.state]++;
  }
  EXPECT_EQ(v6, perFamily) << "IPv6: " << describe(v6);
}

// The cgroup v2 directory `pid` runs in, or "" without a cgroup2 mount.
std::string cgroupDirectory(int pid) {
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line, root;
  while (std::getline(mounts, line)) {
    if (line.find(" - cgroup2 ") == std::string::npos) continue;
    std::istringstream fields(line);
    std::string id, parent, dev, mountRoot, mountPoint;
    fields >> id >> parent >> dev >> mountRoot >> mountPoint;
    root = mountPoint;
    break;
  }
  if (root.empty()) return "";
  std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
  while (std::getline(cgroups, line)) {
    if (line.rfind("0::", 0) == 0) return root + line.substr(3);
  }
  return "";
}

TEST_F(SamplerTest, EveryFieldOfEverySocketIsExact) {
  auto farm = SockFarm::start(netns(), {"--details", "--family",
                                        "46",        "--uid",
                                        "4242",      "--listen",
                                        "1",         "--close-wait",
                                        "3",         "--close-wait-unread",
                                        "2:1000",    "--fin-wait2",
                                        "2",         "--established",
                                        "3",         "--time-wait",
                                        "4",         "--server-time-wait",
                                        "2",         "--shared",
                                        "1",         "--holders",
                                        "2"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const auto records = dump();

  // What sockfarm knows: owned sockets by inode, TIME_WAIT ones by their two endpoints.
  std::map<std::uint64_t, json> owned;
  for (const auto& h : farm->holders()) {
    for (const auto& s : h.at("sockets"))
      owned[s.at("inode").get<std::uint64_t>()] = s;
  }
  std::map<std::pair<std::string, std::string>, json> timeWait;
  for (const auto& t : farm->report().at("time_wait").at("sockets")) {
    timeWait[{t.at("local").get<std::string>(), t.at("remote").get<std::string>()}] = t;
  }
  ASSERT_EQ(owned.size(), 2u * (2 + 3 + 2 + 2 + 3 + 1));
  ASSERT_EQ(timeWait.size(), 2u * (4 + 2));

  std::uint64_t cgroupInode = 0;
  if (const auto dir = cgroupDirectory(farm->pid()); !dir.empty()) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) cgroupInode = st.st_ino;
  }

  std::set<std::uint64_t> seenInodes;
  std::set<std::uint64_t> cookies;
  std::size_t timeWaitSeen = 0;
  for (const auto& r : records) {
    const std::string where = r.local.toString() + " -> " + r.remote.toString();
    EXPECT_NE(r.cookie, 0u) << where;
    EXPECT_TRUE(cookies.insert(r.cookie).second) << "duplicate cookie at " << where;
    EXPECT_EQ(r.family, r.local.address.family) << where;
    if (r.state == TcpState::TimeWait) {
      ++timeWaitSeen;
      const auto it = timeWait.find({r.local.toString(), r.remote.toString()});
      ASSERT_NE(it, timeWait.end()) << "unknown TIME_WAIT socket " << where;
      EXPECT_EQ(r.inode, 0u) << where;
      EXPECT_EQ(r.uid, 0u) << where;
      EXPECT_EQ(r.cookie, it->second.at("cookie").get<std::uint64_t>()) << where;
      EXPECT_EQ(r.timer, SocketTimer::TimeWait) << where;
      EXPECT_GT(r.timerRemainingMs, 0u) << where;
      EXPECT_LE(r.timerRemainingMs, 60000u) << where;
      EXPECT_EQ(r.recvQ, 0u) << where;
      EXPECT_EQ(r.sendQ, 0u) << where;
      EXPECT_FALSE(r.hasCgroupId) << where;
      continue;
    }
    const auto it = owned.find(r.inode);
    ASSERT_NE(it, owned.end()) << "socket with unknown inode " << r.inode << " at " << where;
    const json& d = it->second;
    seenInodes.insert(r.inode);
    EXPECT_EQ(stateName(r.state), d.at("state").get<std::string>()) << where;
    EXPECT_EQ(r.local.toString(), d.at("local").get<std::string>()) << where;
    EXPECT_EQ(r.cookie, d.at("cookie").get<std::uint64_t>()) << where;
    EXPECT_EQ(r.uid, 4242u) << where;
    if (r.state == TcpState::Listen) {
      EXPECT_TRUE(r.remote.address.isUnspecified()) << where;
      EXPECT_EQ(r.remote.port, 0u) << where;
      EXPECT_EQ(r.recvQ, 0u) << "empty accept queue at " << where;
      EXPECT_EQ(r.sendQ, 4096u) << "backlog at " << where;
    } else {
      EXPECT_EQ(r.remote.toString(), d.at("remote").get<std::string>()) << where;
      // CLOSE_WAIT: the unread FIN counts as one byte (1, or 1000 unread bytes + 1).
      EXPECT_EQ(r.recvQ, d.at("recv_q").get<std::uint32_t>()) << where;
      EXPECT_EQ(r.sendQ, 0u) << where;
    }
    if (cgroupInode != 0) {
      EXPECT_TRUE(r.hasCgroupId) << where;
      EXPECT_EQ(r.cgroupId, cgroupInode) << where;
    }
  }
  EXPECT_EQ(seenInodes.size(), owned.size());
  EXPECT_EQ(timeWaitSeen, timeWait.size());

  // Recv-Q of CLOSE_WAIT sockets as the kernel reports it: exactly bytes + 1 (the FIN).
  std::map<std::uint32_t, int> closeWaitRecvQ;
  for (const auto& r : records) {
    if (r.state == TcpState::CloseWait) closeWaitRecvQ[r.recvQ]++;
  }
  EXPECT_EQ(closeWaitRecvQ, (std::map<std::uint32_t, int>{{1, 2 * (3 + 1)}, {1001, 2 * 2}}));
}

TEST_F(SamplerTest, StateFilterReturnsOnlyRequestedStates) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  DumpStats stats;
  DumpOptions options;
  options.states = stateBit(TcpState::CloseWait) | stateBit(TcpState::TimeWait);
  const StateCounts sampled = countRecords(dump(options, &stats));
  StateCounts want;
  want[TcpState::CloseWait] = 2 * 37;
  want[TcpState::TimeWait] = 2 * 45;
  EXPECT_EQ(sampled, want) << describe(sampled);
  EXPECT_EQ(stats.sockets, want.total());

  options.states = stateBit(TcpState::Listen);
  options.ipv4 = false;
  const auto listeners = dump(options);
  ASSERT_EQ(listeners.size(), 3u);
  for (const auto& r : listeners) {
    EXPECT_EQ(r.state, TcpState::Listen);
    EXPECT_EQ(r.family, AddressFamily::V6);
  }
}

TEST_F(SamplerTest, CookiesAreStableAcrossDumps) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto keyed = [](const std::vector<SocketRecord>& records) {
    std::map<std::uint64_t, std::string> m;
    for (const auto& r : records) {
      m[r.cookie] = std::string(stateName(r.state)) + " " + r.local.toString() + " " +
                    r.remote.toString() + " " + std::to_string(r.inode);
    }
    return m;
  };
  const auto first = dump();
  const auto second = dump();
  ASSERT_EQ(first.size(), farm->expectedStates().total());
  const auto a = keyed(first);
  EXPECT_EQ(a.size(), first.size()) << "cookies are not unique";
  EXPECT_EQ(a.count(0), 0u);
  EXPECT_EQ(a, keyed(second));
}

TEST_F(SamplerTest, FindsTheNamespaceByNameAndInode) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "2"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  EXPECT_EQ(farm->report().at("netns_inode").get<std::uint64_t>(), netns().inode());

  auto all = listNetworkNamespaces();
  ASSERT_TRUE(all.ok()) << all.error().message;
  int found = 0;
  std::set<std::uint64_t> inodes;
  for (const auto& h : *all) {
    EXPECT_TRUE(inodes.insert(h.ref.inode).second) << "namespace listed twice: " << h.ref.label();
    EXPECT_TRUE(h.fd.valid()) << h.ref.label();
    if (h.ref.inode == netns().inode()) {
      ++found;
      EXPECT_EQ(h.ref.name, netns().name());
      // The listed handle samples that namespace: it sees the farm's sockets.
      auto sampler = SockDiagSampler::openInNamespace(h.fd.get());
      ASSERT_TRUE(sampler.ok()) << sampler.error().message;
      StateCounts c;
      auto stats = sampler->dump(
          {}, [&](const SocketRecord& r) { c[r.state]++; }, [&] { c = {}; });
      ASSERT_TRUE(stats.ok()) << stats.error().message;
      EXPECT_EQ(c, farm->expectedStates()) << describe(c);
    }
  }
  EXPECT_EQ(found, 1);

  auto named = openNamedNetworkNamespace(netns().name());
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->ref.inode, netns().inode());
  EXPECT_EQ(named->ref.name, netns().name());

  auto missing = openNamedNetworkNamespace(netns().name() + "-missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(netns().name() + "-missing"), std::string::npos)
      << missing.error().message;
}

TEST_F(SamplerTest, TheHostNamespaceDoesNotSeeTheFarm) {
  auto farm = SockFarm::start(netns(), {"--details", "--close-wait", "3", "--established", "2"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  std::set<std::uint64_t> farmCookies;
  for (const auto& h : farm->holders()) {
    for (const auto& s : h.at("sockets"))
      farmCookies.insert(s.at("cookie").get<std::uint64_t>());
  }
  ASSERT_EQ(farmCookies.size(), 1u + 3 + 2);
  auto sampler = SockDiagSampler::open();
  ASSERT_TRUE(sampler.ok()) << sampler.error().message;
  std::size_t farmSockets = 0;
  auto stats = sampler->dump(
      {}, [&](const SocketRecord& r) { farmSockets += farmCookies.count(r.cookie); },
      [&] { farmSockets = 0; });
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(farmSockets, 0u);
  // ...while the namespace's own dump sees every one of them.
  std::size_t seen = 0;
  for (const auto& r : dump())
    seen += farmCookies.count(r.cookie);
  EXPECT_EQ(seen, farmCookies.size());
}

}  // namespace
}  // namespace waitwatch::testing
