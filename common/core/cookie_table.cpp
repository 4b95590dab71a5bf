// SPDX-License-Identifier: Apache-2.0
#include "core/cookie_table.hpp"

#include <algorithm>
#include <bit>

namespace waitwatch {

std::size_t CookieTable::home(std::uint64_t cookie) const {
  // The kernel hands out cookies from a counter (in per-CPU batches), lazily on the first dump
  // that sees a socket, so a dump mostly lists sockets in cookie order. Runs of 16 consecutive
  // cookies share a 16-slot block (four cache lines), so most lookups follow the memory of the
  // previous one; the blocks themselves are spread by a Fibonacci hash so that dense runs far
  // apart in cookie space never pile onto each other (that would make long probe chains).
  const std::uint64_t block = ((cookie >> 4) * 0x9e3779b97f4a7c15ULL) >> blockShift_;
  return static_cast<std::size_t>((block << 4) | (cookie & 15));
}

void CookieTable::beginPoll(std::size_t expected) {
  mark_ ^= 1u;
  // Usually the same sockets as last poll: size for the larger of the two at load <= 0.7;
  // touch() grows the table if more turn up.
  const std::size_t needed = std::bit_ceil(std::max(size_, expected) * 10 / 7 + 1);
  if (slots_.empty() || needed > slots_.size()) {
    rehash(std::max(needed, slots_.empty() ? kMinCapacity : slots_.size()));
  }
}

CookieTable::Slot& CookieTable::slotFor(std::uint64_t cookie, std::uint64_t valueIfNew) {
  const std::uint64_t fresh = ((valueIfNew & kMaxValue) << 1) | mark_;
  if (cookie == 0) {
    if (!zero_) zero_ = Slot{0, fresh};
    zero_->packed = (zero_->packed & ~std::uint64_t{1}) | mark_;
    return *zero_;
  }
  if (slots_.empty()) rehash(kMinCapacity);
  if ((size_ + 1) * 10 > slots_.size() * 7) rehash(slots_.size() * 2);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(cookie);; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.cookie == cookie) {
      s.packed = (s.packed & ~std::uint64_t{1}) | mark_;
      return s;
    }
    if (s.cookie == 0) {
      s.cookie = cookie;
      s.packed = fresh;
      ++size_;
      return s;
    }
  }
}

std::uint64_t CookieTable::touch(std::uint64_t cookie, std::uint64_t valueIfNew) {
  return slotFor(cookie, valueIfNew).packed >> 1;
}

void CookieTable::set(std::uint64_t cookie, std::uint64_t value) {
  slotFor(cookie, value).packed = ((value & kMaxValue) << 1) | mark_;
}

const CookieTable::Slot* CookieTable::lookup(std::uint64_t cookie) const {
  if (cookie == 0) return zero_ ? &*zero_ : nullptr;
  if (slots_.empty()) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(cookie);; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.cookie == cookie) return &s;
    if (s.cookie == 0) return nullptr;
  }
}

void CookieTable::forEach(FunctionRef<void(std::uint64_t, std::uint64_t)> f) const {
  if (zero_) f(0, zero_->packed >> 1);
  for (const Slot& s : slots_) {
    if (s.cookie != 0) f(s.cookie, s.packed >> 1);
  }
}

std::optional<std::uint64_t> CookieTable::find(std::uint64_t cookie) const {
  const Slot* s = lookup(cookie);
  if (s == nullptr) return std::nullopt;
  return s->packed >> 1;
}

std::optional<std::uint64_t> CookieTable::mark(std::uint64_t cookie) {
  auto* s = const_cast<Slot*>(lookup(cookie));
  if (s == nullptr) return std::nullopt;
  s->packed = (s->packed & ~std::uint64_t{1}) | mark_;
  return s->packed >> 1;
}

// Backward-shift deletion: keeps every probe chain intact without tombstones.
void CookieTable::eraseAt(std::size_t i) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (slots_[j].cookie == 0) break;
    const std::size_t k = home(slots_[j].cookie);
    // Slot j may move to the hole at i only if its home is not cyclically in (i, j].
    const bool homeBetween = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (homeBetween) continue;
    slots_[i] = slots_[j];
    i = j;
  }
  slots_[i] = Slot{};
  --size_;
}

void CookieTable::sweep(const FunctionRef<bool(std::uint64_t)>* keep) {
  if (zero_ && sweeps(*zero_, keep)) zero_.reset();
  if (zero_) zero_->packed = (zero_->packed & ~std::uint64_t{1}) | mark_;
  if (slots_.empty()) return;
  const std::size_t cap = slots_.size();
  const std::size_t mask = cap - 1;
  // Start right after an empty slot so that no probe chain wraps past the start: deletions
  // only shift entries backwards within their chain, which then never crosses it.
  std::size_t start = 0;
  while (slots_[start].cookie != 0)
    ++start;  // load <= 0.7: an empty slot exists
  for (std::size_t n = 1; n < cap;) {
    const std::size_t i = (start + n) & mask;
    Slot& s = slots_[i];
    if (s.cookie != 0 && sweeps(s, keep)) {
      eraseAt(i);  // something else may now sit at i: look again
    } else {
      // Kept without a touch: marked as of this poll, or two polls on it would look touched.
      if (s.cookie != 0) s.packed = (s.packed & ~std::uint64_t{1}) | mark_;
      ++n;
    }
  }
  // Bounded memory once the sockets are gone: give back most of a mostly empty table.
  if (cap > kMinCapacity && size_ * 8 < cap) {
    rehash(std::max(kMinCapacity, std::bit_ceil(size_ * 10 / 7 + 1) * 2));
  }
}

void CookieTable::rehash(std::size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  size_ = 0;
  // Top bits of the Fibonacci product pick one of capacity / 16 blocks.
  blockShift_ = 64 - (static_cast<unsigned>(std::countr_zero(capacity)) - 4);
  const std::size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.cookie == 0) continue;
    std::size_t i = home(s.cookie);
    while (slots_[i].cookie != 0)
      i = (i + 1) & mask;
    slots_[i] = s;
    ++size_;
  }
}

}  // namespace waitwatch
