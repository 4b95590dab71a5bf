// SPDX-License-Identifier: Apache-2.0
#include "proc/closer_ledger.hpp"

namespace waitwatch {

void CloserLedger::beginPoll(std::size_t expected) {
  ++poll_;
  table_.beginPoll(expected);
}

std::pair<std::uint32_t, bool> CloserLedger::intern(const ProcessKey& key,
                                                    const std::string& comm) {
  auto [it, inserted] = byKey_.try_emplace(std::make_pair(key, comm), 0u);
  if (!inserted) {
    use(it->second);
    return {it->second, false};
  }
  std::uint32_t id = 0;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(closers_.size());
    closers_.emplace_back();
  }
  it->second = id;
  Closer& c = closers_[id];
  c.info = ProcessInfo{};
  c.info.key = key;
  c.info.comm = comm;
  c.live = true;
  use(id);
  return {id, true};
}

void CloserLedger::use(std::uint32_t id) {
  if (id < closers_.size()) closers_[id].usedPoll = poll_;
}

void CloserLedger::recordClose(std::uint64_t cookie, std::uint32_t id) {
  use(id);
  table_.set(cookie, recorded(id));
}

void CloserLedger::rememberOwner(std::uint64_t cookie, std::uint32_t id) {
  use(id);
  const std::uint64_t v = table_.touch(cookie, owned(id));
  if ((v & kRecorded) != 0) {
    use(idOf(v));  // the recorded closer stays: its entry lives on
  } else if (idOf(v) != id) {
    // The holder of a live socket can change (fd passing, a fork whose parent closed its copy).
    table_.set(cookie, owned(id));
  }
}

std::uint32_t CloserLedger::closerOf(std::uint64_t cookie) {
  const auto v = table_.mark(cookie);
  if (!v) return kUnknownCloser;
  use(idOf(*v));
  return idOf(*v);
}

void CloserLedger::endPoll() {
  // A close recorded in this poll or the last whose socket no dump showed yet: the dump may
  // have passed its hash bucket before the close.
  table_.endPoll([this](std::uint64_t v) {
    const bool fresh = (v & kRecorded) != 0 && ((poll_ - (v & kPollMask)) & kPollMask) <= 1;
    if (fresh) use(idOf(v));
    return fresh;
  });
  for (std::uint32_t id = 0; id < closers_.size(); ++id) {
    Closer& c = closers_[id];
    if (!c.live || c.usedPoll == poll_) continue;
    byKey_.erase(std::make_pair(c.info.key, c.info.comm));
    c.live = false;
    c.info = ProcessInfo{};
    free_.push_back(id);
  }
}

}  // namespace waitwatch
