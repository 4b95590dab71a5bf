// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/process.hpp"
#include "proc/aggregator.hpp"
#include "proc/inode_table.hpp"

namespace waitwatch::testing {

// The aggregator's owner questions answered from a real InodeTable; "late" owners are found
// only after the dump, as the resolver's /proc search would.
class TableOwners final : public OwnerIndex {
 public:
  InodeTable table;
  std::vector<ProcessInfo> infos;
  std::map<std::uint32_t, std::vector<std::uint32_t>> late;  // inode -> slots found after the dump
  std::set<std::uint32_t> hiddenUids;                        // uids whose processes we may not read

  std::uint32_t addProcess(std::int32_t pid, std::string comm) {
    ProcessInfo p;
    p.key = ProcessKey{pid, 1000u + static_cast<std::uint64_t>(pid)};
    p.comm = std::move(comm);
    infos.push_back(p);
    return static_cast<std::uint32_t>(infos.size() - 1);
  }
  void own(std::uint32_t inode, std::uint32_t slot) { table.addOwner(inode, slot, true); }

  InodeTable::View lookup(std::uint32_t inode) override { return table.touch(inode); }
  InodeTable::View settle(std::uint32_t inode, std::uint32_t uid) override {
    if (auto it = late.find(inode); it != late.end()) {
      for (std::uint32_t s : it->second)
        table.addOwner(inode, s, false);
    }
    auto v = table.find(inode);
    if (v && v->state != InodeTable::State::Pending) return *v;
    const auto state =
        hiddenUids.count(uid) ? InodeTable::State::NoPermission : InodeTable::State::Vanished;
    table.setUnresolved(inode, state);
    return InodeTable::View{state, 0, {}};
  }
  const ProcessInfo& process(std::uint32_t slot) override { return infos[slot]; }
};

}  // namespace waitwatch::testing
