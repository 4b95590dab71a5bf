// SPDX-License-Identifier: Apache-2.0
// The "done" scenario: one synthesized hour, polled every 5 s with the shipped default
// configuration, holding a slow CLOSE_WAIT leak, a TIME_WAIT storm toward one destination, and a
// healthy busy server. The engine must give exactly the alerts an operator wants, at the right
// polls, and nothing for the healthy server.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/default_config.hpp"
#include "engine_harness.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {

constexpr int kPoll = 5;
constexpr int kHour = 3600;
constexpr int kLeakStart = 60;  // billing-api leaks one CLOSE_WAIT socket every 30 s from here
constexpr int kLeakEvery = 30;
constexpr int kRestart = 2400;     // ... until the operator restarts it with the fix
constexpr int kStormStart = 1200;  // report-worker opens 450 connections/s to the database
constexpr int kStormEnd = 1800;
constexpr int kStormRate = 450;
constexpr int kSpikeStart = 2000;  // a 30 s traffic spike on the healthy server

// TIME_WAIT sockets from the storm alive at t: those created in (t - 60, t].
std::uint32_t stormTimeWait(int t) {
  const int from = std::max(kStormStart, t - 60);
  const int to = std::min(kStormEnd, t);
  return to > from ? static_cast<std::uint32_t>(kStormRate * (to - from)) : 0;
}
std::uint32_t stormCreated(int t) {
  const int from = std::max(kStormStart, t - kPoll);
  const int to = std::min(kStormEnd, t);
  return to > from ? static_cast<std::uint32_t>(kStormRate * (to - from)) : 0;
}

// Short-lived CLOSE_WAIT sockets of the healthy server: made at poll `t`, closed within
// seconds; `surviving` of them are still there at the next poll.
void healthyChurn(SnapshotBuilder& b, std::uint32_t nginx, int t) {
  const bool spike = t >= kSpikeStart && t < kSpikeStart + 30;
  const bool afterSpike = t >= kSpikeStart + kPoll && t < kSpikeStart + 30 + kPoll;
  const int fresh = spike ? 300 : 40;
  const int survivors = afterSpike ? 60 : 5;
  auto cookie = [](int poll, int i) {
    return 10'000'000ull + static_cast<std::uint64_t>(poll) * 1000 + static_cast<std::uint64_t>(i);
  };
  for (int i = 0; i < fresh; ++i) {
    b.closeWait(cookie(t, i), {nginx}, i % 2 == 0 ? 443 : 80,
                "198.51.100." + std::to_string(1 + i % 250) + ":" + std::to_string(30000 + i));
  }
  for (int i = 0; t > 0 && i < survivors; ++i) {
    b.closeWait(cookie(t - kPoll, i), {nginx}, i % 2 == 0 ? 443 : 80,
                "198.51.100." + std::to_string(1 + i % 250) + ":" + std::to_string(30000 + i));
  }
}

Snapshot hostAt(int t) {
  SnapshotBuilder b;
  b.netns().kernel.timeWaitOverflow = 7;  // an old overflow, long ago: not rising
  auto nginx =
      b.process(proc(100, "nginx").inUnit("nginx.service").listening({80, 443}).started(50));
  b.count(TcpState::Established, 5000).count(TcpState::Listen, 3);
  healthyChurn(b, nginx, t);
  b.timeWaitServer("10.0.0.1:443", nginx, 3000, 250);
  b.timeWaitPair("10.0.0.1", "10.0.0.20:8080", 2800, 20, 230);  // nginx's upstream: pooled

  if (t < kRestart) {
    auto billing = b.process(
        proc(4242, "billing-api").inUnit("billing-api.service").listening({8080}).started(700));
    for (int k = 0; kLeakStart + kLeakEvery * k <= t; ++k) {
      b.closeWait(1'000'000ull + static_cast<std::uint64_t>(k), {billing}, 8080,
                  "10.0.2." + std::to_string(1 + k % 50) + ":" + std::to_string(40000 + k));
    }
  } else {
    (void)b.process(
        proc(5151, "billing-api").inUnit("billing-api.service").listening({8080}).started(240100));
  }

  const std::uint32_t storm = stormTimeWait(t);
  const std::uint32_t live = t >= kStormStart && t < kStormEnd ? 12 : 0;
  if (storm + live > 0) b.timeWaitPair("10.0.0.5", "10.0.0.9:5432", storm, live, stormCreated(t));
  (void)b.process(proc(777, "report-worker").inUnit("report-worker.service").started(600));
  return b.build();
}

TEST(Replay, AnHourOfLeakStormAndHealthyTrafficWithTheDefaults) {
  auto config = compileConfig(embeddedDefaultConfig(), kEmbeddedConfigOrigin);
  ASSERT_TRUE(config) << config.error().message;
  Engine engine(*config);
  std::vector<std::pair<int, Alert>> alerts;
  for (int t = 0; t < kHour; t += kPoll) {
    for (Alert& a : engine.evaluate(hostAt(t), at(t)))
      alerts.emplace_back(t, std::move(a));
    if (t == 1500) {
      // Mid-storm, mid-leak: both firing, with this poll's values.
      const auto firing = engine.firing();
      ASSERT_EQ(firing.size(), 2u);
      EXPECT_EQ(firing[0].closeWait.total, 49u);  // sockets made at 60, 90, ..., 1500
      EXPECT_EQ(firing[1].count, 27000u);
    }
  }

  std::vector<std::string> got;
  for (const auto& [t, a] : alerts)
    got.push_back(std::to_string(t) + " " + brief(a));
  const std::string leak = "close-wait-leak process:4242@700:4026531840";
  const std::string storm =
      "ephemeral-port-exhaustion destination:4026531840:10.0.0.5->10.0.0.9:5432";
  EXPECT_EQ(got, (std::vector<std::string>{
                     // 10 sockets are 5 minutes old at 630; `for` 1m.
                     "690 firing " + leak,
                     // 24750 + 12 of 28232 ports (88%) at the first poll past 80%; `for` 0s.
                     "1255 firing " + storm,
                     // Below 80% from 1810 (22500 left); `clear_for` 2m.
                     "1930 resolved " + storm,
                     // Restarted at 2400; `clear_for` 5m.
                     "2700 resolved " + leak,
                 }));
  ASSERT_EQ(alerts.size(), 4u);
  EXPECT_EQ(alerts[0].second.message,
            "billing-api[4242] (billing-api.service) holds 22 CLOSE_WAIT sockets on :8080 (12 "
            "older than 5m), the oldest stuck for 10m30s: it does not close() connections its "
            "peers have closed. All 22 were not read since the peer closed" +
                kAbandonedHint);
  EXPECT_FALSE(alerts[0].second.oldestAgeIsLowerBound);  // the leak began after the first poll
  EXPECT_EQ(alerts[0].second.severity, Severity::Warning);
  EXPECT_EQ(alerts[1].second.message,
            "10.0.0.5 -> 10.0.0.9:5432 uses 88% of the 28232 usable ephemeral ports (24750 in "
            "TIME_WAIT, 12 live): new connections will fail with EADDRNOTAVAIL; reuse "
            "connections (keep-alive, pooling)");
  EXPECT_EQ(alerts[1].second.severity, Severity::Critical);
  EXPECT_DOUBLE_EQ(alerts[1].second.timeWait.ratePerSecond, 450.0);
  EXPECT_EQ(alerts[2].second.message,
            "resolved: 10.0.0.5 -> 10.0.0.9:5432 uses 0% of the 28232 usable ephemeral ports (0 "
            "in TIME_WAIT, 0 live) now");  // the storm's last TIME_WAIT expired at 1860
  EXPECT_EQ(alerts[3].second.message,
            "resolved: billing-api[4242] (billing-api.service) holds no CLOSE_WAIT sockets any "
            "more; peak 78, firing for 33m30s");
  EXPECT_TRUE(engine.firing().empty());
  // Memory stays bounded: only the sockets of the last poll are tracked.
  EXPECT_EQ(engine.trackedSockets(), 45u);
}

}  // namespace
}  // namespace waitwatch::testing

namespace waitwatch::testing {
namespace {

// The same hour with `for` 0s: the healthy server's 30 s spike (60 short-lived sockets that
// outlived one poll) does look like growth for a moment. The default `for` 1m is what keeps it
// quiet, not the scenario.
TEST(Replay, WithoutForTheHealthySpikeWouldHaveAlerted) {
  auto config = compileConfig(embeddedDefaultConfig(), kEmbeddedConfigOrigin);
  ASSERT_TRUE(config);
  config->rules[0].forDuration = Duration::zero();
  Engine engine(*config);
  std::vector<std::string> nginx;
  for (int t = 0; t < kHour; t += kPoll) {
    for (const Alert& a : engine.evaluate(hostAt(t), at(t))) {
      if (a.group.comm == "nginx") {
        nginx.push_back(std::to_string(t) + " " + std::string(alertStateName(a.state)) + " " +
                        std::string(alertReasonName(a.reasons.at(0))));
      }
    }
  }
  // Survivors are seen at 2005..2030: false from 2035, resolved after `clear_for` 5m.
  EXPECT_EQ(nginx, (std::vector<std::string>{"2005 firing growth", "2335 resolved growth"}));
}

}  // namespace
}  // namespace waitwatch::testing
