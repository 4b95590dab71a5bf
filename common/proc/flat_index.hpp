// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small map Key -> std::uint32_t for per-poll grouping (TIME_WAIT groups by endpoint).
// Clearing is O(1) (a generation counter), so one map serves every namespace of every poll
// without freeing or re-zeroing its memory; lookups never allocate once it has grown.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/flat_table.hpp"

namespace waitwatch {

template <typename K, typename Hash>
class FlatIndex {
 public:
  FlatIndex() { table_.reserve(1); }

  // The value stored for `key`, inserting `valueIfNew` when absent; `.second` tells which.
  std::pair<std::uint32_t, bool> findOrInsert(const K& key, std::uint32_t valueIfNew) {
    auto [slot, inserted] = table_.findOrInsert(key);
    if (inserted) {
      slot->value = valueIfNew;
      peak_ = std::max(peak_, table_.size());
    }
    return {slot->value, inserted};
  }

  [[nodiscard]] std::size_t size() const { return table_.size(); }
  [[nodiscard]] std::size_t capacity() const { return table_.capacity(); }

  // Forgets every key in O(1). Gives memory back when the table stayed far larger than its use
  // over many clears (a past burst), not after one small namespace between two big ones.
  void clear() {
    smallClears_ = peak_ * 16 < table_.capacity() ? smallClears_ + 1 : 0;
    table_.clear();
    if (table_.capacity() > kMinCapacity && smallClears_ >= kShrinkAfter) {
      table_.release();
      table_.reserve(peak_ * 3);  // a quarter full: room for a namespace three times as busy
      smallClears_ = 0;
    }
    peak_ = 0;
  }

 private:
  static constexpr std::size_t kMinCapacity = 64;
  static constexpr unsigned kShrinkAfter = 64;
  struct Slot {
    K key{};
    std::uint32_t value = 0;
    std::uint32_t generation = 0;  // an entry iff == the policy's generation
  };
  struct Policy {
    using Slot = FlatIndex::Slot;
    using Key = K;
    static constexpr unsigned kMaxLoadPercent = 75;
    std::uint32_t generation = 1;
    [[nodiscard]] bool empty(const Slot& s) const { return s.generation != generation; }
    static std::uint64_t hash(const K& key) { return mixHash(Hash{}(key)); }
    static std::uint64_t slotHash(const Slot& s) { return hash(s.key); }
    static bool matches(const Slot& s, const K& key) { return s.key == key; }
    [[nodiscard]] Slot make(const K& key) const { return Slot{key, 0, generation}; }
    bool forgetAll() {
      if (++generation != 0) return true;
      generation = 1;  // wrapped: old slots could read as current, so they are reset
      return false;
    }
  };

  FlatTable<Policy> table_{kMinCapacity};
  std::size_t peak_ = 0;
  unsigned smallClears_ = 0;
};

}  // namespace waitwatch
