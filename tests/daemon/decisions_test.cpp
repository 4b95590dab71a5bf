// SPDX-License-Identifier: Apache-2.0
// The daemon's decisions as values: no root, no threads, no sockets.
#include "service/decisions.hpp"

#include <gtest/gtest.h>
#include <linux/capability.h>

#include <algorithm>

#include "support/sample_poll.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch {
namespace {

using namespace std::chrono_literals;

TEST(StatusLine, CountsSocketsProcessesAndAlerts) {
  const Snapshot s = testing::sampleSnapshot();
  EXPECT_EQ(statusLine(s, 1), "17 sockets, 2 processes with CLOSE_WAIT, 1 alert firing");
  EXPECT_EQ(statusLine(Snapshot{}, 0), "0 sockets, 0 processes with CLOSE_WAIT, 0 alerts firing");
}

TEST(Watchdog, HearsNothingOnceNoPollEnds) {
  constexpr std::uint64_t kSecond = 1'000'000;
  const Duration interval = std::chrono::seconds(5);
  EXPECT_TRUE(pollsProgressing(100 * kSecond, 100 * kSecond, interval));
  // Between polls, and a poll that overran: still well up to two intervals and a second.
  EXPECT_TRUE(pollsProgressing(111 * kSecond, 100 * kSecond, interval));
  EXPECT_FALSE(pollsProgressing(111 * kSecond + 1, 100 * kSecond, interval));
  EXPECT_FALSE(pollsProgressing(200 * kSecond, 100 * kSecond, interval));
  // A long interval allows a long quiet time, a short one a short time.
  EXPECT_TRUE(pollsProgressing(200 * kSecond, 100 * kSecond, std::chrono::minutes(1)));
  EXPECT_FALSE(pollsProgressing(102 * kSecond, 100 * kSecond, Duration(100)));
}

// The loop wakes every 25 ms with a 200 ms watchdog and 1 s polls: a ping every 50 ms while
// polls end; once none has for two intervals and a second, silence (said once), and pings again
// when one ends.
TEST(Watchdog, TheGatePingsWhilePollsEndAndWithholdsOnceTheyStop) {
  constexpr std::uint64_t kMs = 1000;
  const Duration interval = std::chrono::seconds(1);
  WatchdogGate gate;
  using A = WatchdogGate::Action;
  std::vector<A> actions;  // index i: time 1 s + 25 ms * i
  std::uint64_t lastPollEnd = 0;
  for (std::uint64_t t = 1000 * kMs; t <= 6000 * kMs; t += 25 * kMs) {
    if (t == 1000 * kMs || t == 2000 * kMs || t == 5500 * kMs) lastPollEnd = t;
    actions.push_back(gate.step(t, 200 * kMs, lastPollEnd, interval, false));
  }
  auto count = [&](std::size_t from, std::size_t to, A a) {
    return std::count(actions.begin() + static_cast<long>(from),
                      actions.begin() + static_cast<long>(to), a);
  };
  // Up to 5 s (3 s after the poll that ended at 2 s): a ping every other wake-up.
  EXPECT_EQ(count(0, 161, A::Ping), 81);
  EXPECT_EQ(count(0, 161, A::Nothing), 80);
  // 5.025 s: withheld, said once; then nothing until a poll ends at 5.5 s.
  EXPECT_EQ(actions.at(161), A::StartWithholding);
  EXPECT_EQ(count(162, 180, A::Nothing), 18);
  EXPECT_EQ(actions.at(180), A::Ping);
  EXPECT_EQ(count(0, actions.size(), A::StartWithholding), 1);
  // `force` pings at once while all is well, and not while withheld.
  WatchdogGate forced;
  EXPECT_EQ(forced.step(100 * kMs, 200 * kMs, 100 * kMs, interval, false), A::Ping);
  EXPECT_EQ(forced.step(110 * kMs, 200 * kMs, 100 * kMs, interval, false), A::Nothing);
  EXPECT_EQ(forced.step(120 * kMs, 200 * kMs, 100 * kMs, interval, true), A::Ping);
  EXPECT_EQ(forced.step(9000 * kMs, 200 * kMs, 100 * kMs, interval, true), A::StartWithholding);
}

NetnsEntry ns(std::uint64_t inode, std::uint64_t created) {
  NetnsEntry e;
  e.ref.inode = inode;
  e.timeWaitCreated = created;
  return e;
}

TEST(TimeWaitCreatedTotals, AddUpPerNamespaceAndForgetTheGone) {
  auto first = addTimeWaitCreated({}, {ns(1, 10), ns(2, 5)});
  EXPECT_EQ(first.totals, (std::vector<std::uint64_t>{10, 5}));
  // Namespace 2 went away, 3 came: 1 goes on from 10, 3 starts from its own.
  auto second = addTimeWaitCreated(first.byInode, {ns(3, 7), ns(1, 4)});
  EXPECT_EQ(second.totals, (std::vector<std::uint64_t>{7, 14}));
  EXPECT_EQ(second.byInode.size(), 2u);
  EXPECT_EQ(second.byInode.count(2), 0u);
  // Should 2 come back (a recycled inode), it starts over.
  auto third = addTimeWaitCreated(second.byInode, {ns(2, 1)});
  EXPECT_EQ(third.totals, (std::vector<std::uint64_t>{1}));
}

TEST(TimeWaitClosedTotals, AddTheNewSocketsOfEachCloserGroupAndForgetTheQuiet) {
  testing::SnapshotBuilder b;
  b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", 100, 0, 40);
  b.timeWaitPair("10.0.0.5", "10.0.0.7:3306", 10, 0, 10);
  const auto php1 = b.closer(testing::proc(11, "php-fpm").inUnit("php.service"));
  const auto php2 = b.closer(testing::proc(12, "php-fpm").inUnit("php.service"));
  const auto cron = b.closer(testing::proc(50, "report"));
  b.closedBy(0, php1, 60, 20).closedBy(0, php2, 30, 15).closedBy(0, kNoIndex, 10, 5);
  b.closedBy(1, cron, 10, 10);
  const Snapshot s = b.build();
  std::map<CloserGroup, ClosedTotal> totals;
  const TimePoint t0{};
  addTimeWaitClosed(totals, s, false, t0, 15min, 100);
  const CloserGroup php{"php-fpm", "php.service", "", "net:[4026531840]", 0};
  const CloserGroup report{"report", "", "", "net:[4026531840]", 0};
  ASSERT_EQ(totals.size(), 2u);  // the two php-fpm workers are one group; unknown is none
  EXPECT_EQ(totals.at(php).total, 35u);
  EXPECT_EQ(totals.at(report).total, 10u);
  addTimeWaitClosed(totals, s, false, t0 + 5s, 15min, 100);
  EXPECT_EQ(totals.at(php).total, 70u);
  // With pids, each worker is a group of its own.
  std::map<CloserGroup, ClosedTotal> byPid;
  addTimeWaitClosed(byPid, s, true, t0, 15min, 100);
  EXPECT_EQ(byPid.size(), 3u);
  EXPECT_EQ(byPid.at(CloserGroup{"php-fpm", "php.service", "", "net:[4026531840]", 12}).total, 15u);

  // A group that closed nothing for 15 minutes is forgotten; past the cap, the least recently
  // active go first.
  testing::SnapshotBuilder only;
  only.timeWaitPair("10.0.0.5", "10.0.0.7:3306", 10, 0, 10);
  only.closedBy(0, only.closer(testing::proc(50, "report")), 10, 10);
  addTimeWaitClosed(totals, only.build(), false, t0 + 16min, 15min, 100);
  EXPECT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals.at(report).total, 30u);
  addTimeWaitClosed(byPid, only.build(), false, t0 + 1min, 15min, 2);
  EXPECT_EQ(byPid.size(), 2u);
  EXPECT_EQ(byPid.count(report), 1u);
}

ServiceConfig config(std::string_view json) {
  auto c = compileServiceConfig(json, "");
  EXPECT_TRUE(c) << c.error().message;
  return c ? *c : ServiceConfig{};
}

TlsCredentials credentials(std::string cert, TlsVersion min = TlsVersion::Tls12) {
  return TlsCredentials{std::move(cert), "key", min};
}

TEST(ReloadPlan, AFileThatDidNotLoadChangesNothing) {
  const ServiceConfig current = defaultServiceConfig();
  const ReloadPlan plan =
      planReload(current, Error{0, "x.json: rules[0].for: bad"}, 0, std::nullopt, std::nullopt);
  ASSERT_TRUE(plan.rejected);
  EXPECT_EQ(plan.rejected->message, "x.json: rules[0].for: bad");
}

TEST(ReloadPlan, AllNamespacesAfterTheirCapabilityWasDroppedNeedARestart) {
  const ServiceConfig current = defaultServiceConfig();
  const ServiceConfig all = config(R"({"namespaces": "all"})");
  const ReloadPlan refused =
      planReload(current, all, capabilityBit(CAP_SYS_ADMIN), std::nullopt, std::nullopt);
  ASSERT_TRUE(refused.rejected);
  EXPECT_EQ(refused.rejected->message,
            "\"namespaces\": \"all\" needs cap_sys_admin: needs a restart: capability dropped at "
            "start (the configuration then did not need it)");
  const ReloadPlan kept = planReload(current, all, 0, std::nullopt, std::nullopt);
  EXPECT_FALSE(kept.rejected);
  EXPECT_TRUE(kept.newSource);
  EXPECT_EQ(kept.config.namespaces, NamespaceSelection::All);
}

TEST(ReloadPlan, TheListenAddressStaysUntilARestart) {
  const ServiceConfig current = defaultServiceConfig();
  const ReloadPlan plan = planReload(current, config(R"({"listen": "127.0.0.1:9999",
      "poll_interval": "2s"})"),
                                     0, std::nullopt, std::nullopt);
  ASSERT_FALSE(plan.rejected);
  EXPECT_EQ(plan.config.listen, current.listen);
  EXPECT_EQ(plan.config.pollInterval, 2s);
  EXPECT_TRUE(plan.intervalChanged);
  EXPECT_FALSE(plan.newSource);
  ASSERT_EQ(plan.logs.size(), 1u);
  EXPECT_EQ(plan.logs[0].first, 4);
  EXPECT_EQ(plan.logs[0].second,
            "listen address changes take effect on restart; still serving on " + current.listen);
}

TEST(ReloadPlan, ARenewedCertificateIsServedAndTlsModeChangesWait) {
  ServiceConfig current = defaultServiceConfig();
  current.web.tls = TlsServerConfig{"/etc/a.pem", "/etc/a.key", TlsVersion::Tls12};
  ServiceConfig next = current;
  next.web.tls->certFile = "/etc/b.pem";

  const ReloadPlan renew = planReload(current, next, 0, credentials("old"), credentials("new"));
  EXPECT_EQ(renew.tls, ReloadPlan::Tls::Renew);
  EXPECT_EQ(renew.config.web.tls->certFile, "/etc/b.pem");
  EXPECT_TRUE(renew.logs.empty());

  const ReloadPlan same = planReload(current, next, 0, credentials("old"), credentials("old"));
  EXPECT_EQ(same.tls, ReloadPlan::Tls::Unchanged);

  // Another min_version, or TLS turned off: the listener keeps what it serves.
  const ReloadPlan version =
      planReload(current, next, 0, credentials("old"), credentials("new", TlsVersion::Tls13));
  EXPECT_EQ(version.tls, ReloadPlan::Tls::NeedsRestart);
  EXPECT_EQ(version.config.web.tls, current.web.tls);
  ASSERT_EQ(version.logs.size(), 1u);
  EXPECT_NE(version.logs[0].second.find("still serving HTTPS as before"), std::string::npos);

  ServiceConfig plain = next;
  plain.web.tls.reset();
  const ReloadPlan off = planReload(current, plain, 0, credentials("old"), std::nullopt);
  EXPECT_EQ(off.tls, ReloadPlan::Tls::NeedsRestart);
  EXPECT_EQ(off.config.web.tls, current.web.tls);

  // Turned on while serving plain HTTP.
  const ReloadPlan on =
      planReload(defaultServiceConfig(), next, 0, std::nullopt, credentials("new"));
  EXPECT_EQ(on.tls, ReloadPlan::Tls::NeedsRestart);
  EXPECT_FALSE(on.config.web.tls);
  EXPECT_NE(on.logs[0].second.find("still serving plain HTTP"), std::string::npos);
}

}  // namespace
}  // namespace waitwatch
