// SPDX-License-Identifier: Apache-2.0
#pragma once
// First-seen times of CLOSE_WAIT sockets by cookie: the only per-socket memory of the engine.
// A CookieTable: cookies not seen in a poll are forgotten at its end.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/cookie_table.hpp"
#include "core/function_ref.hpp"

namespace waitwatch {

class CookieAges {
 public:
  struct Entry {
    std::int64_t firstSeenMs = 0;  // on the engine's own millisecond scale (never negative)
    bool lowerBound = false;       // present at the first poll: aged from then, "at least"
  };

  // Starts a poll that will touch about `expected` cookies (reserves for them).
  void beginPoll(std::size_t expected) { table_.beginPoll(expected); }
  // The entry for `cookie`, created with (nowMs, lowerBound) if this is its first poll.
  Entry touch(std::uint64_t cookie, std::int64_t nowMs, bool lowerBound) {
    return unpack(table_.touch(cookie, pack(nowMs, lowerBound)));
  }
  // Forgets every cookie not touched since beginPoll; shrinks the table if it is mostly empty.
  void endPoll() { table_.endPoll(); }

  [[nodiscard]] std::optional<Entry> find(std::uint64_t cookie) const {
    const auto v = table_.find(cookie);
    if (!v) return std::nullopt;
    return unpack(*v);
  }
  void prefetch(std::uint64_t cookie) const { table_.prefetch(cookie); }
  // Every entry, in no particular order.
  void forEach(FunctionRef<void(std::uint64_t cookie, const Entry&)> f) const {
    table_.forEach([&](std::uint64_t cookie, std::uint64_t v) { f(cookie, unpack(v)); });
  }
  // Sets an entry (restoring saved ages); it stays until a poll does not see its socket.
  void set(std::uint64_t cookie, const Entry& e) {
    table_.set(cookie, pack(e.firstSeenMs, e.lowerBound));
  }
  [[nodiscard]] std::size_t size() const { return table_.size(); }
  [[nodiscard]] std::size_t capacity() const { return table_.capacity(); }
  [[nodiscard]] std::size_t memoryBytes() const { return table_.memoryBytes(); }

 private:
  static std::uint64_t pack(std::int64_t ms, bool lowerBound) {
    return (static_cast<std::uint64_t>(ms) << 1) | (lowerBound ? 1u : 0u);
  }
  static Entry unpack(std::uint64_t v) {
    return Entry{static_cast<std::int64_t>(v >> 1), (v & 1u) != 0};
  }

  CookieTable table_;
};

}  // namespace waitwatch
