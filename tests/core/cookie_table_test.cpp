// SPDX-License-Identifier: Apache-2.0
#include "core/cookie_table.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

TEST(CookieTable, SetReplacesAndTouchKeeps) {
  CookieTable t;
  t.beginPoll(2);
  EXPECT_EQ(t.touch(5, 40), 40u);
  EXPECT_EQ(t.touch(5, 41), 40u);  // present: its value stays
  t.set(5, 42);
  EXPECT_EQ(*t.find(5), 42u);
  t.set(6, CookieTable::kMaxValue);
  EXPECT_EQ(*t.find(6), CookieTable::kMaxValue);
  t.endPoll();
  EXPECT_EQ(t.size(), 2u);
}

TEST(CookieTable, EndPollKeepsUntouchedEntriesTheCallerAccepts) {
  CookieTable t;
  t.beginPoll(0);
  for (std::uint64_t c = 1; c <= 2000; ++c)
    t.set(c, c % 3);
  t.endPoll();
  t.beginPoll(0);
  t.touch(1, 0);
  t.endPoll([](std::uint64_t v) { return v == 2; });
  // Touched: 1. Kept untouched: every cookie whose value is 2.
  EXPECT_EQ(t.size(), 1u + 667u);
  EXPECT_TRUE(t.find(1));
  EXPECT_TRUE(t.find(2));
  EXPECT_FALSE(t.find(3));
  for (std::uint64_t c = 1; c <= 2000; ++c) {
    ASSERT_EQ(t.find(c).has_value(), c == 1 || c % 3 == 2) << c;
  }
}

}  // namespace
}  // namespace waitwatch

namespace waitwatch {
namespace {

TEST(CookieTable, AnEntryKeptWithoutATouchIsAskedAgainEveryPoll) {
  CookieTable t;
  t.beginPoll(0);
  t.set(9, 1);
  t.endPoll();
  int asked = 0;
  for (int poll = 0; poll < 4; ++poll) {
    t.beginPoll(0);
    t.endPoll([&](std::uint64_t) { return ++asked < 3; });
  }
  EXPECT_EQ(asked, 3);  // asked in each poll until it said no
  EXPECT_FALSE(t.find(9));
}

}  // namespace
}  // namespace waitwatch
