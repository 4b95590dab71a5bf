// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "engine_harness.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;

const std::string kPairKey = "destination:4026531840:10.0.0.5->10.0.0.9:5432";
const std::string kNsKey = "namespace:4026531840";

Snapshot pair(std::uint32_t timeWait, std::uint32_t live, std::uint32_t created = 0) {
  SnapshotBuilder b;
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", timeWait, live, created);
  b.timeWaitPair("10.0.0.5", "10.0.0.20:8080", 500, 3, 40);  // a modest neighbour
  return b.build();
}

TEST(TimeWaitRule, PortUsageRatioFiresPerPairAndResolves) {
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8, "clear_for": "10s"}]})"));
  EXPECT_TRUE(e.evaluate(pair(20000, 12), at(0)).empty());  // 71%
  auto out = e.evaluate(pair(24562, 12, 2000), at(5));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing ports " + kPairKey}));
  const Alert& a = out[0];
  EXPECT_EQ(a.type, RuleType::TimeWait);
  EXPECT_EQ(a.group.kind, GroupKind::Destination);
  EXPECT_EQ(a.reasons, std::vector<AlertReason>{AlertReason::PortUsage});
  EXPECT_EQ(a.count, 24562u);
  EXPECT_EQ(a.timeWait.source.toString(), "10.0.0.5");
  EXPECT_EQ(a.timeWait.destination.toString(), "10.0.0.9:5432");
  EXPECT_NEAR(a.timeWait.portUsageRatio, 24574.0 / 28232.0, 1e-9);
  EXPECT_EQ(a.timeWait.live, 12u);
  EXPECT_EQ(a.timeWait.usablePorts, 28232u);
  EXPECT_DOUBLE_EQ(a.timeWait.ratePerSecond, 400.0);  // 2000 younger than the 5s interval
  EXPECT_EQ(a.message,
            "10.0.0.5 -> 10.0.0.9:5432 uses 87% of the 28232 usable ephemeral ports (24562 in "
            "TIME_WAIT, 12 live): new connections will fail with EADDRNOTAVAIL; reuse "
            "connections (keep-alive, pooling)");
  EXPECT_TRUE(e.evaluate(pair(22000, 12), at(10)).empty());  // 78%: false since 10
  auto resolved = e.evaluate(pair(21000, 12), at(20));
  ASSERT_EQ(briefs(resolved), (std::vector<std::string>{"resolved ports " + kPairKey}));
  EXPECT_EQ(resolved[0].message,
            "resolved: 10.0.0.5 -> 10.0.0.9:5432 uses 74% of the 28232 usable ephemeral ports "
            "(21000 in TIME_WAIT, 12 live) now");
}

// A pair kept only for its CLOSE_WAIT sockets (no TIME_WAIT) is not this rule's, however many
// ports it uses; once it has TIME_WAIT sockets, it is.
TEST(TimeWaitRule, APairWithoutTimeWaitIsNotPortUsage) {
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8}]})"));
  Snapshot s = pair(0, 27000);
  s.timeWait[0].closeWait = 27000;
  EXPECT_TRUE(e.evaluate(s, at(0)).empty());
  s = pair(1, 27000);
  EXPECT_EQ(briefs(e.evaluate(s, at(5))), (std::vector<std::string>{"firing ports " + kPairKey}));
}

TEST(TimeWaitRule, APairThatVanishesResolves) {
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.5}]})"));
  EXPECT_EQ(e.evaluate(pair(20000, 0), at(0)).size(), 1u);
  auto out = e.evaluate(SnapshotBuilder().build(), at(5));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"resolved ports " + kPairKey}));
  EXPECT_EQ(out[0].count, 0u);
}

// A firing time_wait alert whose rule is renamed on reload resolves saying what it was.
TEST(TimeWaitRule, ARenamedRuleResolvesWithWhatItWas) {
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.5}]})"));
  const auto fired = e.evaluate(pair(20000, 0), at(0));
  ASSERT_EQ(briefs(fired), (std::vector<std::string>{"firing ports " + kPairKey}));
  e.reconfigure(configFrom(R"({"rules": [{"name": "ports2", "type": "time_wait",
      "port_usage_ratio": 0.5}]})"));
  const auto dropped = e.takeDroppedOnReconfigure();
  ASSERT_EQ(briefs(dropped), (std::vector<std::string>{"resolved ports " + kPairKey}));
  EXPECT_EQ(
      dropped[0].message,
      "resolved: rule ports was removed from the configuration (it was: " + fired[0].message + ")");
}

TEST(TimeWaitRule, ServerSideTimeWaitNeverCountsAsPortUsage) {
  SnapshotBuilder b;
  auto nginx = b.process(proc(1, "nginx").listening({443}));
  b.timeWaitServer("10.0.0.1:443", nginx, 60000, 5000);
  b.raw().timeWait.back().portUsageRatio = 0.99;  // even if an adapter filled it in
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.5}]})"));
  EXPECT_TRUE(e.evaluate(b.build(), at(0)).empty());
  // Positive control: the same group on the client side fires the same rule.
  Snapshot client = b.build();
  client.timeWait.back().serverSide = false;
  Engine control(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.5}]})"));
  EXPECT_EQ(control.evaluate(client, at(0)).size(), 1u);
}

TEST(TimeWaitRule, MinSocketsPerNamespaceAgainstTwBuckets) {
  Engine e(configFrom(R"({"rules": [{"name": "many", "type": "time_wait",
      "min_sockets": 100000}]})"));
  SnapshotBuilder b;
  auto nginx = b.process(proc(1, "nginx").listening({443}));
  b.timeWaitServer("10.0.0.1:443", nginx, 70000, 5000);
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 30000, 0, 2500);
  b.timeWaitPair("10.0.0.5", "10.0.0.10:5432", 10000, 0, 500);
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing many " + kNsKey}));
  const Alert& a = out[0];
  EXPECT_EQ(a.group.kind, GroupKind::Namespace);
  EXPECT_EQ(a.count, 110000u);
  EXPECT_EQ(a.reasons, std::vector<AlertReason>{AlertReason::TimeWaitCount});
  EXPECT_EQ(a.timeWait.maxTimeWaitBuckets, 131072u);
  EXPECT_DOUBLE_EQ(a.timeWait.ratePerSecond, 1600.0);
  EXPECT_EQ(a.peers, (std::vector<PeerCount>{{endpoint("10.0.0.9:5432"), 30000},
                                             {endpoint("10.0.0.10:5432"), 10000}}));
  EXPECT_EQ(a.localPorts, (std::vector<PortCount>{{443, 70000}}));
  EXPECT_EQ(a.message,
            "net:[4026531840]: 110000 TIME_WAIT sockets (84% of net.ipv4.tcp_max_tw_buckets "
            "131072), 1600 new per second, most toward 10.0.0.9:5432 (30000): connections are "
            "opened and closed at a high rate; reuse connections (keep-alive, pooling)");
}

TEST(TimeWaitRule, RatePerSecond) {
  Engine e(configFrom(R"({"rules": [{"name": "rate", "type": "time_wait",
      "rate_per_second": 500}]})"));
  EXPECT_TRUE(e.evaluate(pair(1000, 0, 2000), at(0)).empty());  // (2000 + 40) / 5s = 408/s
  auto out = e.evaluate(pair(1000, 0, 2500), at(5));            // 508/s
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing rate " + kNsKey}));
  EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::TimeWaitRate});
  EXPECT_DOUBLE_EQ(out[0].timeWait.ratePerSecond, 508.0);
  EXPECT_EQ(briefs(e.evaluate(pair(1000, 0, 100), at(10))),
            (std::vector<std::string>{"resolved rate " + kNsKey}));
}

TEST(TimeWaitRule, RateIsOverTheTimeTheNewSocketsWereCountedIn) {
  Engine e(configFrom(R"({"rules": [{"name": "rate", "type": "time_wait",
      "rate_per_second": 500}]})"));
  // 2040 new over the 5 s interval would be 408/s; this namespace's dumps were 4 s apart.
  Snapshot s = pair(1000, 0, 2000);
  s.namespaces[0].timeWaitWindow = Duration(4000);
  auto out = e.evaluate(std::move(s), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing rate " + kNsKey}));
  EXPECT_DOUBLE_EQ(out[0].timeWait.ratePerSecond, 510.0);
}

TEST(TimeWaitRule, RateAlertNamesWhereTheNewOnesAre) {
  // An old pile toward :9500 that no longer grows, and new server-side TIME_WAIT on :9502.
  SnapshotBuilder b;
  auto srv = b.process(proc(7, "churnsrv").listening({9502}));
  b.timeWaitPair("127.0.0.1", "127.0.0.1:9500", 20000, 0, 0);
  b.timeWaitServer("127.0.0.1:9502", srv, 1500, 1500);
  Engine e(configFrom(R"({"rules": [{"name": "rate", "type": "time_wait",
      "rate_per_second": 100}]})"));
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing rate " + kNsKey}));
  EXPECT_EQ(out[0].timeWait.newest, 1500u);
  EXPECT_TRUE(out[0].timeWait.newestServerSide);
  EXPECT_EQ(out[0].message,
            "net:[4026531840]: 21500 TIME_WAIT sockets (16% of net.ipv4.tcp_max_tw_buckets "
            "131072), 300 new per second, most new ones on :9502 (1500): connections are "
            "opened and closed at a high rate; reuse connections (keep-alive, pooling)");

  // Client side: the new ones go toward another destination than the largest pile.
  SnapshotBuilder c;
  c.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 20000, 0, 0);
  c.timeWaitPair("10.0.0.5", "10.0.0.7:3306", 900, 0, 900);
  Engine e2(configFrom(R"({"rules": [{"name": "rate", "type": "time_wait",
      "rate_per_second": 100}]})"));
  auto out2 = e2.evaluate(c.build(), at(0));
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_NE(out2[0].message.find("most new ones toward 10.0.0.7:3306 (900)"), std::string::npos)
      << out2[0].message;
}

TEST(TimeWaitRule, OverflowCounterRisingBetweenPolls) {
  Engine e(configFrom(R"({"rules": [{"name": "overflow", "type": "time_wait",
      "time_wait_overflow": true, "clear_for": "10s"}]})"));
  auto withCounter = [](std::uint64_t overflow, bool valid = true) {
    SnapshotBuilder b;
    b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 131072, 0, 9000);
    b.netns().kernel.timeWaitOverflow = overflow;
    b.netns().kernel.valid = valid;
    return b.build();
  };
  EXPECT_TRUE(e.evaluate(withCounter(100), at(0)).empty());  // no previous value: no rise
  EXPECT_TRUE(e.evaluate(withCounter(100), at(5)).empty());
  auto out = e.evaluate(withCounter(130), at(10));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing overflow " + kNsKey}));
  EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::TimeWaitOverflow});
  EXPECT_EQ(out[0].timeWait.overflowDelta, 30u);
  EXPECT_EQ(out[0].timeWait.overflowTotal, 130u);
  EXPECT_EQ(out[0].message,
            "net:[4026531840]: 131072 TIME_WAIT sockets (100% of net.ipv4.tcp_max_tw_buckets "
            "131072), 1800 new per second, most toward 10.0.0.9:5432 (131072); "
            "TCPTimeWaitOverflow rose by 30: TIME_WAIT buckets ran out and the kernel tore "
            "connections down without TIME_WAIT, so late segments can reach new connections; "
            "reuse connections (keep-alive, pooling) or raise net.ipv4.tcp_max_tw_buckets");
  EXPECT_TRUE(e.evaluate(withCounter(130), at(15)).empty());         // false since 15
  EXPECT_TRUE(e.evaluate(withCounter(130, false), at(20)).empty());  // unreadable: no rise
  EXPECT_EQ(briefs(e.evaluate(withCounter(130), at(25))),
            (std::vector<std::string>{"resolved overflow " + kNsKey}));
  // A counter that goes down (a new namespace reusing the inode) is not a rise.
  EXPECT_TRUE(e.evaluate(withCounter(3), at(30)).empty());
}

TEST(TimeWaitRule, MatchSelectsDestinationsAndNarrowsNamespaceCounts) {
  Engine e(configFrom(R"({"rules": [{"name": "db", "type": "time_wait", "port_usage_ratio": 0.5,
      "min_sockets": 15000,
      "match": {"include": {"destination": "10.0.0.0/24", "destination_port": 5432}}}]})"));
  SnapshotBuilder b;
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 16000, 0, 0);  // matches: 57%
  b.timeWaitPair("10.0.0.5", "10.0.0.9:6379", 27000, 0, 0);  // other port
  b.timeWaitPair("10.0.0.5", "10.9.9.9:5432", 27000, 0, 0);  // other network
  auto out = e.evaluate(b.build(), at(0));
  // The namespace count only includes the matching pair (16000 >= 15000), not 70000.
  ASSERT_EQ(briefs(out),
            (std::vector<std::string>{"firing db " + kPairKey, "firing db " + kNsKey}));
  EXPECT_EQ(out[1].count, 16000u);
}

TEST(TimeWaitRule, NamespacesAreSeparateGroups) {
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8}]})"));
  SnapshotBuilder b;
  const auto blue = b.addNamespace(4026532100, "blue");
  b.netns(blue).ephemeral = EphemeralRange(50000, 50999);  // 1000 usable ports
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 900, 0, 0, blue);
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 900, 0, 0, 0);  // 3% of the host's range
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(
      briefs(out),
      (std::vector<std::string>{"firing ports destination:4026532100:10.0.0.5->10.0.0.9:5432"}));
  EXPECT_EQ(out[0].group.netns, "blue");
  EXPECT_EQ(out[0].message,
            "blue: 10.0.0.5 -> 10.0.0.9:5432 uses 90% of the 1000 usable ephemeral ports (900 in "
            "TIME_WAIT, 0 live): new connections will fail with EADDRNOTAVAIL; reuse connections "
            "(keep-alive, pooling)");
}

}  // namespace
}  // namespace waitwatch::testing

namespace waitwatch::testing {
namespace {

// The alert names who closed the connections: the process with the most of the group's
// TIME_WAIT sockets, with its count and rate, in the message and the alert's group (the journal
// and the alert metric take pid, comm, unit and container from it).
TEST(TimeWaitRule, AlertsNameTheProcessThatClosedTheConnections) {
  SnapshotBuilder b;
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 24000, 12, 2000);
  const auto php = b.closer(proc(1234, "php-fpm").inUnit("php8.2-fpm.service").ownedBy("www", 33));
  const auto cron = b.closer(proc(99, "report"));
  b.closedBy(0, php, 20000, 1900).closedBy(0, cron, 3000, 100).closedBy(0, kNoIndex, 1000);
  Engine e(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8}]})"));
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(out.size(), 1u);
  const Alert& a = out[0];
  EXPECT_EQ(a.group.comm, "php-fpm");
  EXPECT_EQ(a.group.pid, 1234);
  EXPECT_EQ(a.group.unit, "php8.2-fpm.service");
  EXPECT_EQ(a.group.user, "www");
  EXPECT_TRUE(a.timeWait.closersTracked);
  EXPECT_EQ(a.timeWait.closerTimeWait, 20000u);
  EXPECT_DOUBLE_EQ(a.timeWait.closerRatePerSecond, 380.0);
  EXPECT_EQ(a.timeWait.closerUnknown, 1000u);
  EXPECT_EQ(a.message,
            "10.0.0.5 -> 10.0.0.9:5432 uses 85% of the 28232 usable ephemeral ports (24000 in "
            "TIME_WAIT, 12 live); closed by php-fpm[1234] (php8.2-fpm.service): 20000 of them, "
            "380 new per second: new connections will fail with EADDRNOTAVAIL; reuse "
            "connections (keep-alive, pooling)");

  // A namespace alert names the top closer over every group it counts.
  SnapshotBuilder n;
  auto srv = n.process(proc(7, "churnsrv").listening({9502}));
  n.timeWaitPair("127.0.0.1", "127.0.0.1:9500", 300, 0, 300);
  n.timeWaitServer("127.0.0.1:9502", srv, 1500, 1500);
  const auto client = n.closer(proc(40, "loadgen"));
  const auto server = n.closer(proc(7, "churnsrv"));
  n.closedBy(0, client, 300, 300).closedBy(1, server, 1500, 1500);
  Engine e2(configFrom(R"({"rules": [{"name": "rate", "type": "time_wait",
      "rate_per_second": 100}]})"));
  auto out2 = e2.evaluate(n.build(), at(0));
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(out2[0].group.comm, "churnsrv");
  EXPECT_NE(out2[0].message.find("; closed by churnsrv[7]: 1500 in TIME_WAIT, 300 new per second"),
            std::string::npos)
      << out2[0].message;

  // A known closer of a few among many unknown: the message says most are not known.
  SnapshotBuilder few;
  few.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 24000, 12, 0);
  few.closedBy(0, few.closer(proc(5, "cron")), 100).closedBy(0, kNoIndex, 23900);
  Engine e4(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8}]})"));
  auto out4 = e4.evaluate(few.build(), at(0));
  ASSERT_EQ(out4.size(), 1u);
  EXPECT_NE(out4[0].message.find("closed by cron[5]: 100 of them (23900 closed by processes not "
                                 "known)"),
            std::string::npos)
      << out4[0].message;

  // Closers tracked but none known: nothing is named.
  SnapshotBuilder u;
  u.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 24000, 12, 2000);
  u.closedBy(0, kNoIndex, 24000, 2000);
  Engine e3(configFrom(R"({"rules": [{"name": "ports", "type": "time_wait",
      "port_usage_ratio": 0.8}]})"));
  auto out3 = e3.evaluate(u.build(), at(0));
  ASSERT_EQ(out3.size(), 1u);
  EXPECT_EQ(out3[0].group.comm, "");
  EXPECT_EQ(out3[0].message.find("closed by"), std::string::npos) << out3[0].message;
  EXPECT_EQ(out3[0].timeWait.closerUnknown, 24000u);
}

}  // namespace
}  // namespace waitwatch::testing

namespace waitwatch::testing {
namespace {

// group_by a closer: one alert per process (or unit, container) that closes connections
// first, whatever destinations they go to.
TEST(TimeWaitRule, GroupedByCloserFiresPerClosingProcess) {
  const auto build = [](std::uint32_t phpSockets, std::uint32_t phpNew) {
    SnapshotBuilder b;
    b.timeWaitPair("10.0.0.5", "10.0.0.9:3306", 26000, 0, phpNew);
    b.timeWaitPair("10.0.0.5", "10.0.0.7:443", 900, 0, 0);
    const auto w1 = b.closer(proc(1234, "php-fpm").inUnit("php8.2-fpm.service"));
    const auto w2 = b.closer(proc(1235, "php-fpm").inUnit("php8.2-fpm.service"));
    const auto cron = b.closer(proc(77, "backup"));
    b.closedBy(0, w1, phpSockets, phpNew).closedBy(0, w2, 26000 - phpSockets, 0);
    b.closedBy(1, cron, 900, 0);
    return b.build();
  };
  Engine e(configFrom(R"({"rules": [{"name": "closers", "type": "time_wait",
      "group_by": "process", "rate_per_second": 100, "port_usage_ratio": 0.9,
      "clear_for": "0s"}]})"));
  auto out = e.evaluate(build(20000, 2250), at(0));
  ASSERT_EQ(out.size(), 2u) << briefs(out).size();
  std::sort(out.begin(), out.end(),
            [](const Alert& x, const Alert& y) { return x.count > y.count; });
  const Alert& a = out[0];
  EXPECT_EQ(a.key, "closer:process:1234@1000:php-fpm:4026531840");
  EXPECT_EQ(a.group.kind, GroupKind::Process);
  EXPECT_EQ(a.group.pid, 1234);
  EXPECT_EQ(a.count, 20000u);
  EXPECT_EQ(a.reasons,
            (std::vector<AlertReason>{AlertReason::PortUsage, AlertReason::TimeWaitRate}));
  EXPECT_EQ(a.message,
            "php-fpm[1234] (php8.2-fpm.service) closed 20000 connections now in TIME_WAIT, 450 "
            "new per second, most toward 10.0.0.9:3306 (20000); 10.0.0.5 -> 10.0.0.9:3306 uses "
            "92% of the 28232 usable ephemeral ports: new connections will fail with "
            "EADDRNOTAVAIL: reuse connections (keep-alive, a pool)");
  // The other worker only adds to a full pair: port usage, not rate.
  EXPECT_EQ(out[1].group.pid, 1235);
  EXPECT_EQ(out[1].reasons, std::vector<AlertReason>{AlertReason::PortUsage});

  // By unit: the two workers are one group, named after the one that closed most.
  Engine byUnit(configFrom(R"({"rules": [{"name": "units", "type": "time_wait",
      "group_by": "unit", "min_sockets": 10000}]})"));
  auto units = byUnit.evaluate(build(20000, 0), at(0));
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].key, "closer:unit:php8.2-fpm.service:4026531840");
  EXPECT_EQ(units[0].count, 26000u);
  EXPECT_EQ(units[0].group.processes, 2u);
  EXPECT_EQ(units[0].group.comm, "php-fpm");
  EXPECT_NE(units[0].message.find("php8.2-fpm.service (php-fpm, 2 processes) closed 26000 "
                                  "connections now in TIME_WAIT"),
            std::string::npos)
      << units[0].message;

  // A match on the closer's name narrows to it.
  Engine matched(configFrom(R"({"rules": [{"name": "backup", "type": "time_wait",
      "group_by": "process", "min_sockets": 100, "match": {"include": {"comm": ["backup"]}}}]})"));
  auto only = matched.evaluate(build(20000, 0), at(0));
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].group.comm, "backup");
  EXPECT_EQ(only[0].count, 900u);
}

TEST(TimeWaitRule, GroupByIsCheckedWhenTheConfigurationLoads) {
  auto bad = compileConfig(R"({"rules": [{"name": "x", "type": "time_wait",
      "group_by": "closer", "min_sockets": 1}]})",
                           "test");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("rules[0].group_by: \"closer\" is not a grouping"),
            std::string::npos)
      << bad.error().message;
  auto overflow = compileConfig(R"({"rules": [{"name": "x", "type": "time_wait",
      "group_by": "unit", "time_wait_overflow": true}]})",
                                "test");
  ASSERT_FALSE(overflow);
  EXPECT_NE(overflow.error().message.find("time_wait_overflow: is per namespace"),
            std::string::npos)
      << overflow.error().message;
  auto destination = compileConfig(R"({"rules": [{"name": "x", "type": "time_wait",
      "group_by": "destination", "port_usage_ratio": 0.8}]})",
                                   "test");
  ASSERT_TRUE(destination) << destination.error().message;
  EXPECT_FALSE(destination->rules[0].timeWait.groupBy.has_value());
}

}  // namespace
}  // namespace waitwatch::testing
