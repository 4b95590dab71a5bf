// SPDX-License-Identifier: Apache-2.0
#include "proc/inode_table.hpp"

#include <algorithm>
#include <bit>

namespace waitwatch {
namespace {
constexpr std::size_t kMinCapacity = 1024;
}

InodeTable::InodeTable() {
  rehash(kMinCapacity);
}

std::size_t InodeTable::memoryBytes() const {
  std::size_t bytes = slots_.capacity() * sizeof(Slot) + dead_.capacity() * sizeof(std::uint32_t);
  bytes += lists_.capacity() * sizeof(lists_[0]) + freeLists_.capacity() * sizeof(std::uint32_t);
  for (const auto& l : lists_)
    bytes += l.capacity() * sizeof(std::uint32_t);
  return bytes;
}

std::size_t InodeTable::findSlot(std::uint32_t key) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(key);; i = (i + 1) & mask) {
    if (slots_[i].key == key) return i;
    if (slots_[i].key == 0) return npos;
  }
}

std::size_t InodeTable::insertSlot(std::uint32_t key, std::uint32_t value) {
  // Grows past 80% load. Lookups are hits (~3 probes, one cache line at that load); a lower
  // bound doubled the table at 1M sockets (700k inodes plus the first poll's other sockets
  // crossed 70% of 2^20) to 16 MiB, and the larger table was slower, not faster (bench/).
  if ((size_ + 1) * 5 > slots_.size() * 4) rehash(slots_.size() * 2);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = home(key);
  while (slots_[i].key != 0)
    i = (i + 1) & mask;
  slots_[i] = Slot{key, value};
  ++size_;
  return i;
}

void InodeTable::eraseAt(std::size_t pos) {
  // Backward-shift deletion: no tombstones, so probes stay short after heavy churn.
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = pos;
  for (std::size_t j = (pos + 1) & mask; slots_[j].key != 0; j = (j + 1) & mask) {
    const std::size_t h = home(slots_[j].key);
    if (((j - h) & mask) >= ((j - hole) & mask)) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --size_;
}

void InodeTable::rehash(std::size_t newCapacity) {
  newCapacity = std::bit_ceil(std::max(newCapacity, kMinCapacity));
  std::vector<Slot> old(newCapacity);
  old.swap(slots_);
  shift_ = 64u - static_cast<unsigned>(std::countr_zero(newCapacity));
  size_ = 0;
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.key == 0) continue;
    std::size_t i = home(s.key);
    while (slots_[i].key != 0)
      i = (i + 1) & mask;
    slots_[i] = s;
    ++size_;
  }
}

void InodeTable::maybeShrink() {
  // Give memory back after a spike (a burst of short-lived sockets), with hysteresis.
  if (slots_.size() > kMinCapacity && size_ * 8 < slots_.size()) rehash(size_ * 2);
  if (dead_.capacity() > 4 * kMinCapacity && dead_.size() * 4 < dead_.capacity()) {
    std::vector<std::uint32_t>().swap(dead_);
  }
}

InodeTable::View InodeTable::view(std::uint32_t value) const {
  const std::uint32_t payload = value & kPayloadMask;
  if (value & kMultiBit) return View{State::Owned, 0, lists_[payload]};
  switch (payload) {
    case kPending:
      return View{State::Pending, 0, {}};
    case kNoPermission:
      return View{State::NoPermission, 0, {}};
    case kVanished:
      return View{State::Vanished, 0, {}};
    default:
      return View{State::Owned, payload, {}};
  }
}

InodeTable::View InodeTable::touch(std::uint32_t inode) {
  if (inode == 0) return View{State::Vanished, 0, {}};
  const std::uint32_t seenBit = parity_ << 31;
  std::size_t pos = findSlot(inode);
  if (pos == npos) {
    pos = insertSlot(inode, kPending | seenBit | kConfirmedBit);
    ++unresolved_[static_cast<std::size_t>(State::Pending)];
  } else {
    slots_[pos].value = (slots_[pos].value & ~kSeenBit) | seenBit | kConfirmedBit;
  }
  return view(slots_[pos].value);
}

std::optional<InodeTable::View> InodeTable::find(std::uint32_t inode) const {
  if (inode == 0) return std::nullopt;
  const std::size_t pos = findSlot(inode);
  if (pos == npos) return std::nullopt;
  return view(slots_[pos].value);
}

std::uint32_t InodeTable::newList() {
  if (!freeLists_.empty()) {
    const std::uint32_t idx = freeLists_.back();
    freeLists_.pop_back();
    return idx;
  }
  lists_.emplace_back();
  return static_cast<std::uint32_t>(lists_.size() - 1);
}

void InodeTable::freeList(std::uint32_t value) {
  if (!(value & kMultiBit)) return;
  const std::uint32_t idx = value & kPayloadMask;
  lists_[idx].clear();
  freeLists_.push_back(idx);
}

void InodeTable::addOwner(std::uint32_t inode, std::uint32_t slot, bool insertIfAbsent) {
  if (inode == 0 || slot > kMaxSlot) return;
  const std::size_t pos = findSlot(inode);
  if (pos == npos) {
    // Unseen until the dump confirms it: sockets of other kinds (unix, UDP, other namespaces)
    // a walk finds are swept at the end of the poll.
    if (insertIfAbsent) insertSlot(inode, slot | ((parity_ ^ 1u) << 31));
    return;
  }
  std::uint32_t& value = slots_[pos].value;
  const std::uint32_t flags = value & kFlagBits;
  const std::uint32_t payload = value & kPayloadMask;
  if (value & kMultiBit) {
    auto& list = lists_[payload];
    if (std::find(list.begin(), list.end(), slot) == list.end()) list.push_back(slot);
    return;
  }
  if (payload == kPending || payload == kNoPermission || payload == kVanished) {
    countOut(value);
    value = flags | slot;
  } else if (payload != slot) {
    const std::uint32_t idx = newList();
    lists_[idx].assign({payload, slot});
    value = flags | kMultiBit | idx;
  }
}

void InodeTable::removeOwner(std::uint32_t inode, std::uint32_t slot) {
  const std::size_t pos = findSlot(inode);
  if (pos == npos) return;
  std::uint32_t& value = slots_[pos].value;
  const std::uint32_t payload = value & kPayloadMask;
  if (value & kMultiBit) {
    auto& list = lists_[payload];
    const auto it = std::find(list.begin(), list.end(), slot);
    if (it == list.end()) return;
    list.erase(it);
    if (list.size() == 1) {
      const std::uint32_t last = list.front();
      freeList(value);
      value = (value & kFlagBits) | last;
    }
    return;
  }
  if (payload == slot) eraseAt(pos);
}

bool InodeTable::hasOwner(std::uint32_t inode, std::uint32_t slot) const {
  const auto v = find(inode);
  if (!v) return false;
  for (std::uint32_t s : v->owners()) {
    if (s == slot) return true;
  }
  return false;
}

void InodeTable::setUnresolved(std::uint32_t inode, State state) {
  const std::size_t pos = findSlot(inode);
  if (pos == npos) return;
  std::uint32_t& value = slots_[pos].value;
  if ((value & kMultiBit) || (value & kPayloadMask) != kPending) return;
  const std::uint32_t payload = state == State::NoPermission ? kNoPermission : kVanished;
  countOut(value);
  value = (value & kFlagBits) | payload;
  ++unresolved_[static_cast<std::size_t>(state == State::NoPermission ? state : State::Vanished)];
}

}  // namespace waitwatch
