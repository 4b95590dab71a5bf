// SPDX-License-Identifier: Apache-2.0
#pragma once
// First-seen times of CLOSE_WAIT sockets by cookie: the only per-socket memory of the engine.
// An open-addressing table (linear probing, 16 bytes a slot, load <= 0.7) with mark-and-sweep
// per poll: cookies not seen in a poll are forgotten at its end. No allocation per socket; the
// table grows and shrinks by rehashing, which is rare.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace waitwatch {

class CookieAges {
 public:
  struct Entry {
    std::int64_t firstSeenMs = 0;  // on the engine's own millisecond scale
    bool lowerBound = false;       // present at the first poll: aged from then, "at least"
  };

  // Starts a poll that will touch about `expected` cookies (reserves for them).
  void beginPoll(std::size_t expected);
  // The entry for `cookie`, created with (nowMs, lowerBound) if this is its first poll.
  Entry touch(std::uint64_t cookie, std::int64_t nowMs, bool lowerBound);
  // Forgets every cookie not touched since beginPoll; shrinks the table if it is mostly empty.
  void endPoll();

  [[nodiscard]] std::optional<Entry> find(std::uint64_t cookie) const;
  // Hints the CPU to fetch `cookie`'s home slot: a touch() or find() a few sockets later then
  // does not wait on memory (the table outgrows the caches at half a million sockets).
  void prefetch(std::uint64_t cookie) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(cookie)]);
  }
  [[nodiscard]] std::size_t size() const { return size_ + (zero_ ? 1 : 0); }
  [[nodiscard]] std::size_t capacity() const { return slots_.size(); }
  [[nodiscard]] std::size_t memoryBytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  // cookie 0 marks an empty slot; a (never expected) cookie 0 is kept aside in zero_.
  struct Slot {
    std::uint64_t cookie = 0;
    std::uint64_t packed = 0;  // firstSeenMs << 2 | lowerBound << 1 | mark
  };
  static constexpr std::size_t kMinCapacity = 1024;

  [[nodiscard]] std::size_t home(std::uint64_t cookie) const;
  void rehash(std::size_t capacity);
  void eraseAt(std::size_t i);
  static std::uint64_t pack(std::int64_t ms, bool lowerBound, std::uint64_t mark) {
    return (static_cast<std::uint64_t>(ms) << 2) | (lowerBound ? 2u : 0u) | mark;
  }
  static Entry unpack(std::uint64_t p) {
    return Entry{static_cast<std::int64_t>(p >> 2), (p & 2u) != 0};
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::uint64_t mark_ = 0;  // alternates each poll
  unsigned blockShift_ = 64;
  std::optional<Slot> zero_;
};

}  // namespace waitwatch
