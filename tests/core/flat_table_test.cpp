// SPDX-License-Identifier: Apache-2.0
#include "core/flat_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace waitwatch {
namespace {

struct Entry {
  std::uint64_t key = 0;  // 0 = empty
  std::uint64_t value = 0;
};

// Keys hash to themselves; `homeBits` > 0 squeezes every key into the first 2^homeBits slots,
// so that probe chains are long and wrap around the end of the array.
struct TestPolicy {
  using Slot = Entry;
  using Key = std::uint64_t;
  static constexpr unsigned kMaxLoadPercent = 70;
  unsigned homeBits = 0;
  static bool empty(const Entry& e) { return e.key == 0; }
  static std::uint64_t hash(std::uint64_t k) { return k; }
  static std::uint64_t slotHash(const Entry& e) { return e.key; }
  static bool matches(const Entry& e, std::uint64_t k) { return e.key == k; }
  static Entry make(std::uint64_t k) { return Entry{k, 0}; }
  [[nodiscard]] std::size_t home(std::uint64_t h, unsigned bits) const {
    const std::size_t slot = static_cast<std::size_t>(mixHash(h)) & ((std::size_t{1} << bits) - 1);
    // The last slots of the array: chains from them wrap to its start.
    if (homeBits > 0) return ((std::size_t{1} << bits) - 1) - (slot & ((1u << homeBits) - 1));
    return slot;
  }
};

using Table = FlatTable<TestPolicy>;

void expectSame(const Table& t, const std::unordered_map<std::uint64_t, std::uint64_t>& model) {
  ASSERT_EQ(t.size(), model.size());
  for (const auto& [k, v] : model) {
    const Entry* e = t.find(k);
    ASSERT_NE(e, nullptr) << "key " << k;
    EXPECT_EQ(e->value, v) << "key " << k;
  }
  std::size_t seen = 0;
  t.forEach([&](const Entry& e) {
    ++seen;
    EXPECT_TRUE(model.contains(e.key)) << "key " << e.key;
  });
  EXPECT_EQ(seen, model.size());
}

// Inserts, erases and sweeps at random against std::unordered_map, with spread and with piled-up
// homes: every entry stays findable after any erase (the backward shift never cuts a chain).
void randomOperations(unsigned homeBits, std::uint32_t seed) {
  Table t(16, TestPolicy{homeBits});
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 300; ++i) {
      const std::uint64_t k = 1 + rng() % 2000;
      const std::uint64_t v = rng();
      auto [e, inserted] = t.findOrInsert(k);
      EXPECT_EQ(inserted, !model.contains(k));
      e->value = v;
      model[k] = v;
      if (rng() % 3 == 0) {
        const std::uint64_t gone = 1 + rng() % 2000;
        if (Entry* g = t.find(gone)) t.erase(g);
        model.erase(gone);
      }
    }
    expectSame(t, model);
    // Sweep about half, and change the values of the rest in the same pass.
    const std::uint64_t salt = rng();
    t.sweep([&](Entry& e) {
      if (((e.key ^ salt) & 1) != 0) return true;
      e.value += 1;
      return false;
    });
    for (auto it = model.begin(); it != model.end();) {
      if (((it->first ^ salt) & 1) != 0) {
        it = model.erase(it);
      } else {
        it->second += 1;
        ++it;
      }
    }
    expectSame(t, model);
  }
}

TEST(FlatTable, MatchesAStandardMapUnderRandomInsertEraseAndSweep) {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    randomOperations(0, seed);
}

TEST(FlatTable, ChainsThatPileUpAndWrapSurviveEraseAndSweep) {
  for (std::uint32_t seed = 1; seed <= 3; ++seed)
    randomOperations(3, seed);
}

// The policy's home() is the one used: with every key homed on the last slot, the second key
// wraps to slot 0 and the third follows it, which is the order forEach() walks the slots in.
struct LastSlotPolicy : TestPolicy {
  [[nodiscard]] std::size_t home(std::uint64_t, unsigned bits) const {
    return (std::size_t{1} << bits) - 1;
  }
};

TEST(FlatTable, ThePolicysHomeDecidesWhereEntriesSit) {
  static_assert(FlatTable<LastSlotPolicy>::kPolicyHome);
  FlatTable<LastSlotPolicy> t(16);
  for (std::uint64_t k : {10u, 20u, 30u})
    t.findOrInsert(k);
  std::vector<std::uint64_t> order;
  t.forEach([&](const Entry& e) { order.push_back(e.key); });
  EXPECT_EQ(order, (std::vector<std::uint64_t>{20, 30, 10}));
  t.erase(t.find(10));  // the chain moves back: 20 to the last slot, 30 to slot 0
  order.clear();
  t.forEach([&](const Entry& e) { order.push_back(e.key); });
  EXPECT_EQ(order, (std::vector<std::uint64_t>{30, 20}));
  EXPECT_NE(t.find(20), nullptr);
  EXPECT_NE(t.find(30), nullptr);
}

TEST(FlatTable, ALookupThatFindsItsKeyNeverGrowsTheTable) {
  Table t(16);
  std::uint64_t k = 1;
  while ((t.size() + 1) * 100 <= std::max<std::size_t>(t.capacity(), 16) * 70)
    t.findOrInsert(k++);  // exactly at the load bound
  const std::size_t capacity = t.capacity();
  for (std::uint64_t i = 1; i < k; ++i)
    EXPECT_FALSE(t.findOrInsert(i).second);
  EXPECT_EQ(t.capacity(), capacity);
  t.findOrInsert(k);  // a new key past the bound does
  EXPECT_EQ(t.capacity(), capacity * 2);
}

TEST(FlatTable, GrowsPastItsLoadBoundAndShrinksWhenSwept) {
  Table t(16);
  EXPECT_EQ(t.capacity(), 0u);  // nothing allocated before the first entry
  for (std::uint64_t k = 1; k <= 1000; ++k)
    t.findOrInsert(k);
  EXPECT_EQ(t.size(), 1000u);
  EXPECT_LE(t.size() * 100, t.capacity() * TestPolicy::kMaxLoadPercent);
  const std::size_t big = t.capacity();
  t.sweep([](const Entry& e) { return e.key > 10; });
  EXPECT_EQ(t.size(), 10u);
  EXPECT_LT(t.capacity(), big);
  for (std::uint64_t k = 1; k <= 10; ++k)
    EXPECT_NE(t.find(k), nullptr);
  EXPECT_EQ(t.find(11), nullptr);
}

TEST(FlatTable, ReserveMakesRoomWithoutFurtherGrowth) {
  Table t(16);
  t.reserve(5000);
  const std::size_t capacity = t.capacity();
  for (std::uint64_t k = 1; k <= 5000; ++k)
    t.findOrInsert(k);
  EXPECT_EQ(t.capacity(), capacity);
  t.reserve(10);  // never shrinks
  EXPECT_EQ(t.capacity(), capacity);
}

TEST(FlatTable, ClearAndReleaseForgetEveryEntry) {
  Table t(16);
  for (std::uint64_t k = 1; k <= 100; ++k)
    t.findOrInsert(k);
  const std::size_t capacity = t.capacity();
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), capacity);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_TRUE(t.findOrInsert(5).second);
  t.release();
  EXPECT_EQ(t.capacity(), 0u);
  EXPECT_EQ(t.find(5), nullptr);
  EXPECT_TRUE(t.findOrInsert(5).second);
}

// A generation counter empties every slot without writing one; when it wraps the slots are
// reset, or entries of an old generation would read as current.
struct GenerationPolicy {
  struct Slot {
    std::uint32_t key = 0;
    std::uint32_t generation = 0;
  };
  using Key = std::uint32_t;
  static constexpr unsigned kMaxLoadPercent = 75;
  std::uint32_t generation = 1;
  int slowClears = 0;
  [[nodiscard]] bool empty(const Slot& s) const { return s.generation != generation; }
  static std::uint64_t hash(std::uint32_t k) { return k; }
  static std::uint64_t slotHash(const Slot& s) { return s.key; }
  static bool matches(const Slot& s, std::uint32_t k) { return s.key == k; }
  [[nodiscard]] Slot make(std::uint32_t k) const { return Slot{k, generation}; }
  bool forgetAll() {
    if (++generation != 0) return true;
    generation = 1;
    ++slowClears;
    return false;
  }
};

TEST(FlatTable, AGenerationClearsInConstantTimeAndSurvivesWrapping) {
  static_assert(!FlatTable<GenerationPolicy>::kPolicyHome);  // Fibonacci hashing
  FlatTable<GenerationPolicy> t(16);
  for (std::uint32_t k = 1; k <= 50; ++k)
    t.findOrInsert(k);  // generation 1
  t.clear();
  EXPECT_EQ(t.policy().slowClears, 0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.find(7), nullptr);
  EXPECT_TRUE(t.findOrInsert(7).second);
  // Four billion clears later the counter wraps back to 1, where the first entries still sit.
  t.policy().generation = 0xFFFFFFFFu;
  t.clear();
  EXPECT_EQ(t.policy().slowClears, 1);
  EXPECT_EQ(t.policy().generation, 1u);
  for (std::uint32_t k = 1; k <= 50; ++k)
    EXPECT_EQ(t.find(k), nullptr) << k;
  EXPECT_TRUE(t.findOrInsert(3).second);
  EXPECT_FALSE(t.findOrInsert(3).second);
}

}  // namespace
}  // namespace waitwatch
