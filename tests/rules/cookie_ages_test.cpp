// SPDX-License-Identifier: Apache-2.0
#include "rules/cookie_ages.hpp"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace waitwatch {
namespace {

TEST(CookieAges, RemembersFirstSeenAndForgetsWhatIsGone) {
  CookieAges ages;
  ages.beginPoll(2);
  EXPECT_EQ(ages.touch(10, 0, true).firstSeenMs, 0);
  EXPECT_TRUE(ages.touch(11, 0, true).lowerBound);
  ages.endPoll();
  ages.beginPoll(2);
  auto e = ages.touch(10, 5000, false);
  EXPECT_EQ(e.firstSeenMs, 0);
  EXPECT_TRUE(e.lowerBound);
  EXPECT_EQ(ages.touch(12, 5000, false).firstSeenMs, 5000);
  ages.endPoll();
  EXPECT_EQ(ages.size(), 2u);
  EXPECT_FALSE(ages.find(11));  // not seen in the second poll: forgotten
  ASSERT_TRUE(ages.find(12));
  EXPECT_FALSE(ages.find(12)->lowerBound);
}

TEST(CookieAges, CookieZeroIsTrackedToo) {
  CookieAges ages;
  ages.beginPoll(1);
  ages.touch(0, 7, false);
  ages.endPoll();
  ASSERT_TRUE(ages.find(0));
  EXPECT_EQ(ages.find(0)->firstSeenMs, 7);
  ages.beginPoll(0);
  ages.endPoll();
  EXPECT_FALSE(ages.find(0));
}

// Random churn against a reference map: deletion by backward shift must never lose an entry,
// and the table must shrink back once the population is gone.
TEST(CookieAges, AgreesWithAReferenceUnderChurn) {
  CookieAges ages;
  std::unordered_map<std::uint64_t, std::int64_t> ref;
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> live;
  std::uint64_t next = 1;
  for (int poll = 0; poll < 60; ++poll) {
    // Keep a random ~80% of the live cookies, add a burst of new ones (sequential, like the
    // kernel's, sometimes huge).
    std::vector<std::uint64_t> kept;
    for (auto c : live) {
      if (rng() % 5 != 0) kept.push_back(c);
    }
    const std::size_t fresh = poll < 30 ? 5000 + rng() % 5000 : 0;
    for (std::size_t i = 0; i < fresh; ++i)
      kept.push_back(next++);
    live = kept;
    ages.beginPoll(live.size());
    std::unordered_map<std::uint64_t, std::int64_t> nextRef;
    for (auto c : live) {
      auto e = ages.touch(c, poll * 1000, false);
      auto it = ref.find(c);
      const std::int64_t expected = it == ref.end() ? poll * 1000 : it->second;
      ASSERT_EQ(e.firstSeenMs, expected) << "cookie " << c << " poll " << poll;
      nextRef[c] = expected;
    }
    ages.endPoll();
    ref = std::move(nextRef);
    ASSERT_EQ(ages.size(), ref.size());
    for (int probe = 0; probe < 200; ++probe) {
      const std::uint64_t c = 1 + rng() % next;
      const auto found = ages.find(c);
      ASSERT_EQ(found.has_value(), ref.count(c) == 1) << c;
    }
  }
  EXPECT_LT(ages.size(), 200u);
  EXPECT_LE(ages.capacity(), 1024u * 2);  // shrunk after the population went away
}

}  // namespace
}  // namespace waitwatch
