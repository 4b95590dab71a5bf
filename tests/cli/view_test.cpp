// SPDX-License-Identifier: Apache-2.0
// Filters over the hand-built shop (support/shop.hpp): exact counts per namespace and process.
#include "cli/view.hpp"

#include <gtest/gtest.h>

#include <map>

#include "support/shop.hpp"

namespace waitwatch::cli {
namespace {

using testing::buildShop;

StateCounts counts(std::initializer_list<std::pair<TcpState, std::uint64_t>> list) {
  StateCounts c;
  for (auto [s, n] : list)
    c[s] = n;
  return c;
}

// pid -> its row's counts
std::map<std::int32_t, StateCounts> rows(const Snapshot& s) {
  std::map<std::int32_t, StateCounts> out;
  for (const ProcessEntry& p : s.processes)
    out[p.info.key.pid] = p.states;
  return out;
}

TEST(CliView, TheShopAsBuilt) {
  const auto shop = buildShop();
  const Snapshot& s = shop.snapshot;
  EXPECT_EQ(s.totals(), counts({{TcpState::Listen, 2},
                                {TcpState::CloseWait, 4},
                                {TcpState::Established, 4},
                                {TcpState::SynSent, 1},
                                {TcpState::TimeWait, 6},
                                {TcpState::FinWait2, 1}}));
  EXPECT_EQ(shop.lines.size(), 18u);
  EXPECT_EQ(rows(s)[100],
            counts({{TcpState::Listen, 2}, {TcpState::CloseWait, 3}, {TcpState::Established, 2}}));
  EXPECT_EQ(rows(s)[101], counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 1}}));
  EXPECT_EQ(rows(s)[200], counts({{TcpState::Established, 2}, {TcpState::SynSent, 1}}));
  EXPECT_EQ(s.unattributedNoPermission, 1u);
  ASSERT_EQ(s.timeWait.size(), 2u);
}

TEST(CliView, NoFilterKeepsEverything) {
  const auto shop = buildShop();
  const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{});
  EXPECT_EQ(v.snapshot.totals(), shop.snapshot.totals());
  EXPECT_EQ(rows(v.snapshot), rows(shop.snapshot));
  EXPECT_EQ(v.sockets.size(), 18u);
  EXPECT_EQ(v.snapshot.closeWait.size(), 4u);
  EXPECT_EQ(v.snapshot.timeWait.size(), 2u);
  EXPECT_EQ(v.snapshot.unattributedNoPermission, 1u);
}

TEST(CliView, PortIsLocalOrRemote) {
  const auto shop = buildShop();
  const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.ports = {5432}});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Established, 2}, {TcpState::TimeWait, 4}}));
  EXPECT_EQ(rows(v.snapshot),
            (std::map<std::int32_t, StateCounts>{{200, counts({{TcpState::Established, 2}})}}));
  ASSERT_EQ(v.snapshot.timeWait.size(), 1u);
  EXPECT_FALSE(v.snapshot.timeWait[0].serverSide);
  EXPECT_EQ(v.snapshot.timeWait[0].timeWait, 4u);
  EXPECT_EQ(v.snapshot.timeWait[0].live, 2u);  // a group's own figures do not change
  EXPECT_EQ(v.sockets.size(), 6u);

  // :8080 is local to nginx's listener and CLOSE_WAIT sockets, and to the orphan.
  const auto w = filterWithSockets(shop.snapshot, shop.lines, Filter{.ports = {8080}});
  EXPECT_EQ(w.snapshot.totals(),
            counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 4}, {TcpState::FinWait2, 1}}));
  EXPECT_EQ(rows(w.snapshot)[100], counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 3}}));
  EXPECT_EQ(rows(w.snapshot)[100].total(), 4u);
  EXPECT_EQ(w.snapshot.processes[0].listenPorts, (std::vector<std::uint16_t>{8080}));
  EXPECT_EQ(rows(w.snapshot)[101], counts({{TcpState::CloseWait, 1}}));
  EXPECT_EQ(w.snapshot.unattributedNoPermission, 1u);
  EXPECT_TRUE(w.snapshot.timeWait.empty());
}

TEST(CliView, PidCountsItsSocketsAndItsListenersTimeWait) {
  const auto shop = buildShop();
  auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.pids = {100}});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Listen, 2},
                                         {TcpState::CloseWait, 3},
                                         {TcpState::Established, 2},
                                         {TcpState::TimeWait, 2}}));
  ASSERT_EQ(v.snapshot.processes.size(), 1u);
  EXPECT_EQ(v.snapshot.processes[0].info.key.pid, 100);
  ASSERT_EQ(v.snapshot.timeWait.size(), 1u);
  EXPECT_TRUE(v.snapshot.timeWait[0].serverSide);
  EXPECT_EQ(v.snapshot.timeWait[0].listener, 0u);
  EXPECT_EQ(v.snapshot.unattributedNoPermission, 0u);
  // Shared sockets list only the selected owner.
  for (const SocketLine& l : v.sockets) {
    if (l.socket.state == TcpState::TimeWait) continue;
    ASSERT_EQ(l.ownerCount, 1u);
    EXPECT_EQ(v.snapshot.ownerLinks[l.ownerBegin], 0u);
  }

  v = filterWithSockets(shop.snapshot, shop.lines, Filter{.pids = {101}});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 1}}));
  EXPECT_EQ(rows(v.snapshot),
            (std::map<std::int32_t, StateCounts>{
                {101, counts({{TcpState::Listen, 1}, {TcpState::CloseWait, 1}})}}));

  v = filterWithSockets(shop.snapshot, shop.lines, Filter{.pids = {4242}});
  EXPECT_EQ(v.snapshot.totals().total(), 0u);
  EXPECT_TRUE(v.snapshot.processes.empty());
  EXPECT_TRUE(v.sockets.empty());
}

TEST(CliView, UnitCountsASharedSocketOnce) {
  const auto shop = buildShop();
  for (const std::string unit : {"nginx.service", "nginx"}) {
    const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.units = {unit}});
    EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Listen, 2},
                                           {TcpState::CloseWait, 3},
                                           {TcpState::Established, 2},
                                           {TcpState::TimeWait, 2}}))
        << unit;
    EXPECT_EQ(v.snapshot.processes.size(), 2u) << unit;
    EXPECT_EQ(v.snapshot.closeWait.size(), 3u);
    // The shared CLOSE_WAIT socket names both owners.
    const auto shared = std::find_if(v.snapshot.closeWait.begin(), v.snapshot.closeWait.end(),
                                     [](const CloseWaitSocket& c) { return c.inode == 10; });
    ASSERT_NE(shared, v.snapshot.closeWait.end());
    EXPECT_EQ(shared->ownerCount, 2u);
  }
}

TEST(CliView, UnitMatchesContainers) {
  const auto shop = buildShop();
  for (const std::string name :
       {"docker:0123456789ab", "0123456789abcdef0123456789abcdef", "0123"}) {
    const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.units = {name}});
    EXPECT_EQ(rows(v.snapshot),
              (std::map<std::int32_t, StateCounts>{
                  {200, counts({{TcpState::Established, 2}, {TcpState::SynSent, 1}})}}))
        << name;
  }
  const auto none = filterWithSockets(shop.snapshot, shop.lines, Filter{.units = {"012"}});
  EXPECT_TRUE(none.snapshot.processes.empty());  // a prefix needs 4 characters
}

TEST(CliView, ContainerPodAndNamespaceFilters) {
  ProcessInfo api;
  api.container = ContainerInfo{"containerd", "5e1f" + std::string(60, 'a'), "uid-1"};
  api.container.name = "api";
  api.container.podName = "checkout-7d9f-x2k4";
  api.container.podNamespace = "payments";
  ProcessInfo web;
  web.container = ContainerInfo{"docker", "0123" + std::string(60, 'b'), ""};
  web.container.name = "shop-web-1";
  ProcessInfo host;
  host.unit = "cron.service";
  struct Case {
    Filter filter;
    std::vector<bool> passes;  // api, web, host
  };
  const std::vector<Case> cases = {
      {Filter{}, {true, true, true}},
      {Filter{.containers = {"api"}}, {true, false, false}},
      {Filter{.containers = {"docker:shop-web-1"}}, {false, true, false}},
      {Filter{.containers = {"docker:0123bbbbbbbb"}}, {false, true, false}},
      {Filter{.containers = {"5e1f"}}, {true, false, false}},  // an id prefix
      {Filter{.containers = {"5e1"}}, {false, false, false}},  // too short for one
      {Filter{.containers = {"api", "shop-web-1"}}, {true, true, false}},
      {Filter{.pods = {"checkout-7d9f-x2k4"}}, {true, false, false}},
      {Filter{.pods = {"uid-1"}}, {true, false, false}},
      {Filter{.podNamespaces = {"payments"}}, {true, false, false}},
      {Filter{.containers = {"shop-web-1"}, .podNamespaces = {"payments"}}, {false, false, false}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ((std::vector<bool>{matchesContainerFilters(api, c.filter),
                                 matchesContainerFilters(web, c.filter),
                                 matchesContainerFilters(host, c.filter)}),
              c.passes);
  }
}

// Alerts carry a pod's name, namespace and uid, and a container's short id: the filters select
// them by any of those, and a full id or a longer prefix names the short one.
TEST(CliView, AlertsOfPodsAndContainersFollowTheNameFilters) {
  const std::string uid = "d6b1c0de-0000-4000-8000-00000000abcd";
  const std::vector<api::AlertSummary> alerts = {{.rule = "pod",
                                                  .severity = "warning",
                                                  .message = "p",
                                                  .groupKind = "pod",
                                                  .container = "containerd:5e1faaaaaaaa",
                                                  .pod = "checkout-7d9f-x2k4",
                                                  .podNamespace = "payments",
                                                  .podUid = uid},
                                                 {.rule = "unnamed-pod",
                                                  .severity = "warning",
                                                  .message = "u",
                                                  .groupKind = "pod",
                                                  .container = "containerd:0123cccccccc",
                                                  .podUid = "other-uid"},
                                                 {.rule = "web",
                                                  .severity = "warning",
                                                  .message = "w",
                                                  .groupKind = "process",
                                                  .pid = 7,
                                                  .container = "docker:0123bbbbbbbb",
                                                  .containerName = "shop-web-1"}};
  auto rules = [&](const Filter& f) {
    std::vector<std::string> out;
    for (const auto& a : selectAlerts(alerts, f, Snapshot{}).about)
      out.push_back(a.rule);
    return out;
  };
  EXPECT_EQ(rules(Filter{.pods = {"checkout-7d9f-x2k4"}}), std::vector<std::string>{"pod"});
  EXPECT_EQ(rules(Filter{.pods = {uid}}), std::vector<std::string>{"pod"});
  EXPECT_EQ(rules(Filter{.pods = {"other-uid"}}), std::vector<std::string>{"unnamed-pod"});
  EXPECT_EQ(rules(Filter{.podNamespaces = {"payments"}}), std::vector<std::string>{"pod"});
  EXPECT_EQ(rules(Filter{.containers = {"shop-web-1"}}), std::vector<std::string>{"web"});
  EXPECT_EQ(rules(Filter{.containers = {"0123bbbbbbbb" + std::string(52, 'b')}}),
            std::vector<std::string>{"web"});
  EXPECT_EQ(rules(Filter{.containers = {"0123"}}),
            (std::vector<std::string>{"unnamed-pod", "web"}));
}

TEST(CliView, StatesSelectColumnsAndGroups) {
  const auto shop = buildShop();
  auto v =
      filterWithSockets(shop.snapshot, shop.lines, Filter{.states = stateBit(TcpState::CloseWait)});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::CloseWait, 4}}));
  EXPECT_EQ(rows(v.snapshot),
            (std::map<std::int32_t, StateCounts>{{100, counts({{TcpState::CloseWait, 3}})},
                                                 {101, counts({{TcpState::CloseWait, 1}})}}));
  EXPECT_TRUE(v.snapshot.timeWait.empty());
  EXPECT_EQ(v.snapshot.unattributedNoPermission, 1u);
  EXPECT_EQ(v.snapshot.closeWait.size(), 4u);

  // TIME_WAIT only: both groups, and the listener behind the server-side one stays named.
  v = filterWithSockets(shop.snapshot, shop.lines, Filter{.states = stateBit(TcpState::TimeWait)});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::TimeWait, 6}}));
  ASSERT_EQ(v.snapshot.timeWait.size(), 2u);
  for (const TimeWaitGroup& g : v.snapshot.timeWait) {
    if (!g.serverSide) continue;
    ASSERT_LT(g.listener, v.snapshot.processes.size());
    EXPECT_EQ(v.snapshot.processes[g.listener].info.key.pid, 100);
    EXPECT_EQ(v.snapshot.processes[g.listener].states.total(), 0u);
  }

  // Combined: CLOSE_WAIT of pid 101 on :8080.
  v = filterWithSockets(
      shop.snapshot, shop.lines,
      Filter{.states = stateBit(TcpState::CloseWait), .ports = {8080}, .pids = {101}});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::CloseWait, 1}}));
}

TEST(CliView, CountsOnlyFilterForADaemonsSnapshot) {
  const auto shop = buildShop();
  auto v = filterCounts(
      shop.snapshot, Filter{.states = stateBit(TcpState::CloseWait) | stateBit(TcpState::Listen)});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::CloseWait, 4}, {TcpState::Listen, 2}}));
  EXPECT_EQ(rows(v.snapshot)[100], counts({{TcpState::Listen, 2}, {TcpState::CloseWait, 3}}));
  EXPECT_EQ(v.origin.size(), 2u);  // java holds neither state
  EXPECT_TRUE(v.snapshot.timeWait.empty());

  // Owners: the selected processes' sums (a socket two of them share counts for each).
  v = filterCounts(shop.snapshot, Filter{.units = {"nginx.service"}});
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Listen, 3},
                                         {TcpState::CloseWait, 4},
                                         {TcpState::Established, 2},
                                         {TcpState::TimeWait, 2}}));
  EXPECT_EQ(v.origin, (std::vector<std::uint32_t>{0, 1}));
  v = filterCounts(shop.snapshot, Filter{.pids = {200}});
  EXPECT_EQ(v.origin, (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(v.snapshot.totals(), counts({{TcpState::Established, 2}, {TcpState::SynSent, 1}}));
  EXPECT_EQ(v.snapshot.unattributedNoPermission, 0u);

  v = filterCounts(shop.snapshot, Filter{});
  EXPECT_EQ(v.snapshot.totals(), shop.snapshot.totals());
  EXPECT_EQ(v.origin.size(), 3u);
}

TEST(CliView, AlertsFollowTheOwnerFilters) {
  const auto shop = buildShop();
  // As the daemon writes them: process alerts carry their process's unit and container, a
  // destination alert its top closer's.
  const std::vector<api::AlertSummary> alerts = {
      {.rule = "master",
       .severity = "warning",
       .message = "m",
       .groupKind = "process",
       .pid = 100,
       .startTime = 5100,
       .unit = "nginx.service"},
      {.rule = "worker",
       .severity = "warning",
       .message = "w",
       .groupKind = "process",
       .pid = 101,
       .startTime = 5101,
       .unit = "nginx.service"},
      {.rule = "old-worker",
       .severity = "warning",
       .message = "o",
       .groupKind = "process",
       .pid = 101,
       .startTime = 42,
       .unit = "nginx.service"},  // an earlier process, same pid
      {.rule = "unit",
       .severity = "warning",
       .message = "u",
       .groupKind = "unit",
       .unit = "nginx.service"},
      {.rule = "java",
       .severity = "critical",
       .message = "j",
       .groupKind = "container",
       .container = "docker:0123456789ab"},
      {.rule = "storm",
       .severity = "warning",
       .message = "d",
       .groupKind = "destination",
       .pid = 100,
       .startTime = 5100,
       .unit = "nginx.service"}};
  auto rules = [](const AlertSelection& a) {
    std::vector<std::string> out;
    for (const auto& x : a.about)
      out.push_back(x.rule);
    return out;
  };
  auto select = [&](const Filter& f) {
    return selectAlerts(alerts, f, filterCounts(shop.snapshot, f).snapshot);
  };
  // No owner filter: every alert, also under --state.
  const AlertSelection all = select(Filter{.states = stateBit(TcpState::CloseWait)});
  EXPECT_EQ(all.about, alerts);
  EXPECT_EQ(all.elsewhere, 0u);
  // The worker: its own alert and its unit's; not the master's, not an earlier pid 101's, not
  // a destination's whose top closer shares its unit.
  const AlertSelection w = select(Filter{.pids = {101}});
  EXPECT_EQ(rules(w), (std::vector<std::string>{"worker", "unit"}));
  EXPECT_EQ(w.elsewhere, 4u);
  // --unit nginx (a service named short): the unit's processes and the unit.
  EXPECT_EQ(rules(select(Filter{.units = {"nginx"}})),
            (std::vector<std::string>{"master", "worker", "old-worker", "unit"}));
  // --pid and --unit together: both must hold, as for the rows.
  EXPECT_EQ(rules(select(Filter{.pids = {200}, .units = {"nginx"}})), std::vector<std::string>{});
  // A container by id prefix.
  const AlertSelection j = select(Filter{.units = {"0123"}});
  EXPECT_EQ(rules(j), (std::vector<std::string>{"java"}));
  EXPECT_EQ(j.elsewhere, 5u);
}

}  // namespace
}  // namespace waitwatch::cli
