// SPDX-License-Identifier: Apache-2.0
#include "proc/aggregator.hpp"

#include <algorithm>
#include <numeric>

namespace waitwatch {
namespace {
// Linux keeps a socket in TIME_WAIT for exactly TCP_TIMEWAIT_LEN.
constexpr std::int64_t kTimeWaitLengthMs = 60'000;
// Bound on the unsorted uid/cgroup hint lists before they are compacted.
constexpr std::size_t kHintCompactAt = 4096;

template <typename T>
void sortUnique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

template <typename T>
void pushHint(std::vector<T>& v, T value) {
  if (!v.empty() && v.back() == value) return;
  v.push_back(value);
  if (v.size() >= kHintCompactAt) sortUnique(v);
}
}  // namespace

SnapshotAggregator::SnapshotAggregator(AggregatorOptions options) : options_(options) {}

void SnapshotAggregator::begin(TimePoint now, Duration pollInterval, OwnerIndex& owners) {
  owners_ = &owners;
  now_ = now;
  pollInterval_ = pollInterval;
  current_ = kNoIndex;
  setCreatedWindow(pollInterval);
  for (std::uint32_t slot : entrySlot_) {
    if (slot < slotHead_.size()) slotHead_[slot] = kNoIndex;
  }
  namespaces_.clear();
  processes_.clear();
  entrySlot_.clear();
  entryNext_.clear();
  ownerLinks_.clear();
  closeWait_.clear();
  // One allocation for the CLOSE_WAIT records instead of a chain of doublings.
  closeWait_.reserve(lastCloseWait_ + lastCloseWait_ / 8);
  addresses_.clear();
  interner_.clear();
  lastLocal_ = kNoIndex;
  lastRemote_ = kNoIndex;
  lines_.clear();
  closing_.clear();
  owned_.clear();
  pending_.clear();
  listeners_.clear();
  groups_.clear();
  noPermission_ = 0;
  vanished_ = 0;
  hints_.sockets = 0;
  hints_.uids.clear();
  hints_.cgroupIds.clear();
}

void SnapshotAggregator::setMark(Mark& m) {
  m.processes = processes_.size();
  m.closeWait = closeWait_.size();
  m.ownerLinks = ownerLinks_.size();
  m.pending = pending_.size();
  m.lines = lines_.size();
  m.listeners = listeners_.size();
  m.groups = groups_.size();
  m.closing = closing_.size();
  m.owned = owned_.size();
  m.nsStates = namespaces_[current_].states;
  m.timeWaitCreated = namespaces_[current_].timeWaitCreated;
  m.closeWaitMinPages = namespaces_[current_].closeWaitMinPages;
  m.noPermission = noPermission_;
  m.vanished = vanished_;
  m.listenPorts = listenPorts_;
  m.entryStates.clear();
  m.entryKinds.clear();
  m.entryListenPorts.clear();
  for (std::size_t e = nsFirstEntry_; e < processes_.size(); ++e) {
    m.entryStates.push_back(processes_[e].states);
    m.entryKinds.push_back(processes_[e].closeWaitKinds);
    m.entryListenPorts.push_back(processes_[e].listenPorts.size());
  }
}

void SnapshotAggregator::truncateEntries(std::size_t size) {
  while (processes_.size() > size) {
    // Entries are undone newest first, so each is its slot's chain head.
    const std::size_t e = processes_.size() - 1;
    slotHead_[entrySlot_[e]] = entryNext_[e];
    processes_.pop_back();
    entrySlot_.pop_back();
    entryNext_.pop_back();
  }
}

void SnapshotAggregator::rollback(const Mark& m) {
  truncateEntries(m.processes);
  for (std::size_t i = 0; i < m.entryStates.size(); ++i) {
    processes_[nsFirstEntry_ + i].states = m.entryStates[i];
    processes_[nsFirstEntry_ + i].closeWaitKinds = m.entryKinds[i];
    processes_[nsFirstEntry_ + i].listenPorts.resize(m.entryListenPorts[i]);
  }
  closeWait_.resize(m.closeWait);
  ownerLinks_.resize(m.ownerLinks);
  pending_.resize(m.pending);
  lines_.resize(m.lines);
  listeners_.resize(m.listeners);
  groups_.resize(m.groups);
  closing_.resize(m.closing);
  owned_.resize(m.owned);
  namespaces_[current_].states = m.nsStates;
  namespaces_[current_].timeWaitCreated = m.timeWaitCreated;
  namespaces_[current_].closeWaitMinPages = m.closeWaitMinPages;
  noPermission_ = m.noPermission;
  vanished_ = m.vanished;
  listenPorts_ = m.listenPorts;
  serverGroups_.clear();
  clientGroups_.clear();
  for (std::size_t i = nsFirstGroup_; i < groups_.size(); ++i) {
    const TimeWaitGroup& g = groups_[i].group;
    const auto index = static_cast<std::uint32_t>(i);
    if (g.serverSide) {
      serverGroups_.findOrInsert(g.destination, index);
    } else {
      clientGroups_.findOrInsert(ClientKey{g.source, g.destination}, index);
    }
  }
}

void SnapshotAggregator::beginNamespace(NetnsEntry entry) {
  if (current_ != kNoIndex) endNamespace();
  entry.states = StateCounts{};
  entry.timeWaitCreated = 0;
  entry.closeWaitMinPages = 0;
  current_ = static_cast<std::uint32_t>(namespaces_.size());
  namespaces_.push_back(std::move(entry));
  nsFirstEntry_ = processes_.size();
  nsFirstListener_ = listeners_.size();
  nsFirstGroup_ = groups_.size();
  nsFirstClosing_ = closing_.size();
  listenPorts_.reset();
  serverGroups_.clear();
  clientGroups_.clear();
  setMark(namespaceMark_);
  setMark(dumpMark_);
}

void SnapshotAggregator::setCreatedWindow(Duration window) {
  // A TIME_WAIT socket with more than (60 s - window) left entered TIME_WAIT within the
  // window (inet_diag.c, inet_twsk_diag_fill: idiag_expires is tw_timer.expires - jiffies). Both
  // dumps walk the hash in the same order, so a socket's offset into this dump is close to its
  // offset into the last one and the dump's own length cancels out. No socket stays longer
  // than 60 s: a longer window (failed or stalled polls) counts every one, over 60 s.
  window = std::min(window, Duration(kTimeWaitLengthMs));
  createdBaseMs_ = kTimeWaitLengthMs - static_cast<std::int64_t>(window.count());
  createdThresholdMs_ = createdBaseMs_;
  if (current_ != kNoIndex) namespaces_[current_].timeWaitWindow = window;
}

void SnapshotAggregator::widenCreatedWindow(std::uint32_t lateMs) {
  createdThresholdMs_ = createdBaseMs_ - static_cast<std::int64_t>(lateMs);
}

void SnapshotAggregator::beginDump(std::optional<Duration> sinceLastDump) {
  if (current_ == kNoIndex) return;
  flush();  // records of the previous dump are judged by its window
  setCreatedWindow(sinceLastDump.value_or(pollInterval_));
  setMark(dumpMark_);
}

void SnapshotAggregator::restartDump(std::optional<Duration> sinceLastDump) {
  if (current_ == kNoIndex) return;
  setCreatedWindow(sinceLastDump.value_or(pollInterval_));
  ringCount_ = 0;  // records of the abandoned pass
  ringHead_ = 0;
  rollback(dumpMark_);
}

void SnapshotAggregator::abortNamespace() {
  if (current_ == kNoIndex) return;
  ringCount_ = 0;
  ringHead_ = 0;
  rollback(namespaceMark_);
  namespaces_.pop_back();
  current_ = kNoIndex;
}

void SnapshotAggregator::endNamespace() {
  if (current_ == kNoIndex) return;
  flush();
  // Client groups that only counted live connections are not TIME_WAIT groups, unless some of
  // them are CLOSE_WAIT: a leak that holds source ports toward the destination until none is
  // left, as TIME_WAIT does.
  std::size_t write = nsFirstGroup_;
  groupRemap_.assign(groups_.size() - nsFirstGroup_, kNoIndex);
  for (std::size_t read = nsFirstGroup_; read < groups_.size(); ++read) {
    if (groups_[read].group.timeWait == 0 && groups_[read].group.closeWait == 0) continue;
    groupRemap_[read - nsFirstGroup_] = static_cast<std::uint32_t>(write);
    groups_[write] = groups_[read];
    groups_[write].listenerBegin = static_cast<std::uint32_t>(nsFirstListener_);
    groups_[write].listenerEnd = static_cast<std::uint32_t>(listeners_.size());
    ++write;
  }
  groups_.resize(write);
  for (std::size_t i = nsFirstClosing_; i < closing_.size(); ++i) {
    if (closing_[i].group != kNoIndex) {
      closing_[i].group = groupRemap_[closing_[i].group - nsFirstGroup_];
    }
  }
  std::sort(listeners_.begin() + static_cast<std::ptrdiff_t>(nsFirstListener_), listeners_.end(),
            [](const Listener& a, const Listener& b) { return a.local.port < b.local.port; });
  current_ = kNoIndex;
}

std::uint32_t SnapshotAggregator::entryFor(std::uint32_t slot, std::uint32_t netns) {
  if (slot >= slotHead_.size()) slotHead_.resize(std::size_t{slot} + 1, kNoIndex);
  for (std::uint32_t e = slotHead_[slot]; e != kNoIndex; e = entryNext_[e]) {
    if (processes_[e].netns == netns) return e;
  }
  const auto e = static_cast<std::uint32_t>(processes_.size());
  processes_.push_back(
      Entry{.netns = netns, .states = {}, .closeWaitKinds = {}, .listenPorts = {}});
  entrySlot_.push_back(slot);
  entryNext_.push_back(slotHead_[slot]);
  slotHead_[slot] = e;
  return e;
}

SnapshotAggregator::Pending SnapshotAggregator::pendingOf(const SocketRecord& s, CloseWaitKind kind,
                                                          std::uint32_t record,
                                                          std::uint32_t line) const {
  return Pending{s.cookie, s.inode, s.uid, current_, record, line, s.local.port, s.state, kind};
}

void SnapshotAggregator::attribute(std::span<const std::uint32_t> owners, const Pending& p) {
  const std::uint32_t record = p.record;
  const std::uint32_t line = p.line;
  const auto begin = static_cast<std::uint32_t>(ownerLinks_.size());
  const bool links = record != kNoIndex || line != kNoIndex;
  for (std::uint32_t slot : owners) {
    const std::uint32_t e = entryFor(slot, p.netns);
    Entry& entry = processes_[e];
    ++entry.states[p.state];
    if (p.state == TcpState::CloseWait) ++entry.closeWaitKinds[p.kind];
    if (p.state == TcpState::Listen) entry.listenPorts.push_back(p.localPort);
    if (links) ownerLinks_.push_back(e);
    // Of a socket several processes hold, which one will close it is unknown.
    if (options_.keepOwned && owners.size() == 1 && p.state == TcpState::Established) {
      owned_.push_back(OwnedSocket{p.cookie, e});
    }
  }
  const auto count = static_cast<std::uint32_t>(owners.size());
  if (record != kNoIndex) {
    closeWait_[record].ownerBegin = begin;
    closeWait_[record].setOwnerCount(count);
  }
  if (line != kNoIndex) {
    lines_[line].ownerBegin = begin;
    lines_[line].ownerCount = count;
    lines_[line].attribution = Attribution::Owned;
  }
}

void SnapshotAggregator::unattributed(InodeTable::State state, std::uint32_t line) {
  const bool noPermission = state == InodeTable::State::NoPermission;
  ++(noPermission ? noPermission_ : vanished_);
  if (line != kNoIndex) {
    lines_[line].attribution = noPermission ? Attribution::NoPermission : Attribution::Vanished;
  }
}

SnapshotAggregator::GroupAcc& SnapshotAggregator::clientGroup(const IpAddress& source,
                                                              const Endpoint& destination) {
  const auto next = static_cast<std::uint32_t>(groups_.size());
  const auto [index, inserted] = clientGroups_.findOrInsert(ClientKey{source, destination}, next);
  if (inserted) {
    GroupAcc g;
    g.group.netns = current_;
    g.group.serverSide = false;
    g.group.source = source;
    g.group.destination = destination;
    groups_.push_back(g);
  }
  return groups_[index];
}

std::uint32_t SnapshotAggregator::addressIndex(const IpAddress& a, std::uint32_t& last) {
  if (last < addresses_.size() && addresses_[last] == a) return last;
  return last = interner_.intern(a, addresses_);
}

void SnapshotAggregator::addTimeWait(const SocketRecord& s) {
  NetnsEntry& ns = namespaces_[current_];
  const bool created = static_cast<std::int64_t>(s.timerRemainingMs) > createdThresholdMs_;
  if (created) ++ns.timeWaitCreated;
  const IpAddress local = s.local.address.unmapped();
  GroupAcc* g = nullptr;
  if (listenPorts_.test(s.local.port)) {
    const Endpoint key{local, s.local.port};
    const auto next = static_cast<std::uint32_t>(groups_.size());
    const auto [index, inserted] = serverGroups_.findOrInsert(key, next);
    if (inserted) {
      GroupAcc acc;
      acc.group.netns = current_;
      acc.group.serverSide = true;
      acc.group.destination = key;
      groups_.push_back(acc);
    }
    g = &groups_[index];
  } else {
    g = &clientGroup(local, Endpoint{s.remote.address.unmapped(), s.remote.port});
  }
  ++g->group.timeWait;
  if (created) ++g->group.created;
  if (options_.keepClosing) {
    closing_.push_back(
        ClosingSocket{s.cookie, static_cast<std::uint32_t>(g - groups_.data()), created});
  }
}

void SnapshotAggregator::addLive(const SocketRecord& s) {
  TimeWaitGroup& g =
      clientGroup(s.local.address.unmapped(), Endpoint{s.remote.address.unmapped(), s.remote.port})
          .group;
  ++g.live;
  // Only a source port of the ephemeral range is one the leak takes from new connections.
  if (s.state == TcpState::CloseWait && namespaces_[current_].ephemeral.contains(s.local.port)) {
    ++g.closeWait;
  }
}

void SnapshotAggregator::add(const SocketRecord& s) {
  if (current_ == kNoIndex) return;
  if (s.inode != 0) owners_->prefetch(s.inode);
  if (ringCount_ < kLookahead) {
    ring_[(ringHead_ + ringCount_) % kLookahead] = s;
    ++ringCount_;
    return;
  }
  process(ring_[ringHead_]);
  ring_[ringHead_] = s;
  ringHead_ = (ringHead_ + 1) % kLookahead;
}

void SnapshotAggregator::flush() {
  for (; ringCount_ > 0; --ringCount_) {
    process(ring_[ringHead_]);
    ringHead_ = (ringHead_ + 1) % kLookahead;
  }
  ringHead_ = 0;
}

void SnapshotAggregator::process(const SocketRecord& s) {
  const auto stateIndex = static_cast<std::uint8_t>(s.state);
  if (current_ == kNoIndex || !isValidTcpState(stateIndex)) return;
  NetnsEntry& ns = namespaces_[current_];
  ++ns.states.byState[stateIndex];

  std::uint32_t line = kNoIndex;
  if (options_.keepAllSockets) {
    line = static_cast<std::uint32_t>(lines_.size());
    lines_.push_back(SocketLine{s, current_, 0, 0, Attribution::NoOwner});
  }
  if (s.state == TcpState::TimeWait) {
    addTimeWait(s);
    return;
  }
  if (options_.keepClosing && (s.state == TcpState::FinWait1 || s.state == TcpState::FinWait2 ||
                               s.state == TcpState::Closing)) {
    closing_.push_back(ClosingSocket{s.cookie, kNoIndex, false});
  }
  if (s.state == TcpState::Listen) {
    listenPorts_.set(s.local.port);
    listeners_.push_back(
        Listener{Endpoint{s.local.address.unmapped(), s.local.port}, s.inode, s.uid});
  } else if (s.remote.port != 0 && !listenPorts_.test(s.local.port)) {
    addLive(s);  // a client-side connection: it holds a port of the ephemeral range
  }

  const CloseWaitKind kind = closeWaitKind(s.recvQ);
  if (s.state == TcpState::CloseWait) {
    // Each queued buffer is charged in whole pages and holds at least its bytes (the FIN's
    // buffer alone takes one): Recv-Q in pages, rounded up, is what the socket holds at least.
    ns.closeWaitMinPages += (std::uint64_t{s.recvQ} + options_.pageSize - 1) / options_.pageSize;
  }
  std::uint32_t record = kNoIndex;
  if (options_.perSocketStates & stateBit(s.state)) {
    record = static_cast<std::uint32_t>(closeWait_.size());
    closeWait_.push_back(
        CloseWaitSocket{.cookie = s.cookie,
                        .inode = s.inode,
                        .uid = s.uid,
                        .netns = current_,
                        .localAddress = addressIndex(s.local.address, lastLocal_),
                        .remoteAddress = addressIndex(s.remote.address, lastRemote_),
                        .localPort = s.local.port,
                        .remotePort = s.remote.port});
    closeWait_.back().setKind(kind);
  }
  // No inode: kernel-held (orphaned after close(), or not yet accept()ed).
  if (s.inode == 0) return;

  const InodeTable::View v = owners_->lookup(s.inode);
  switch (v.state) {
    case InodeTable::State::Owned:
      attribute(v.owners(), pendingOf(s, kind, record, line));
      break;
    case InodeTable::State::Pending:
      pending_.push_back(pendingOf(s, kind, record, line));
      pushHint(hints_.uids, s.uid);
      if (s.hasCgroupId) pushHint(hints_.cgroupIds, s.cgroupId);
      break;
    case InodeTable::State::Vanished:
      // A live socket nobody was found holding: a later full walk may still find its holder,
      // so it is settled at the end like a pending one (without widening the search).
      pending_.push_back(pendingOf(s, kind, record, line));
      break;
    case InodeTable::State::NoPermission:
      unattributed(v.state, line);
      break;
  }
}

const PendingHints& SnapshotAggregator::pendingHints() {
  sortUnique(hints_.uids);
  sortUnique(hints_.cgroupIds);
  hints_.sockets = pending_.size();  // includes earlier polls' unresolved ones
  return hints_;
}

std::uint32_t SnapshotAggregator::listenerEntry(const GroupAcc& g) {
  const auto first = listeners_.begin() + g.listenerBegin;
  const auto last = listeners_.begin() + g.listenerEnd;
  const std::uint16_t port = g.group.destination.port;
  auto it = std::lower_bound(first, last, port,
                             [](const Listener& l, std::uint16_t p) { return l.local.port < p; });
  // Prefer the listener bound to this very address, then a wildcard one, then any.
  const Listener* best = nullptr;
  int bestRank = 3;
  for (; it != last && it->local.port == port; ++it) {
    int rank = 2;
    if (it->local.address == g.group.destination.address) {
      rank = 0;
    } else if (it->local.address.isUnspecified()) {
      rank = 1;
    }
    if (rank < bestRank && it->inode != 0) {
      best = &*it;
      bestRank = rank;
    }
  }
  if (best == nullptr) return kNoIndex;
  const InodeTable::View v = owners_->settle(best->inode, best->uid);
  std::uint32_t chosen = kNoIndex;
  ProcessKey chosenKey;
  for (std::uint32_t slot : v.owners()) {
    const std::uint32_t e = entryFor(slot, g.group.netns);
    const ProcessKey key = owners_->process(slot).key;
    if (chosen == kNoIndex || key < chosenKey) {
      chosen = e;
      chosenKey = key;
    }
  }
  return chosen;
}

void SnapshotAggregator::finish(Snapshot& out) {
  // Sockets whose owner was unknown during the dump: the resolver has searched since.
  for (const Pending& p : pending_) {
    const InodeTable::View v = owners_->settle(p.inode, p.uid);
    if (v.state == InodeTable::State::Owned) {
      attribute(v.owners(), p);
    } else {
      unattributed(v.state, p.line);
    }
  }

  out.timeWait.clear();
  out.timeWait.reserve(groups_.size());
  for (GroupAcc& g : groups_) {
    if (g.group.serverSide) {
      g.group.listener = listenerEntry(g);
    } else {
      const std::uint32_t usable = namespaces_[g.group.netns].ephemeral.usableCount();
      g.group.portUsageRatio = usable == 0 ? 0.0
                                           : static_cast<double>(g.group.timeWait + g.group.live) /
                                                 static_cast<double>(usable);
    }
  }

  // Processes in a stable order: namespace, then pid (then start time).
  std::vector<std::uint32_t> order(processes_.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (processes_[a].netns != processes_[b].netns) {
      return processes_[a].netns < processes_[b].netns;
    }
    return owners_->process(entrySlot_[a]).key < owners_->process(entrySlot_[b]).key;
  });
  std::vector<std::uint32_t> newIndex(processes_.size());
  out.processes.clear();
  out.processes.reserve(processes_.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) {
    newIndex[order[i]] = i;
    Entry& e = processes_[order[i]];
    std::sort(e.listenPorts.begin(), e.listenPorts.end());
    e.listenPorts.erase(std::unique(e.listenPorts.begin(), e.listenPorts.end()),
                        e.listenPorts.end());
    out.processes.push_back(ProcessEntry{.info = owners_->process(entrySlot_[order[i]]),
                                         .netns = e.netns,
                                         .states = e.states,
                                         .closeWaitKinds = e.closeWaitKinds,
                                         .listenPorts = std::move(e.listenPorts),
                                         .openFds = 0,
                                         .maxFds = 0,
                                         .fdForecast = std::nullopt});
  }
  for (std::uint32_t& link : ownerLinks_)
    link = newIndex[link];
  for (OwnedSocket& o : owned_)
    o.process = newIndex[o.process];
  for (GroupAcc& g : groups_) {
    if (g.group.listener != kNoIndex) g.group.listener = newIndex[g.group.listener];
  }
  std::vector<std::uint32_t> groupOrder(groups_.size());
  std::iota(groupOrder.begin(), groupOrder.end(), 0u);
  std::sort(groupOrder.begin(), groupOrder.end(), [&](std::uint32_t x, std::uint32_t y) {
    const TimeWaitGroup& a = groups_[x].group;
    const TimeWaitGroup& b = groups_[y].group;
    if (a.netns != b.netns) return a.netns < b.netns;
    if (a.timeWait != b.timeWait) return a.timeWait > b.timeWait;
    if (a.serverSide != b.serverSide) return a.serverSide;
    if (a.destination != b.destination) return a.destination < b.destination;
    return a.source < b.source;
  });
  std::vector<std::uint32_t> newGroup(groups_.size());
  for (std::uint32_t i = 0; i < groupOrder.size(); ++i) {
    newGroup[groupOrder[i]] = i;
    out.timeWait.push_back(groups_[groupOrder[i]].group);
  }
  for (ClosingSocket& c : closing_) {
    if (c.group != kNoIndex) c.group = newGroup[c.group];
  }

  out.time = now_;
  out.pollInterval = pollInterval_;
  out.namespaces.swap(namespaces_);
  out.ownerLinks.swap(ownerLinks_);
  out.closeWait.swap(closeWait_);
  out.addresses.swap(addresses_);
  out.unattributedNoPermission = noPermission_;
  out.unattributedVanished = vanished_;
  lastCloseWait_ = out.closeWait.size();
  // processes_ still holds entries with moved-from port lists; the next begin() clears it.
}

}  // namespace waitwatch
