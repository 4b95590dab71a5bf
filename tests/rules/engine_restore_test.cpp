// SPDX-License-Identifier: Apache-2.0
// A restart as the engine sees it: one engine saves, a new one restores and goes on. Ages
// continue, a firing alert is not announced again, one whose condition went meanwhile resolves
// once, and the fd forecasts keep their history.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine_harness.hpp"
#include "nginx_leak.hpp"
#include "rules/fd_forecast.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;

struct Saved {
  std::vector<SavedRule> rules;
  std::vector<SavedAge> ages;
};

Saved save(const Engine& e) {
  Saved s{e.saveRules(), {}};
  e.forEachAge([&](const SavedAge& a) { s.ages.push_back(a); });
  std::sort(s.ages.begin(), s.ages.end(),
            [](const SavedAge& a, const SavedAge& b) { return a.cookie < b.cookie; });
  return s;
}

// Polls every 10 s from `from` to `to` (inclusive), collecting the transitions.
std::vector<Alert> run(Engine& e, const Snapshot& s, double from, double to) {
  std::vector<Alert> out;
  for (double t = from; t <= to; t += 10) {
    for (Alert& a : e.evaluate(s, at(t)))
      out.push_back(std::move(a));
  }
  return out;
}

TEST(EngineRestore, AgesGoOnAndAFiringAlertIsNotAnnouncedAgain) {
  const Snapshot leak = nginxHolding(5);
  Engine first(configFrom(kRule));
  // Sockets first seen at 0 s (at least: the first poll), fire at 60 + 30 s.
  const auto fired = run(first, leak, 0, 100);
  ASSERT_EQ(briefs(fired), std::vector<std::string>{"firing leak " + kNginxKey});
  const Saved saved = save(first);
  ASSERT_EQ(saved.ages.size(), 5u);
  EXPECT_TRUE(saved.ages[0].lowerBound);

  // Down for 40 s. The new engine has its own clock origin; the steady clock does not care.
  Engine second(configFrom(kRule));
  const RestoreSummary r = second.restore(saved.rules, saved.ages, at(140));
  EXPECT_EQ(r.ages, 5u);
  EXPECT_EQ(r.groups, 1u);
  EXPECT_EQ(r.firing, 1u);
  EXPECT_TRUE(run(second, leak, 140, 200).empty());  // still firing, not fired again
  const auto firing = second.firing();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].oldestAge, 200s);  // seen at 0 s, not at 140 s
  EXPECT_TRUE(firing[0].oldestAgeIsLowerBound);
  EXPECT_EQ(firing[0].firedAt, at(90));
  EXPECT_EQ(firing[0].since, at(60));
  EXPECT_EQ(second.closeWaitAge(100, at(200))->age, 200s);

  // A socket that came while the daemon was down is new to it: aged from its first poll, and
  // that is a lower bound.
  Snapshot more = nginxHolding(6);
  Engine third(configFrom(kRule));
  const Saved again = save(second);
  third.restore(again.rules, again.ages, at(210));
  EXPECT_TRUE(third.evaluate(more, at(210)).empty());
  const auto fresh = third.closeWaitAge(105, at(220));
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->age, 10s);
  EXPECT_TRUE(fresh->lowerBound);
  EXPECT_EQ(third.closeWaitAge(100, at(220))->age, 220s);
}

TEST(EngineRestore, AnAlertWhoseLeakEndedMeanwhileResolvesOnce) {
  Engine first(configFrom(kRule));
  ASSERT_EQ(run(first, nginxHolding(5), 0, 100).size(), 1u);
  const Saved saved = save(first);

  Engine second(configFrom(kRule));
  second.restore(saved.rules, saved.ages, at(130));
  const auto out = run(second, nginxHolding(0), 130, 200);
  ASSERT_EQ(briefs(out), std::vector<std::string>{"resolved leak " + kNginxKey});
  EXPECT_EQ(out[0].at, at(150));  // clear_for 20 s after the first poll that saw it gone
  EXPECT_EQ(out[0].closeWait.peak, 5u);
  EXPECT_NE(out[0].message.find("nginx[1234] (nginx.service)"), std::string::npos)
      << out[0].message;
  EXPECT_EQ(out[0].firedAt, at(90));
  // Nothing of the socket ages is kept once the sockets are gone.
  EXPECT_EQ(second.trackedSockets(), 0u);
}

TEST(EngineRestore, PendingKeepsItsStartAndRulesGoneMeanwhileResolve) {
  Engine first(configFrom(kRule));
  EXPECT_TRUE(run(first, nginxHolding(5), 0, 70).empty());  // pending since 60 s
  const Saved pending = save(first);
  Engine second(configFrom(kRule));
  second.restore(pending.rules, pending.ages, at(80));
  // `for` 30 s counts from 60 s, not from the restart.
  EXPECT_EQ(briefs(second.evaluate(nginxHolding(5), at(90))),
            std::vector<std::string>{"firing leak " + kNginxKey});

  // The rule is renamed while the daemon is stopped: its firing alert is closed once.
  const Saved firing = save(second);
  Engine renamed(configFrom(R"({"poll_interval": "10s", "rules": [{
    "name": "leak2", "type": "close_wait", "min_sockets": 3, "min_age": "1m"}]})"));
  const RestoreSummary r = renamed.restore(firing.rules, firing.ages, at(100));
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(r.groups, 0u);
  const auto dropped = renamed.takeDroppedOnReconfigure();
  ASSERT_EQ(briefs(dropped), std::vector<std::string>{"resolved leak " + kNginxKey});
  EXPECT_EQ(dropped[0].message, "resolved: rule leak is no longer in the configuration");
}

TEST(EngineRestore, OnlyBeforeTheFirstPollAndNeverInTheFuture) {
  Engine first(configFrom(kRule));
  run(first, nginxHolding(5), 0, 100);
  Saved saved = save(first);

  Engine polled(configFrom(kRule));
  polled.evaluate(nginxHolding(5), at(0));
  EXPECT_EQ(polled.restore(saved.rules, saved.ages, at(10)).ages, 0u);
  EXPECT_EQ(polled.closeWaitAge(100, at(10))->age, 10s);

  // Times later than now (a damaged file, a clock that went back) are taken as now.
  for (SavedAge& a : saved.ages)
    a.firstSeenMs += 3'600'000'000;
  Engine e(configFrom(kRule));
  e.restore(saved.rules, saved.ages, at(110));
  e.evaluate(nginxHolding(5), at(110));
  EXPECT_EQ(e.closeWaitAge(100, at(120))->age, 10s);
}

TEST(EngineRestore, GrowthHistoryContinues) {
  const char* growth = R"({"poll_interval": "10s", "rules": [{
    "name": "grow", "type": "close_wait", "min_sockets": 1000, "growth": 10,
    "growth_window": "2m", "for": "0s"}]})";
  Engine first(configFrom(growth));
  for (int i = 0; i <= 3; ++i)  // 0 to 6 sockets: not enough growth yet
    EXPECT_TRUE(
        first.evaluate(nginxHolding(static_cast<std::size_t>(2 * i)), at(10.0 * i)).empty());
  const Saved saved = save(first);
  Engine second(configFrom(growth));
  second.restore(saved.rules, saved.ages, at(40));
  Engine forgetful(configFrom(growth));  // the same polls without the saved history
  std::vector<Alert> out, without;
  for (int i = 4; i <= 7; ++i) {
    const Snapshot s = nginxHolding(static_cast<std::size_t>(2 * i));
    for (Alert& a : second.evaluate(s, at(10.0 * i)))
      out.push_back(std::move(a));
    for (Alert& a : forgetful.evaluate(s, at(10.0 * i)))
      without.push_back(std::move(a));
  }
  // Grown from 0 within the 2-minute window: seen only with the history from before.
  ASSERT_EQ(briefs(out), std::vector<std::string>{"firing grow " + kNginxKey});
  EXPECT_GE(out[0].closeWait.growth, 10u);
  EXPECT_TRUE(without.empty());
}

TEST(FdForecasterRestore, AForecastNeedsNoNewWindowAfterARestart) {
  auto withFds = [](std::uint64_t fds) {
    SnapshotBuilder b(1s);
    auto p = b.process(proc(1234, "leaky"));
    b.closeWaitMany(1, 3, {p}, 8080);
    Snapshot s = b.build();
    s.processes[0].openFds = fds;
    s.processes[0].maxFds = 1000;
    return s;
  };
  FdForecaster first(Duration(60'000));
  Snapshot s;
  for (int t = 0; t <= 30; ++t) {
    s = withFds(100 + 10 * static_cast<std::uint64_t>(t));
    first.update(s, at(t));
  }
  ASSERT_TRUE(s.processes[0].fdForecast);
  EngineState saved;
  first.save(saved);
  ASSERT_EQ(saved.fdHistories.size(), 1u);

  FdForecaster second(Duration(60'000));
  EXPECT_EQ(second.restore(saved, at(35)), 1u);
  Snapshot next = withFds(450);
  second.update(next, at(35));
  ASSERT_TRUE(next.processes[0].fdForecast);
  EXPECT_NEAR(next.processes[0].fdForecast->perMinute, 600.0, 1.0);
  // (1000 - 450) / 10 per second.
  EXPECT_NEAR(static_cast<double>(next.processes[0].fdForecast->exhaustion.count()), 55'000, 1000);

  FdForecaster fresh(Duration(60'000));
  Snapshot alone = withFds(450);
  fresh.update(alone, at(35));
  EXPECT_FALSE(alone.processes[0].fdForecast);
}

}  // namespace
}  // namespace waitwatch::testing
