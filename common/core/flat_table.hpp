// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one open-addressing hash table of the code base: linear probing over a power-of-two array
// of slots that the caller defines, no allocation per entry, backward-shift erase (no tombstones,
// so probe chains stay short after heavy churn), and a sweep that erases by predicate in one
// pass. The per-socket state of a poll lives in these tables at a million sockets, so a slot is
// as small as its user can make it and a lookup touches one cache line in the common case.
//
// What a slot holds, which slot is empty and how a key hashes belong to the Policy:
//
//   struct Policy {
//     using Slot = ...;  // trivially copyable; a value-initialised Slot{} is an empty slot
//     using Key = ...;
//     static constexpr unsigned kMaxLoadPercent = 70;  // grows beyond this load
//     bool empty(const Slot&) const;
//     std::uint64_t hash(const Key&) const;
//     std::uint64_t slotHash(const Slot&) const;  // the hash of the key the slot holds
//     bool matches(const Slot&, const Key&) const;
//     Slot make(const Key&);  // a new entry for the key (not empty)
//     // Optional: where a hash lives in a table of 2^bits slots (Fibonacci hashing otherwise).
//     std::size_t home(std::uint64_t hash, unsigned bits) const;
//     // Optional: makes every slot read as empty without touching them (a generation counter);
//     // false when it cannot this time, and the slots are then reset.
//     bool forgetAll();
//   };
//
// Pointers to slots stay valid until the next insertion, erase, sweep, reserve or clear.
#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace waitwatch {

// A strong 64-bit finaliser (MurmurHash3 fmix64), for keys whose hash leaves bits unmixed.
inline std::uint64_t mixHash(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// The common policy: a slot {key, value} whose integer key hashes to itself (the table's
// Fibonacci hashing spreads it), with key 0 marking an empty slot.
template <typename K, typename V, unsigned MaxLoadPercent>
struct IntegerKeyPolicy {
  struct Slot {
    K key = 0;
    V value = 0;
  };
  using Key = K;
  static constexpr unsigned kMaxLoadPercent = MaxLoadPercent;
  static bool empty(const Slot& s) { return s.key == 0; }
  static std::uint64_t hash(K key) { return key; }
  static std::uint64_t slotHash(const Slot& s) { return s.key; }
  static bool matches(const Slot& s, K key) { return s.key == key; }
  static Slot make(K key) { return Slot{key, 0}; }
};

template <typename Policy>
class FlatTable {
 public:
  using Slot = typename Policy::Slot;
  using Key = typename Policy::Key;
  static constexpr bool kPolicyHome = requires(const Policy p, std::uint64_t h, unsigned bits) {
    { p.home(h, bits) } -> std::convertible_to<std::size_t>;
  };
  // A home() the table could not call would silently give way to Fibonacci hashing.
  static_assert(
      kPolicyHome || !requires { &Policy::home; },
      "Policy::home must be callable as home(std::uint64_t hash, unsigned bits) const");

  // Slots are allocated at the first insertion or reserve(); never fewer than `minCapacity`.
  explicit FlatTable(std::size_t minCapacity = 16, Policy policy = {})
      : policy_(std::move(policy)),
        minCapacity_(std::bit_ceil(std::max<std::size_t>(minCapacity, 16))) {}

  [[nodiscard]] Policy& policy() { return policy_; }
  [[nodiscard]] const Policy& policy() const { return policy_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t capacity() const { return slots_.size(); }
  [[nodiscard]] std::size_t memoryBytes() const { return slots_.capacity() * sizeof(Slot); }

  [[nodiscard]] const Slot* find(const Key& key) const {
    if (slots_.empty()) return nullptr;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(policy_.hash(key));; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (policy_.empty(s)) return nullptr;
      if (policy_.matches(s, key)) return &s;
    }
  }
  [[nodiscard]] Slot* find(const Key& key) {
    return const_cast<Slot*>(std::as_const(*this).find(key));
  }

  // The slot of `key`, made by Policy::make when absent; `.second` is true when it was. Only an
  // insertion grows the table.
  std::pair<Slot*, bool> findOrInsert(const Key& key) {
    if (slots_.empty()) rehash(minCapacity_);
    const std::uint64_t hash = policy_.hash(key);
    for (;;) {
      const std::size_t mask = slots_.size() - 1;
      for (std::size_t i = home(hash);; i = (i + 1) & mask) {
        Slot& s = slots_[i];
        if (policy_.empty(s)) {
          if ((size_ + 1) * 100 > slots_.size() * Policy::kMaxLoadPercent) break;
          s = policy_.make(key);
          ++size_;
          return {&s, true};
        }
        if (policy_.matches(s, key)) return {&s, false};
      }
      rehash(slots_.size() * 2);  // then probe again in the larger table
    }
  }

  // Hints the CPU to fetch `key`'s home slot, so that a lookup a few keys later does not wait
  // on memory (the per-socket tables outgrow the caches at half a million sockets); for a
  // lookup that will write the slot, prefetchForWrite() also asks for ownership of the line.
  void prefetch(const Key& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(policy_.hash(key))], 0);
  }
  void prefetchForWrite(const Key& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(policy_.hash(key))], 1);
  }

  // Removes the entry at `slot` (from find/findOrInsert); later entries of its probe chain move
  // back, so no chain is cut.
  void erase(Slot* slot) { eraseAt(static_cast<std::size_t>(slot - slots_.data())); }

  // Calls `eraseIf(Slot&)` once for every entry and removes those it returns true for; it may
  // change the slots it keeps, except their keys. Then gives back memory if the table is
  // mostly empty.
  template <typename F>
  void sweep(F&& eraseIf) {
    if (slots_.empty()) return;
    const std::size_t mask = slots_.size() - 1;
    // Start right after an empty slot so that no probe chain wraps past the start: an erase
    // moves entries back only within their chain, from slots this pass has not reached yet.
    std::size_t start = 0;
    while (!policy_.empty(slots_[start]))
      ++start;  // the load bound leaves an empty slot
    for (std::size_t n = 1; n < slots_.size();) {
      const std::size_t i = (start + n) & mask;
      if (!policy_.empty(slots_[i]) && eraseIf(slots_[i])) {
        eraseAt(i);  // another entry may now sit at i: look again
      } else {
        ++n;
      }
    }
    shrinkIfSparse();
  }

  template <typename F>
  void forEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (!policy_.empty(s)) f(s);
    }
  }

  // Makes room for `entries` under the load bound without further growth.
  void reserve(std::size_t entries) {
    const std::size_t needed =
        std::bit_ceil((entries * 100 + Policy::kMaxLoadPercent - 1) / Policy::kMaxLoadPercent);
    if (slots_.empty() || needed > slots_.size()) {
      rehash(std::max({needed, minCapacity_, slots_.size()}));
    }
  }

  // Forgets every entry and keeps the memory.
  void clear() {
    size_ = 0;
    if constexpr (requires(Policy p) { p.forgetAll(); }) {
      if (policy_.forgetAll()) return;
    }
    std::fill(slots_.begin(), slots_.end(), Slot{});
  }

  // Forgets every entry and gives the memory back.
  void release() {
    std::vector<Slot>().swap(slots_);
    size_ = 0;
  }

  // Gives back most of a table that is less than 1/8 full (a past burst): at most half full
  // afterwards, so that it does not grow again at once.
  void shrinkIfSparse() {
    if (slots_.size() > minCapacity_ && size_ * 8 < slots_.size()) {
      rehash(std::max(minCapacity_, std::bit_ceil(size_ * 2)));
    }
  }

 private:
  [[nodiscard]] std::size_t home(std::uint64_t hash) const {
    if constexpr (kPolicyHome) {
      return policy_.home(hash, bits_);
    } else {
      // Fibonacci hashing: the top bits of the product depend on every bit of the hash.
      return static_cast<std::size_t>((hash * 0x9e3779b97f4a7c15ULL) >> (64 - bits_));
    }
  }

  void eraseAt(std::size_t i) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask; !policy_.empty(slots_[j]); j = (j + 1) & mask) {
      // The entry at j may fill the hole only if its home is not cyclically in (hole, j].
      const std::size_t h = home(policy_.slotHash(slots_[j]));
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    --size_;
  }

  void rehash(std::size_t capacity) {
    std::vector<Slot> old(capacity);
    old.swap(slots_);
    bits_ = static_cast<unsigned>(std::countr_zero(capacity));
    const std::size_t mask = capacity - 1;
    for (const Slot& s : old) {
      if (policy_.empty(s)) continue;
      std::size_t i = home(policy_.slotHash(s));
      while (!policy_.empty(slots_[i]))
        i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  Policy policy_;
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t minCapacity_;
  unsigned bits_ = 0;
};

}  // namespace waitwatch
