// SPDX-License-Identifier: Apache-2.0
#pragma once
// Who closed each connection first, by socket cookie, from the close until its TIME_WAIT socket
// is gone. The side that closes first ends in TIME_WAIT, and the kernel's timewait socket keeps
// the cookie of the socket it replaces (net/ipv4/inet_timewait_sock.c, inet_twsk_alloc()), so a
// TIME_WAIT socket in a dump is charged to whoever the ledger holds for its cookie. Two sources:
//   - recordClose(): an active close as the kernel program saw it (the task that called close()
//     or shutdown() is the closer). Authoritative, and it covers connections shorter than a poll.
//   - rememberOwner(): without the program, the sole owner of a live connection in this poll's
//     dump. Its TIME_WAIT successor is charged to that owner: only connections that lived
//     through a poll, and never one with several holders (which of them closed it is unknown).
// Anything else stays unknown: a closer is never guessed. Pure: no syscalls, no clock.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/cookie_table.hpp"
#include "core/process.hpp"

namespace waitwatch {

inline constexpr std::uint32_t kUnknownCloser = 0xFFFF'FFFFu;

class CloserLedger {
 public:
  // Starts a poll that will look up about `expected` cookies.
  void beginPoll(std::size_t expected);

  // The closer id of a process, the same for every call with the same key and comm while the
  // ledger holds a socket of it; `.second` is true when new (fill its info through closer()).
  std::pair<std::uint32_t, bool> intern(const ProcessKey& key, const std::string& comm);
  [[nodiscard]] ProcessInfo& closer(std::uint32_t id) { return closers_[id].info; }
  [[nodiscard]] const ProcessInfo& closer(std::uint32_t id) const { return closers_[id].info; }

  // An active close of `cookie` by closer `id`. Kept for this poll and the next even if no dump
  // shows the socket (a close between the dump and the program's records being read).
  void recordClose(std::uint64_t cookie, std::uint32_t id);
  // `cookie` is a live connection held by closer `id` alone. A recorded close is not replaced.
  void rememberOwner(std::uint64_t cookie, std::uint32_t id);
  // A socket of this poll's dump that may be or become TIME_WAIT (FIN_WAIT1, FIN_WAIT2,
  // CLOSING, TIME_WAIT): its closer, or kUnknownCloser. Keeps its entry for the next poll.
  std::uint32_t closerOf(std::uint64_t cookie);
  // Forgets the sockets no call named in this poll (but fresh records) and the closers that
  // no remaining socket names.
  void endPoll();

  [[nodiscard]] std::size_t sockets() const { return table_.size(); }
  [[nodiscard]] std::size_t closers() const { return closers_.size() - free_.size(); }
  // One more than the largest closer id in use.
  [[nodiscard]] std::size_t closerSlots() const { return closers_.size(); }
  [[nodiscard]] std::size_t memoryBytes() const { return table_.memoryBytes(); }

 private:
  struct Closer {
    ProcessInfo info;
    std::uint64_t usedPoll = 0;
    bool live = false;
  };
  // A table value: closer id << 32 | recorded << 31 | the recording poll's low 31 bits.
  static constexpr std::uint64_t kRecorded = std::uint64_t{1} << 31;
  static constexpr std::uint64_t kPollMask = kRecorded - 1;
  [[nodiscard]] std::uint64_t recorded(std::uint32_t id) const {
    return (std::uint64_t{id} << 32) | kRecorded | (poll_ & kPollMask);
  }
  static std::uint64_t owned(std::uint32_t id) { return std::uint64_t{id} << 32; }
  static std::uint32_t idOf(std::uint64_t value) { return static_cast<std::uint32_t>(value >> 32); }
  void use(std::uint32_t id);

  CookieTable table_;
  std::vector<Closer> closers_;
  std::vector<std::uint32_t> free_;
  std::map<std::pair<ProcessKey, std::string>, std::uint32_t> byKey_;
  std::uint64_t poll_ = 0;
};

}  // namespace waitwatch
