// SPDX-License-Identifier: Apache-2.0
#include "core/duration.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {
using namespace std::chrono_literals;

TEST(Duration, ParsesUnitsAndCombinations) {
  EXPECT_EQ(parseDuration("500ms"), Duration(500));
  EXPECT_EQ(parseDuration("30s"), Duration(30s));
  EXPECT_EQ(parseDuration("5m"), Duration(5min));
  EXPECT_EQ(parseDuration("1h"), Duration(1h));
  EXPECT_EQ(parseDuration("1h30m"), Duration(90min));
  EXPECT_EQ(parseDuration("2d"), Duration(48h));
  EXPECT_EQ(parseDuration("0s"), Duration(0));
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* bad :
       {"", "5", "5 minutes", "m", "-1s", "1.5s", "5x", "1h 30m", "s5", "99999999999999999999s"}) {
    EXPECT_FALSE(parseDuration(bad)) << bad;
  }
}

TEST(Duration, FormatsCanonicallyAndRoundTrips) {
  EXPECT_EQ(formatDuration(Duration(0)), "0s");
  EXPECT_EQ(formatDuration(Duration(90min)), "1h30m");
  EXPECT_EQ(formatDuration(Duration(1500)), "1s500ms");
  for (auto d : {Duration(1), Duration(61s), Duration(49h + 1s)}) {
    EXPECT_EQ(parseDuration(formatDuration(d)), d);
  }
}

TEST(Duration, HumanFormShowsTwoUnits) {
  EXPECT_EQ(humanDuration(Duration(3h + 12min + 5s)), "3h12m");
  EXPECT_EQ(humanDuration(Duration(45s)), "45s");
  EXPECT_EQ(humanDuration(Duration(2h + 5s)), "2h0m");
  EXPECT_EQ(humanDuration(Duration(50h)), "2d2h");
  EXPECT_EQ(humanDuration(Duration(250)), "250ms");
}

}  // namespace
}  // namespace waitwatch
