// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small open-addressing map Key -> std::uint32_t for per-poll grouping (TIME_WAIT groups by
// endpoint). Clearing is O(1) (a generation counter), so one map serves every namespace of every
// poll without freeing or re-zeroing its memory; lookups never allocate once it has grown.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace waitwatch {

// A strong 64-bit finaliser (MurmurHash3 fmix64): power-of-two tables need well-mixed low bits.
inline std::uint64_t mixHash(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

template <typename Key, typename Hash>
class FlatIndex {
 public:
  FlatIndex() { slots_.resize(kMinCapacity); }

  // The value stored for `key`, inserting `valueIfNew` when absent; `.second` tells which.
  std::pair<std::uint32_t, bool> findOrInsert(const Key& key, std::uint32_t valueIfNew) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = mixHash(Hash{}(key)) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.generation != generation_) {
        s = Slot{key, valueIfNew, generation_};
        ++size_;
        if (size_ > peak_) peak_ = size_;
        return {valueIfNew, true};
      }
      if (s.key == key) return {s.value, false};
    }
  }

  [[nodiscard]] std::size_t size() const { return size_; }

  // Forgets every key in O(1). Gives memory back when the table stayed far larger than its use
  // over many clears (a past burst), not after one small namespace between two big ones.
  void clear() {
    size_ = 0;
    smallClears_ = peak_ * 16 < slots_.size() ? smallClears_ + 1 : 0;
    if (slots_.size() > kMinCapacity && smallClears_ >= kShrinkAfter) {
      std::vector<Slot>(std::bit_ceil(std::max(peak_ * 4, kMinCapacity))).swap(slots_);
      generation_ = 1;
      peak_ = 0;
      smallClears_ = 0;
      return;
    }
    peak_ = 0;
    if (++generation_ == 0) {  // wrapped: old slots could look current
      for (Slot& s : slots_)
        s.generation = 0;
      generation_ = 1;
    }
  }

 private:
  static constexpr std::size_t kMinCapacity = 64;
  static constexpr unsigned kShrinkAfter = 64;
  struct Slot {
    Key key{};
    std::uint32_t value = 0;
    std::uint32_t generation = 0;  // current iff == generation_
  };

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.generation != generation_) continue;
      std::size_t i = mixHash(Hash{}(s.key)) & mask;
      while (slots_[i].generation == generation_)
        i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t peak_ = 0;
  unsigned smallClears_ = 0;
  std::uint32_t generation_ = 1;
};

}  // namespace waitwatch
