// SPDX-License-Identifier: Apache-2.0
#pragma once
// Socket cookie -> a 63-bit value, with mark-and-sweep per poll: the per-socket memory of
// whatever follows sockets across polls (the ages of CLOSE_WAIT sockets, the closers of
// TIME_WAIT sockets). A FlatTable of 16-byte slots at load <= 0.7 that never allocates per
// socket; it grows and shrinks by rehashing, which is rare.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/flat_table.hpp"
#include "core/function_ref.hpp"

namespace waitwatch {

class CookieTable {
 public:
  static constexpr std::uint64_t kMaxValue = ~std::uint64_t{0} >> 1;

  // Starts a poll that will touch about `expected` cookies (reserves for them).
  void beginPoll(std::size_t expected);
  // The value of `cookie`, inserted as `valueIfNew` (<= kMaxValue) if absent; marks it as seen
  // in this poll.
  std::uint64_t touch(std::uint64_t cookie, std::uint64_t valueIfNew);
  // Sets `cookie`'s value (inserting it) and marks it.
  void set(std::uint64_t cookie, std::uint64_t value);
  [[nodiscard]] std::optional<std::uint64_t> find(std::uint64_t cookie) const;
  // The value of `cookie` if present, which is then marked as seen in this poll.
  std::optional<std::uint64_t> mark(std::uint64_t cookie);
  // Forgets every cookie not touched since beginPoll; shrinks the table if it is mostly empty.
  void endPoll() { sweep(nullptr); }
  // The same, but keeps untouched cookies whose value `keep` accepts.
  void endPoll(FunctionRef<bool(std::uint64_t value)> keep) { sweep(&keep); }
  // Every (cookie, value), in no particular order.
  void forEach(FunctionRef<void(std::uint64_t cookie, std::uint64_t value)> f) const;

  // Hints the CPU to fetch `cookie`'s home slot: a touch() or find() a few sockets later then
  // does not wait on memory (the table outgrows the caches at half a million sockets).
  void prefetch(std::uint64_t cookie) const { table_.prefetch(cookie); }
  [[nodiscard]] std::size_t size() const { return table_.size() + (zero_ ? 1 : 0); }
  [[nodiscard]] std::size_t capacity() const { return table_.capacity(); }
  [[nodiscard]] std::size_t memoryBytes() const { return table_.memoryBytes(); }

 private:
  // Slots of {cookie, value << 1 | mark}. Cookie 0 marks an empty slot; a (never expected)
  // cookie 0 is kept aside in zero_.
  struct Policy : IntegerKeyPolicy<std::uint64_t, std::uint64_t, 70> {
    static std::size_t home(std::uint64_t cookie, unsigned bits);
  };
  using Slot = Policy::Slot;
  static constexpr std::size_t kMinCapacity = 1024;

  [[nodiscard]] const Slot* lookup(std::uint64_t cookie) const;
  Slot& slotFor(std::uint64_t cookie, std::uint64_t valueIfNew);
  void sweep(const FunctionRef<bool(std::uint64_t)>* keep);
  [[nodiscard]] bool sweeps(const Slot& s, const FunctionRef<bool(std::uint64_t)>* keep) const {
    return (s.value & 1u) != mark_ && !(keep != nullptr && (*keep)(s.value >> 1));
  }

  FlatTable<Policy> table_{kMinCapacity};
  std::uint64_t mark_ = 0;  // alternates each poll
  std::optional<Slot> zero_;
};

}  // namespace waitwatch
