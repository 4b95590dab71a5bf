// SPDX-License-Identifier: Apache-2.0
#include "rules/fd_forecast.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine_harness.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;

TEST(MedianSlope, IsTheMedianOfThePairwiseSlopes) {
  std::vector<double> scratch;
  // Slopes: (0,1) 1, (0,2) 1, (1,2) 1 on a line; one outlier moves a least-squares fit, not it.
  const std::vector<FdSample> line = {{0, 10}, {1000, 11}, {2000, 12}, {3000, 13}, {4000, 14}};
  EXPECT_DOUBLE_EQ(*medianSlope(line, scratch), 0.001);
  std::vector<FdSample> burst = line;
  burst[2].fds = 5000;  // a backup that opened 5000 files for one sample
  EXPECT_DOUBLE_EQ(*medianSlope(burst, scratch), 0.001);
  // Three slopes in fds/s, (0,1) 1, (0,2) 2, (1,2) 3: the middle one. Four points have six:
  // the mean of the two middle ones.
  const std::vector<FdSample> bent = {{0, 0}, {1000, 1}, {2000, 4}};
  EXPECT_DOUBLE_EQ(*medianSlope(bent, scratch), 0.002);
  const std::vector<FdSample> four = {{0, 0}, {1000, 1}, {2000, 2}, {3000, 6}};
  // Slopes in fds/s: 1, 1, 2, 1, 2.5, 4 -> sorted 1, 1, 1, 2, 2.5, 4 -> (1 + 2) / 2.
  EXPECT_DOUBLE_EQ(*medianSlope(four, scratch), 0.0015);
  // Points at one time say nothing about a slope.
  EXPECT_FALSE(medianSlope(std::vector<FdSample>{{5, 1}, {5, 9}}, scratch));
  EXPECT_FALSE(medianSlope(std::vector<FdSample>{}, scratch));
}

// A process with `fds` open of `limit`, as the collector fills it in.
Snapshot withFds(std::uint64_t fds, std::uint64_t limit, std::int32_t pid = 1234,
                 std::uint64_t startTime = 1000) {
  SnapshotBuilder b(1s);
  auto p = b.process(proc(pid, "leaky").started(startTime));
  b.closeWaitMany(1, 3, {p}, 8080);
  Snapshot s = b.build();
  s.processes[0].openFds = fds;
  s.processes[0].maxFds = limit;
  return s;
}

// A steady leak: forecast once it has grown for a quarter of the window, close to the truth,
// and it counts down as the leak goes on.
TEST(FdForecaster, ASteadyLeakIsForecastWhereItReachesTheLimit) {
  FdForecaster f(60s);
  std::optional<FdForecast> first;
  double firstAt = 0;
  for (int t = 0; t <= 40; ++t) {
    Snapshot s = withFds(100 + 2 * static_cast<std::uint64_t>(t), 1000);  // +2/s = 120/min
    f.update(s, at(t));
    const auto& fc = s.processes[0].fdForecast;
    if (t < 15) {
      EXPECT_FALSE(fc) << "at " << t << "s: before a quarter of the window";
      continue;
    }
    ASSERT_TRUE(fc) << "at " << t << "s";
    EXPECT_NEAR(fc->perMinute, 120.0, 0.5);
    // (1000 - open) / 2 per second.
    const double truth = (1000.0 - (100.0 + 2.0 * t)) / 2.0;
    EXPECT_NEAR(std::chrono::duration<double>(fc->exhaustion).count(), truth, 0.5) << t;
    if (!first) {
      first = fc;
      firstAt = t;
    }
  }
  EXPECT_EQ(firstAt, 15);
}

// A leak that stops: the forecast goes within a quarter of the window, without waiting for the
// slope over the whole window to fall.
TEST(FdForecaster, DisappearsWhenGrowthStops) {
  FdForecaster f(60s);
  std::uint64_t fds = 100;
  for (int t = 0; t <= 30; ++t) {
    Snapshot s = withFds(fds += 3, 1000);
    f.update(s, at(t));
    if (t == 30) {
      ASSERT_TRUE(s.processes[0].fdForecast);
    }
  }
  int goneAt = -1;
  for (int t = 31; t <= 60; ++t) {
    Snapshot s = withFds(fds, 1000);
    f.update(s, at(t));
    if (!s.processes[0].fdForecast && goneAt < 0) goneAt = t;
    if (goneAt >= 0) {
      EXPECT_FALSE(s.processes[0].fdForecast) << t;
    }
  }
  EXPECT_EQ(goneAt, 45);  // 15 s (a quarter of 60 s) after the last growth at 30 s
}

// Noise around a flat line is not a leak; a one-off burst in a steady leak does not move it.
TEST(FdForecaster, NoiseAndBurstsAreNotGrowth) {
  FdForecaster flat(60s);
  for (int t = 0; t <= 60; ++t) {
    Snapshot s = withFds(500 + static_cast<std::uint64_t>((t * 7) % 5), 1000);
    flat.update(s, at(t));
    // Up and down by a few: now and then above a quarter ago, but its median slope is ~0.
    if (s.processes[0].fdForecast) {
      EXPECT_LT(s.processes[0].fdForecast->perMinute, 6.0) << t;
    }
  }
  FdForecaster leak(60s);
  for (int t = 0; t <= 40; ++t) {
    std::uint64_t fds = 100 + static_cast<std::uint64_t>(t);  // +60/min
    if (t >= 20 && t <= 22) fds += 400;                       // three samples of a burst
    Snapshot s = withFds(fds, 1000);
    leak.update(s, at(t));
    if (t == 40) {
      ASSERT_TRUE(s.processes[0].fdForecast);
      EXPECT_NEAR(s.processes[0].fdForecast->perMinute, 60.0, 3.0);
    }
  }
}

// Without a known limit there is nothing to forecast; at the limit, the time left is zero.
TEST(FdForecaster, NeedsALimitAndStopsAtZero) {
  FdForecaster f(20s);
  for (int t = 0; t <= 10; ++t) {
    Snapshot s = withFds(10 + 10 * static_cast<std::uint64_t>(t), 0);
    f.update(s, at(t));
    EXPECT_FALSE(s.processes[0].fdForecast);
  }
  FdForecaster g(20s);
  for (int t = 0; t <= 10; ++t) {
    Snapshot s = withFds(10 + 10 * static_cast<std::uint64_t>(t), 80);
    g.update(s, at(t));
    if (t >= 8) {
      ASSERT_TRUE(s.processes[0].fdForecast) << t;
      EXPECT_EQ(s.processes[0].fdForecast->exhaustion, Duration::zero()) << t;
    }
  }
  // Stuck at the limit (it cannot grow any more): still run out, long after growth stopped.
  for (int t = 11; t <= 60; ++t) {
    Snapshot s = withFds(80, 80);
    g.update(s, at(t));
    ASSERT_TRUE(s.processes[0].fdForecast) << t;
    EXPECT_EQ(s.processes[0].fdForecast->exhaustion, Duration::zero()) << t;
    if (t > 20) {
      EXPECT_EQ(s.processes[0].fdForecast->perMinute, 0.0) << t;
    }
  }
}

// A reused pid is another process: its history starts again.
TEST(FdForecaster, AReusedPidStartsAfresh) {
  FdForecaster f(20s);
  for (int t = 0; t <= 10; ++t) {
    Snapshot s = withFds(10 + 10 * static_cast<std::uint64_t>(t), 1000);
    f.update(s, at(t));
  }
  EXPECT_EQ(f.tracked(), 1u);
  for (int t = 11; t <= 40; ++t) {
    Snapshot s = withFds(200, 1000, 1234, 5555);
    f.update(s, at(t));
    EXPECT_FALSE(s.processes[0].fdForecast) << t;
    // The old one is kept for a window (it may only have been unreadable), then forgotten.
    EXPECT_EQ(f.tracked(), t <= 30 ? 2u : 1u) << t;
  }
}

// Missing from one poll (an unreadable /proc read, no CLOSE_WAIT socket for a moment) keeps
// the history: the forecast is back at the next poll, not a quarter window later.
TEST(FdForecaster, AGapOfAPollKeepsTheHistory) {
  FdForecaster f(20s);
  for (int t = 0; t <= 10; ++t) {
    Snapshot s = withFds(10 + 10 * static_cast<std::uint64_t>(t), 1000);
    if (t == 9) s.processes[0].openFds = 0;  // not read this time
    f.update(s, at(t));
    if (t >= 6 && t != 9) {
      EXPECT_TRUE(s.processes[0].fdForecast) << t;
    }
  }
}

// A forecast past a year is none: a slow leak toward a limit of 2^30 says nothing useful, and
// the API's readers need not take absurd times.
TEST(FdForecaster, NothingBeyondAYear) {
  FdForecaster f(1h);
  std::optional<FdForecast> last;
  for (int t = 0; t <= 3600; t += 60) {
    // +1 fd a minute toward 2^30 - 8: two thousand years.
    Snapshot s = withFds(100 + static_cast<std::uint64_t>(t / 60), 1073741816);
    f.update(s, at(t));
    last = s.processes[0].fdForecast;
  }
  EXPECT_FALSE(last);
  FdForecaster g(1h);
  for (int t = 0; t <= 3600; t += 60) {
    Snapshot s = withFds(100 + static_cast<std::uint64_t>(t / 60), 100'000);  // ~69 days
    g.update(s, at(t));
    last = s.processes[0].fdForecast;
  }
  ASSERT_TRUE(last);
  EXPECT_NEAR(std::chrono::duration<double>(last->exhaustion).count() / 86400, 69.4, 0.5);
}

// The alert: fd_exhaustion_within fires on the forecast alone and says when, and any alert of
// the group says it.
TEST(CloseWaitRule, FdExhaustionWithinFiresOnTheForecast) {
  Engine e(configFrom(R"({"poll_interval": "1s", "rules": [{"name": "fds", "type": "close_wait",
                         "min_sockets": 1000, "min_age": "0s", "fd_exhaustion_within": "5m"}]})"));
  Snapshot s = withFds(900, 1024);
  s.processes[0].fdForecast = FdForecast{60.0, 10min};  // too far: nothing
  EXPECT_TRUE(e.evaluate(s, at(0)).empty());
  s.processes[0].fdForecast = FdForecast{62.0, 2min};
  const auto out = e.evaluate(s, at(1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::FdExhaustion});
  EXPECT_EQ(out[0].closeWait.fds.pid, 1234);
  EXPECT_EQ(out[0].closeWait.fds.open, 900u);
  EXPECT_EQ(out[0].closeWait.fds.max, 1024u);
  EXPECT_EQ(out[0].closeWait.fds.forecast, (FdForecast{62.0, 2min}));
  EXPECT_NE(out[0].message.find("leaky[1234] holds 3 CLOSE_WAIT sockets on :8080"),
            std::string::npos)
      << out[0].message;
  EXPECT_NE(
      out[0].message.find(". Its open files grow by 62/min: it runs out of file "
                          "descriptors (900 open, limit 1024) in about 2 minutes. All 3 were"),
      std::string::npos)
      << out[0].message;
  // Growth stops: the forecast goes, and with it the condition.
  s.processes[0].fdForecast.reset();
  const auto resolved = e.evaluate(s, at(2));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::Resolved);
}

// Open files that grow with no CLOSE_WAIT socket older than min_age (a service starting, a
// traffic peak) are no leak: the forecast alone does not fire. A slow leak reads per hour.
TEST(CloseWaitRule, FdExhaustionNeedsASocketOlderThanMinAge) {
  Engine e(configFrom(R"({"rules": [{"name": "fds", "type": "close_wait", "min_sockets": 1000,
                         "min_age": "5m", "fd_exhaustion_within": "1d"}]})"));
  Snapshot s = withFds(900, 1024);
  s.processes[0].fdForecast = FdForecast{0.05, 2h};
  EXPECT_TRUE(e.evaluate(s, at(0)).empty());
  EXPECT_TRUE(e.evaluate(s, at(200)).empty());
  const auto out = e.evaluate(s, at(301));  // the sockets, first seen at 0, are 5m old
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::FdExhaustion});
  EXPECT_NE(out[0].message.find("Its open files grow by 3.0/hour: it runs out of file "
                                "descriptors (900 open, limit 1024) in about 2 hours"),
            std::string::npos)
      << out[0].message;
}

// In a unit, the member nearest to running out is the one named.
TEST(CloseWaitRule, AUnitNamesItsProcessNearestToRunningOut) {
  Engine e(configFrom(R"({"rules": [{"name": "u", "type": "close_wait", "group_by": "unit",
                         "min_sockets": 2, "min_age": "0s"}]})"));
  SnapshotBuilder b;
  auto a = b.process(proc(10, "worker").inUnit("app.service"));
  auto c = b.process(proc(11, "worker").inUnit("app.service"));
  b.closeWaitMany(1, 2, {a}, 80);
  b.closeWaitMany(10, 2, {c}, 80);
  Snapshot s = b.build();
  s.processes[0].openFds = 100;
  s.processes[0].maxFds = 1024;
  s.processes[0].fdForecast = FdForecast{10.0, 90min};
  s.processes[1].openFds = 1000;
  s.processes[1].maxFds = 1024;
  s.processes[1].fdForecast = FdForecast{3.0, 8min};
  const auto out = e.evaluate(s, at(0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::OldSockets});
  EXPECT_EQ(out[0].closeWait.fds.pid, 11);
  EXPECT_NE(out[0].message.find(". worker[11]'s open files grow by 3.0/min: it runs out of file "
                                "descriptors (1000 open, limit 1024) in about 8 minutes"),
            std::string::npos)
      << out[0].message;
}

}  // namespace
}  // namespace waitwatch::testing

namespace waitwatch::testing {
namespace {

// The host's TCP memory toward tcp_mem: forecast at its growth, "now" past a threshold, nothing
// where a threshold is unknown or memory does not grow.
TEST(TcpMemoryForecast, ReachesPressureAndMaxAtItsGrowth) {
  FdForecaster f(Duration(60'000));
  auto poll = [&](double t, std::uint64_t pages, std::uint64_t pressure = 10'000) {
    Snapshot s;
    s.tcpMemory.valid = true;
    s.tcpMemory.pages = pages;
    s.tcpMemory.min = 5'000;
    s.tcpMemory.pressure = pressure;
    s.tcpMemory.max = 20'000;
    f.update(s, at(t));
    return s.tcpMemory;
  };
  TcpMemory m;
  for (int t = 0; t <= 30; ++t)  // 100 pages a second
    m = poll(t, 1000 + 100 * static_cast<std::uint64_t>(t));
  ASSERT_TRUE(m.toPressure && m.toMax);
  EXPECT_NEAR(m.toPressure->perMinute, 6000.0, 1.0);
  EXPECT_EQ(m.toPressure->exhaustion, Duration(60'000));  // (10000 - 4000) / 100
  EXPECT_EQ(m.toMax->exhaustion, Duration(160'000));
  // Past pressure it is there now, even without growth.
  for (int t = 31; t <= 100; ++t)
    m = poll(t, 12'000);
  ASSERT_TRUE(m.toPressure);
  EXPECT_EQ(m.toPressure->exhaustion, Duration(0));
  EXPECT_FALSE(m.toMax);  // not growing
  // Unknown thresholds (not the host's namespace): no forecast.
  m = poll(101, 12'000, 0);
  EXPECT_FALSE(m.toPressure);
}

}  // namespace
}  // namespace waitwatch::testing

namespace waitwatch::testing {
namespace {

// A client pair's CLOSE_WAIT sockets growing toward the ports its other connections leave: a
// forecast. The same pair whose other connections grow while its CLOSE_WAIT sockets do not:
// none (a traffic ramp is not a leak).
TEST(PortForecast, OnlyAGrowingCloseWaitLeakIsForecast) {
  auto pair = [](std::uint32_t closeWait, std::uint32_t others) {
    Snapshot s;
    NetnsEntry ns;
    ns.ref = NetnsRef{4026531840, "", {}};
    ns.ephemeral = EphemeralRange(40000, 40999);  // 1000 ports
    s.namespaces.push_back(ns);
    TimeWaitGroup g;
    g.netns = 0;
    g.source = *IpAddress::parse("10.0.0.1");
    g.destination = Endpoint{*IpAddress::parse("10.0.0.9"), 5432};
    g.timeWait = others / 2;
    g.live = others - others / 2 + closeWait;
    g.closeWait = closeWait;
    s.timeWait.push_back(g);
    return s;
  };
  FdForecaster leak(Duration(60'000));
  Snapshot s;
  for (int t = 0; t <= 30; ++t) {  // 10 CLOSE_WAIT sockets a second, 200 other connections
    s = pair(10 * static_cast<std::uint32_t>(t), 200);
    leak.update(s, at(t));
  }
  ASSERT_TRUE(s.timeWait[0].portExhaustion);
  EXPECT_EQ(s.timeWait[0].portExhaustion->exhaustion, Duration(50'000));  // (800 - 300) / 10

  FdForecaster ramp(Duration(60'000));
  for (int t = 0; t <= 30; ++t) {  // the other connections grow, the 5 CLOSE_WAIT do not
    s = pair(5, 200 + 20 * static_cast<std::uint32_t>(t));
    ramp.update(s, at(t));
  }
  EXPECT_FALSE(s.timeWait[0].portExhaustion);
}

}  // namespace
}  // namespace waitwatch::testing
