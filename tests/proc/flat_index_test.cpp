// SPDX-License-Identifier: Apache-2.0
#include "proc/flat_index.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>

namespace waitwatch {
namespace {

using Index = FlatIndex<std::uint64_t, std::hash<std::uint64_t>>;

TEST(FlatIndex, KeepsTheFirstValueOfEachKeyUntilCleared) {
  Index index;
  for (std::uint64_t k = 0; k < 5000; ++k)
    EXPECT_EQ(index.findOrInsert(k * 977, static_cast<std::uint32_t>(k)),
              std::make_pair(static_cast<std::uint32_t>(k), true));
  EXPECT_EQ(index.size(), 5000u);
  EXPECT_EQ(index.findOrInsert(977 * 12, 99), std::make_pair(std::uint32_t{12}, false));
  index.clear();
  EXPECT_EQ(index.size(), 0u);
  // Every key is new again, key 0 included (an all-zero slot is not an entry).
  EXPECT_EQ(index.findOrInsert(0, 7), std::make_pair(std::uint32_t{7}, true));
  EXPECT_EQ(index.findOrInsert(977 * 12, 8), std::make_pair(std::uint32_t{8}, true));
}

// One busy namespace between quiet ones keeps the memory; a table that stays far larger than
// its use over many polls gives it back.
TEST(FlatIndex, GivesMemoryBackOnlyAfterManySmallClears) {
  Index index;
  for (std::uint64_t k = 0; k < 100'000; ++k)
    index.findOrInsert(k, 0);
  const std::size_t big = index.capacity();
  index.clear();
  for (int round = 0; round < 10; ++round) {
    for (std::uint64_t k = 0; k < 10; ++k)
      index.findOrInsert(k, 0);
    index.clear();
  }
  EXPECT_EQ(index.capacity(), big);
  for (int round = 0; round < 100; ++round) {
    for (std::uint64_t k = 0; k < 10; ++k)
      index.findOrInsert(k, 0);
    index.clear();
  }
  EXPECT_LT(index.capacity(), big / 100);
  for (std::uint64_t k = 0; k < 10; ++k)
    EXPECT_TRUE(index.findOrInsert(k, 1).second);
}

}  // namespace
}  // namespace waitwatch
