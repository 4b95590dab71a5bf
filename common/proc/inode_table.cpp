// SPDX-License-Identifier: Apache-2.0
#include "proc/inode_table.hpp"

#include <algorithm>

namespace waitwatch {
std::size_t InodeTable::memoryBytes() const {
  std::size_t bytes = table_.memoryBytes();
  bytes += lists_.capacity() * sizeof(lists_[0]) + freeLists_.capacity() * sizeof(std::uint32_t);
  for (const auto& l : lists_)
    bytes += l.capacity() * sizeof(std::uint32_t);
  return bytes;
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
  auto [slot, inserted] = table_.findOrInsert(inode);
  if (inserted) {
    slot->value = kPending | seenBit | kConfirmedBit;
    ++unresolved_[static_cast<std::size_t>(State::Pending)];
  } else {
    slot->value = (slot->value & ~kSeenBit) | seenBit | kConfirmedBit;
  }
  return view(slot->value);
}

std::optional<InodeTable::View> InodeTable::find(std::uint32_t inode) const {
  if (inode == 0) return std::nullopt;
  const Slot* slot = table_.find(inode);
  if (slot == nullptr) return std::nullopt;
  return view(slot->value);
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
  Slot* entry = table_.find(inode);
  if (entry == nullptr) {
    // Unseen until the dump confirms it: sockets of other kinds (unix, UDP, other namespaces)
    // a walk finds are swept at the end of the poll.
    if (insertIfAbsent) table_.findOrInsert(inode).first->value = slot | ((parity_ ^ 1u) << 31);
    return;
  }
  std::uint32_t& value = entry->value;
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
  Slot* entry = table_.find(inode);
  if (entry == nullptr) return;
  std::uint32_t& value = entry->value;
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
  if (payload == slot) table_.erase(entry);
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
  Slot* entry = table_.find(inode);
  if (entry == nullptr) return;
  std::uint32_t& value = entry->value;
  if ((value & kMultiBit) || (value & kPayloadMask) != kPending) return;
  const std::uint32_t payload = state == State::NoPermission ? kNoPermission : kVanished;
  countOut(value);
  value = (value & kFlagBits) | payload;
  ++unresolved_[static_cast<std::size_t>(state == State::NoPermission ? state : State::Vanished)];
}

}  // namespace waitwatch
