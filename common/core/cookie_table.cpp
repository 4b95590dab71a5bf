// SPDX-License-Identifier: Apache-2.0
#include "core/cookie_table.hpp"

#include <algorithm>

namespace waitwatch {

std::size_t CookieTable::Policy::home(std::uint64_t cookie, unsigned bits) {
  // The kernel hands out cookies from a counter (in per-CPU batches), lazily on the first dump
  // that sees a socket, so a dump mostly lists sockets in cookie order. Runs of 16 consecutive
  // cookies share a 16-slot block (four cache lines), so most lookups follow the memory of the
  // previous one; the blocks themselves are spread by a Fibonacci hash so that dense runs far
  // apart in cookie space never pile onto each other (that would make long probe chains).
  const std::uint64_t block = ((cookie >> 4) * 0x9e3779b97f4a7c15ULL) >> (64 - (bits - 4));
  return static_cast<std::size_t>((block << 4) | (cookie & 15));
}

void CookieTable::beginPoll(std::size_t expected) {
  mark_ ^= 1u;
  // Usually the same sockets as last poll: room for the larger of the two; touch() grows the
  // table if more turn up.
  table_.reserve(std::max(table_.size(), expected));
}

CookieTable::Slot& CookieTable::slotFor(std::uint64_t cookie, std::uint64_t valueIfNew) {
  const std::uint64_t fresh = ((valueIfNew & kMaxValue) << 1) | mark_;
  if (cookie == 0) {
    if (!zero_) zero_ = Slot{0, fresh};
    zero_->value = (zero_->value & ~std::uint64_t{1}) | mark_;
    return *zero_;
  }
  auto [s, inserted] = table_.findOrInsert(cookie);
  s->value = inserted ? fresh : (s->value & ~std::uint64_t{1}) | mark_;
  return *s;
}

std::uint64_t CookieTable::touch(std::uint64_t cookie, std::uint64_t valueIfNew) {
  return slotFor(cookie, valueIfNew).value >> 1;
}

void CookieTable::set(std::uint64_t cookie, std::uint64_t value) {
  slotFor(cookie, value).value = ((value & kMaxValue) << 1) | mark_;
}

const CookieTable::Slot* CookieTable::lookup(std::uint64_t cookie) const {
  if (cookie == 0) return zero_ ? &*zero_ : nullptr;
  return table_.find(cookie);
}

void CookieTable::forEach(FunctionRef<void(std::uint64_t, std::uint64_t)> f) const {
  if (zero_) f(0, zero_->value >> 1);
  table_.forEach([&](const Slot& s) { f(s.key, s.value >> 1); });
}

std::optional<std::uint64_t> CookieTable::find(std::uint64_t cookie) const {
  const Slot* s = lookup(cookie);
  if (s == nullptr) return std::nullopt;
  return s->value >> 1;
}

std::optional<std::uint64_t> CookieTable::mark(std::uint64_t cookie) {
  auto* s = const_cast<Slot*>(lookup(cookie));
  if (s == nullptr) return std::nullopt;
  s->value = (s->value & ~std::uint64_t{1}) | mark_;
  return s->value >> 1;
}

void CookieTable::sweep(const FunctionRef<bool(std::uint64_t)>* keep) {
  const auto remark = [&](Slot& s) {
    if (sweeps(s, keep)) return true;
    // Kept without a touch: marked as of this poll, or two polls on it would look touched.
    s.value = (s.value & ~std::uint64_t{1}) | mark_;
    return false;
  };
  if (zero_ && remark(*zero_)) zero_.reset();
  table_.sweep(remark);
}

}  // namespace waitwatch
