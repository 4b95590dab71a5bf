// SPDX-License-Identifier: Apache-2.0
#include "proc/inode_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace waitwatch {
namespace {

using State = InodeTable::State;

std::vector<std::uint32_t> owners(const InodeTable& t, std::uint32_t inode) {
  auto v = t.find(inode);
  if (!v) return {};
  auto span = v->owners();
  std::vector<std::uint32_t> out(span.begin(), span.end());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(InodeTable, UnknownInodeBecomesPendingThenOwned) {
  InodeTable t;
  t.beginPoll();
  auto v = t.touch(100);
  EXPECT_EQ(v.state, State::Pending);
  EXPECT_TRUE(v.owners().empty());
  EXPECT_EQ(t.count(State::Pending), 1u);
  t.addOwner(100, 7, false);
  auto again = t.touch(100);
  EXPECT_EQ(again.state, State::Owned);
  ASSERT_EQ(again.owners().size(), 1u);
  EXPECT_EQ(again.owners()[0], 7u);
  EXPECT_EQ(t.count(State::Pending), 0u);
  EXPECT_EQ(t.count(State::Owned), 1u);
}

TEST(InodeTable, AddOwnerIgnoresAbsentInodesUnlessAsked) {
  InodeTable t;
  t.beginPoll();
  t.addOwner(5, 1, false);
  EXPECT_FALSE(t.find(5));
  t.addOwner(5, 1, true);
  EXPECT_EQ(owners(t, 5), std::vector<std::uint32_t>{1});
  // Inserted unseen: dropped by the sweep unless the dump touches it.
  t.addOwner(6, 1, true);
  t.touch(6);
  std::vector<std::uint32_t> dropped;
  t.sweep([&](std::uint32_t inode, std::span<const std::uint32_t>, bool confirmed) {
    dropped.push_back(inode);
    EXPECT_FALSE(confirmed) << "no dump ever showed " << inode;
  });
  EXPECT_EQ(dropped, std::vector<std::uint32_t>{5});
  EXPECT_FALSE(t.find(5));
  EXPECT_TRUE(t.find(6));
}

TEST(InodeTable, SharedSocketListsEveryOwnerOnce) {
  InodeTable t;
  t.beginPoll();
  t.touch(9);
  t.addOwner(9, 1, false);
  t.addOwner(9, 2, false);
  t.addOwner(9, 2, false);
  t.addOwner(9, 3, false);
  EXPECT_EQ(owners(t, 9), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_TRUE(t.hasOwner(9, 2));
  t.removeOwner(9, 2);
  EXPECT_EQ(owners(t, 9), (std::vector<std::uint32_t>{1, 3}));
  EXPECT_FALSE(t.hasOwner(9, 2));
  t.removeOwner(9, 1);
  EXPECT_EQ(owners(t, 9), std::vector<std::uint32_t>{3});
  // The last owner gone: the inode is unknown again, so the next dump asks for it.
  t.removeOwner(9, 3);
  EXPECT_FALSE(t.find(9));
  EXPECT_EQ(t.touch(9).state, State::Pending);
}

TEST(InodeTable, UnresolvedStatesAreCountedAndOverriddenByAClaim) {
  InodeTable t;
  t.beginPoll();
  t.touch(1);
  t.touch(2);
  t.setUnresolved(1, State::NoPermission);
  t.setUnresolved(2, State::Vanished);
  EXPECT_EQ(t.find(1)->state, State::NoPermission);
  EXPECT_EQ(t.find(2)->state, State::Vanished);
  EXPECT_EQ(t.count(State::Pending), 0u);
  EXPECT_EQ(t.count(State::NoPermission), 1u);
  EXPECT_EQ(t.count(State::Vanished), 1u);
  t.addOwner(2, 4, false);  // a later walk found the holder
  EXPECT_EQ(owners(t, 2), std::vector<std::uint32_t>{4});
  EXPECT_EQ(t.count(State::Vanished), 0u);
  // setUnresolved only applies to Pending entries.
  t.setUnresolved(2, State::Vanished);
  EXPECT_EQ(t.find(2)->state, State::Owned);
}

TEST(InodeTable, SweepDropsWhatTheDumpNoLongerShows) {
  InodeTable t;
  t.beginPoll();
  for (std::uint32_t i = 1; i <= 10; ++i) {
    t.touch(i);
    t.addOwner(i, i % 3, false);
  }
  t.sweep([](std::uint32_t, std::span<const std::uint32_t>, bool) { FAIL() << "all were seen"; });
  EXPECT_EQ(t.size(), 10u);

  t.beginPoll();
  for (std::uint32_t i = 1; i <= 10; i += 2)
    t.touch(i);
  t.touch(11);  // pending, never settled: dropped too
  std::set<std::uint32_t> dropped;
  t.sweep([&](std::uint32_t inode, std::span<const std::uint32_t> o, bool confirmed) {
    dropped.insert(inode);
    EXPECT_TRUE(confirmed) << "the last poll's dump showed " << inode;
    EXPECT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0], inode % 3);
  });
  EXPECT_EQ(dropped, (std::set<std::uint32_t>{2, 4, 6, 8, 10}));
  EXPECT_EQ(t.size(), 5u);
  EXPECT_FALSE(t.find(11));
  EXPECT_EQ(t.count(State::Pending), 0u);
}

// A shared socket that goes away reports every holder, and its owner list is reused.
TEST(InodeTable, SweepReportsEveryOwnerOfASharedSocket) {
  InodeTable t;
  t.beginPoll();
  for (std::uint32_t i = 1; i <= 3; ++i) {
    t.touch(i);
    t.addOwner(i, 10, false);
    t.addOwner(i, 10 + i, false);  // shared: a list of two
  }
  t.beginPoll();
  t.touch(2);
  std::map<std::uint32_t, std::vector<std::uint32_t>> dropped;
  t.sweep([&](std::uint32_t inode, std::span<const std::uint32_t> o, bool) {
    dropped[inode].assign(o.begin(), o.end());
  });
  EXPECT_EQ(dropped,
            (std::map<std::uint32_t, std::vector<std::uint32_t>>{{1, {10, 11}}, {3, {10, 13}}}));
  EXPECT_EQ(owners(t, 2), (std::vector<std::uint32_t>{10, 12}));
  t.touch(4);
  t.addOwner(4, 20, false);
  t.addOwner(4, 21, false);
  EXPECT_EQ(owners(t, 4), (std::vector<std::uint32_t>{20, 21}));
  EXPECT_EQ(owners(t, 2), (std::vector<std::uint32_t>{10, 12}));
}

TEST(InodeTable, ConfirmationByADumpSurvivesEveryOwnerChange) {
  InodeTable t;
  t.beginPoll();
  t.addOwner(1, 4, true);  // a walk's claim, then the dump shows it
  t.touch(1);
  t.touch(2);  // the dump first, then owners, shared, then one owner again
  t.addOwner(2, 4, false);
  t.addOwner(2, 5, false);
  t.removeOwner(2, 5);
  t.touch(3);  // searched in vain, then found
  t.setUnresolved(3, State::Vanished);
  t.addOwner(3, 6, false);
  t.addOwner(7, 4, true);  // a walk's claim the dump never confirms
  t.sweep([](std::uint32_t inode, std::span<const std::uint32_t>, bool) {
    EXPECT_EQ(inode, 7u) << "only the unconfirmed claim goes";
  });
  t.beginPoll();  // the sockets close: every one was confirmed once
  std::map<std::uint32_t, bool> dropped;
  t.sweep([&](std::uint32_t inode, std::span<const std::uint32_t>, bool confirmed) {
    dropped[inode] = confirmed;
  });
  EXPECT_EQ(dropped, (std::map<std::uint32_t, bool>{{1, true}, {2, true}, {3, true}}));
}

TEST(InodeTable, GrowsAndShrinksWithTheLiveSockets) {
  InodeTable t;
  t.beginPoll();
  t.touch(7919u);
  const std::size_t initial = t.capacity();  // the smallest table
  for (std::uint32_t i = 1; i <= 200'000; ++i) {
    t.touch(i * 7919u);
    t.addOwner(i * 7919u, i % 100, false);
  }
  EXPECT_EQ(t.size(), 200'000u);
  EXPECT_GE(t.capacity(), 200'000u * 5 / 4);  // load stays at or below 80%
  for (std::uint32_t i = 1; i <= 200'000; i += 997) {
    ASSERT_EQ(owners(t, i * 7919u), std::vector<std::uint32_t>{i % 100}) << i;
  }
  t.beginPoll();
  for (std::uint32_t i = 1; i <= 100; ++i)
    t.touch(i * 7919u);
  t.sweep([](std::uint32_t, std::span<const std::uint32_t>, bool) {});
  EXPECT_EQ(t.size(), 100u);
  EXPECT_EQ(t.capacity(), initial);  // memory follows the live sockets back down
  for (std::uint32_t i = 1; i <= 100; ++i)
    EXPECT_TRUE(t.find(i * 7919u));
}

// Random operations checked against a std::map model: probes, backward-shift deletion and
// rehashing must never lose or invent an entry.
TEST(InodeTable, MatchesAModelUnderRandomChurn) {
  InodeTable t;
  std::map<std::uint32_t, std::set<std::uint32_t>> model;  // owners; empty set = pending
  std::mt19937 rng(42);
  for (int poll = 0; poll < 30; ++poll) {
    t.beginPoll();
    std::set<std::uint32_t> seen;
    for (int op = 0; op < 3000; ++op) {
      const auto inode = static_cast<std::uint32_t>(1 + rng() % 5000);
      const auto slot = static_cast<std::uint32_t>(rng() % 8);
      switch (rng() % 4) {
        case 0:
          t.touch(inode);
          seen.insert(inode);
          model[inode];
          break;
        case 1:
          if (model.count(inode)) {
            t.addOwner(inode, slot, false);
            model[inode].insert(slot);
          }
          break;
        case 2:
          if (model.count(inode) && model[inode].count(slot)) {
            t.removeOwner(inode, slot);
            model[inode].erase(slot);
            if (model[inode].empty()) {
              model.erase(inode);
              seen.erase(inode);
            }
          }
          break;
        case 3:
          t.touch(inode);
          seen.insert(inode);
          model[inode];
          break;
      }
    }
    for (const auto& [inode, slots] : model) {
      auto v = t.find(inode);
      ASSERT_TRUE(v) << inode;
      ASSERT_EQ(v->state, slots.empty() ? State::Pending : State::Owned) << inode;
      auto o = owners(t, inode);
      ASSERT_EQ(o, std::vector<std::uint32_t>(slots.begin(), slots.end())) << inode;
    }
    ASSERT_EQ(t.size(), model.size());
    t.sweep([](std::uint32_t, std::span<const std::uint32_t>, bool) {});
    for (auto it = model.begin(); it != model.end();) {
      it = (!seen.count(it->first) || it->second.empty()) ? model.erase(it) : std::next(it);
    }
    ASSERT_EQ(t.size(), model.size());
  }
}

}  // namespace
}  // namespace waitwatch
