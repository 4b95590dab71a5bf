// SPDX-License-Identifier: Apache-2.0
#pragma once
// Socket inode -> owning processes: the attribution cache, as a flat open-addressing table.
//
// One 8-byte slot per inode (key, value), linear probing, no allocation on lookups: at a
// million sockets the dump looks up every inode once per poll. Owners are "process slots",
// small integers the resolver hands out; a socket shared by several processes keeps its owner
// list in a side table (sharing is the exception). Each poll flips a "seen" parity: entries the
// dump did not touch are swept at the end of the poll, so memory follows the live sockets.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/flat_table.hpp"

namespace waitwatch {

class InodeTable {
 public:
  enum class State : std::uint8_t {
    Owned,         // held by the listed processes
    Pending,       // seen in this poll's dump, owner not known yet
    NoPermission,  // searched: the holder is among processes whose fds we may not read
    Vanished,      // searched: no process holds it any more (it closed between dump and walk)
  };
  // Keep a View in a variable while using owners(): a single owner is stored in the View.
  struct View {
    State state = State::Pending;
    std::uint32_t single = 0;
    std::span<const std::uint32_t> list;  // several owners; valid until the table changes
    [[nodiscard]] std::span<const std::uint32_t> owners() const {
      if (state != State::Owned) return {};
      return list.empty() ? std::span<const std::uint32_t>(&single, 1) : list;
    }
  };
  static constexpr std::uint32_t kMaxSlot = (1u << 29) - 8;

  // Starts a poll: entries touched from now on are "seen".
  void beginPoll() { parity_ ^= 1u; }

  // Hot path, once per socket of the dump: marks `inode` seen and returns its entry, inserting
  // a Pending one when the inode is new.
  View touch(std::uint32_t inode);

  // Hints the CPU to fetch `inode`'s slot: a touch() a few sockets later then finds it in cache
  // instead of waiting on memory (the table outgrows the caches at a million sockets).
  void prefetch(std::uint32_t inode) const { table_.prefetchForWrite(inode); }

  // Lookup without side effects.
  [[nodiscard]] std::optional<View> find(std::uint32_t inode) const;

  // Records that process `slot` holds `inode`. An absent inode is inserted (unseen, so the
  // sweep drops it unless the dump confirms it) only when `insertIfAbsent`; otherwise the claim
  // is ignored, because only sockets the dump showed matter.
  void addOwner(std::uint32_t inode, std::uint32_t slot, bool insertIfAbsent);
  // Removes one claim; the entry goes when its last owner does, so the next dump sees the inode
  // as unknown and looks for its new holder.
  void removeOwner(std::uint32_t inode, std::uint32_t slot);
  [[nodiscard]] bool hasOwner(std::uint32_t inode, std::uint32_t slot) const;

  // Marks a Pending inode as searched and not found (NoPermission or Vanished).
  void setUnresolved(std::uint32_t inode, State state);

  // Drops entries not seen since beginPoll() and Pending entries nobody settled. `onDrop` is
  // called with the inode, its owners and whether any dump ever showed it (a socket that went
  // away) before each owned entry goes; a walk's claim no dump confirmed (a unix or UDP socket,
  // or one of a namespace not dumped) was never a TCP socket of the dump. `onDrop` runs
  // inside the table's pass and must not change the table.
  template <typename Fn>
  void sweep(Fn&& onDrop);

  [[nodiscard]] std::size_t size() const { return table_.size(); }
  // Entries in `state` (Pending, NoPermission, Vanished; Owned is the rest).
  [[nodiscard]] std::size_t count(State state) const {
    if (state == State::Owned) {
      return table_.size() - unresolved_[1] - unresolved_[2] - unresolved_[3];
    }
    return unresolved_[static_cast<std::size_t>(state)];
  }
  [[nodiscard]] std::size_t capacity() const { return table_.capacity(); }
  [[nodiscard]] std::size_t memoryBytes() const;

 private:
  static constexpr std::uint32_t kSeenBit = 1u << 31;
  static constexpr std::uint32_t kMultiBit = 1u << 30;
  static constexpr std::uint32_t kConfirmedBit = 1u << 29;  // some dump showed the inode
  static constexpr std::uint32_t kFlagBits = kSeenBit | kConfirmedBit;
  static constexpr std::uint32_t kPayloadMask = kConfirmedBit - 1;
  static constexpr std::uint32_t kPending = kPayloadMask;
  static constexpr std::uint32_t kNoPermission = kPayloadMask - 1;
  static constexpr std::uint32_t kVanished = kPayloadMask - 2;

  // {inode, value}; inode 0 = empty (the kernel never reports inode 0 as held). Lookups are
  // hits (~3 probes, one cache line at 80% load); a lower bound doubled the table at 1M
  // sockets (700k inodes plus the first poll's other sockets crossed 70% of 2^20) to 16 MiB,
  // and the larger table was slower, not faster (bench/).
  using Policy = IntegerKeyPolicy<std::uint32_t, std::uint32_t, 80>;
  using Slot = Policy::Slot;

  [[nodiscard]] View view(std::uint32_t value) const;
  [[nodiscard]] bool seen(std::uint32_t value) const { return (value >> 31) == parity_; }
  void freeList(std::uint32_t value);
  void countOut(std::uint32_t value) {
    const View v = view(value);
    if (v.state != State::Owned) --unresolved_[static_cast<std::size_t>(v.state)];
  }
  std::uint32_t newList();

  FlatTable<Policy> table_{1024};
  std::uint32_t parity_ = 0;
  std::size_t unresolved_[4] = {};  // by State; [0] unused
  std::vector<std::vector<std::uint32_t>> lists_;
  std::vector<std::uint32_t> freeLists_;
};

template <typename Fn>
void InodeTable::sweep(Fn&& onDrop) {
  table_.sweep([&](const Slot& s) {
    const std::uint32_t value = s.value;
    const std::uint32_t payload = value & kPayloadMask;
    if (seen(value) && (payload != kPending || (value & kMultiBit))) return false;
    const View v = view(value);
    if (v.state == State::Owned) onDrop(s.key, v.owners(), (value & kConfirmedBit) != 0);
    countOut(value);
    freeList(value);
    return true;
  });
}

}  // namespace waitwatch
