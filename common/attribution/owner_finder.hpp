// SPDX-License-Identifier: Apache-2.0
#pragma once
// How a Collector finds the processes that hold the sockets it dumps: a strategy it is given.
//   - ProcessResolver (process_resolver.hpp): a cache kept across polls, so that a poll reads
//     only what changed. The daemon and `waitwatch --watch`.
//   - OneShotOwners (one_shot_owners.hpp): one look with nothing cached, as fast as the
//     machine allows: the BPF socket-fd scan, or every process's fds on worker threads while
//     the dumps run. A one-shot `waitwatch`.
// During the dumps every socket is looked up (OwnerIndex); after them resolve() finds what the
// dumps left pending, and the aggregators settle each socket through it.
#include <optional>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "core/process.hpp"
#include "core/result.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch {

struct ResolverStats {
  std::uint64_t processes = 0;            // in /proc at the last listing
  std::uint64_t walks = 0;                // fd directories walked this poll
  std::uint64_t fdsRead = 0;              // fd links read this poll
  std::uint64_t changeChecks = 0;         // fd directories stat()ed this poll
  std::uint64_t pending = 0;              // inodes unknown after the dump this poll
  std::uint64_t unresolved = 0;           // of those, still unknown after the search
  bool fullWalk = false;                  // this poll ran a full walk
  std::uint64_t fullWalks = 0;            // since start
  std::uint64_t unreadableProcesses = 0;  // fd directory not readable (EACCES/EPERM)
  std::size_t cachedInodes = 0;
  std::size_t cacheBytes = 0;
};

class OwnerFinder : public OwnerIndex {
 public:
  OwnerFinder() = default;
  OwnerFinder(const OwnerFinder&) = delete;
  OwnerFinder& operator=(const OwnerFinder&) = delete;
  virtual ~OwnerFinder() = default;

  // Before the dumps. An Error means no owner can be found at all (/proc unreadable).
  virtual Result<void> beginPoll(TimePoint now) = 0;
  // After the dumps, before the aggregators finish: finds the owners of what they left
  // pending (`hints` narrow the search).
  virtual void resolve(const PendingHints& hints, TimePoint now) = 0;
  // After every aggregator finished.
  virtual void endPoll() {}
  // Fills what is known of a process that may have exited, from its key and cgroup v2 id (0 if
  // none), into `info`, whose key, comm and uid are set: everything when the finder knows the
  // process, else its user name and, where the cgroup still exists, unit and container. False
  // when neither was found.
  virtual bool describe(const ProcessKey& key, std::uint64_t cgroupId, ProcessInfo& info) {
    (void)key;
    (void)cgroupId;
    (void)info;
    return false;
  }
  // Non-empty once, after the first poll that met processes whose fds may not be read: what
  // could not be read, and what would help.
  virtual std::optional<std::string> takePermissionWarning() = 0;
  // Problems of the last poll besides the sockets' own (e.g. /proc could not be listed).
  [[nodiscard]] virtual std::vector<std::string> problems() const { return {}; }
  [[nodiscard]] virtual const ResolverStats& stats() const = 0;
};

}  // namespace waitwatch
