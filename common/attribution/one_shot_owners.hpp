// SPDX-License-Identifier: Apache-2.0
#pragma once
// The owners of a one-shot look at the host, with no cache to lean on. During the dumps every
// socket is Pending; after them, resolve() finds the holders. Two ways:
// - BPF (where the task_file iterator loads: root, or CAP_BPF + CAP_PERFMON, and a kernel with
//   BTF): a worker thread loads the program and scans (one kernel pass lists every socket fd of
//   every process) while the caller dumps, then takes in its claims and the facts of the
//   processes it found (stat, status, exe, cgroup) until the dumps end; after them, only those
//   holding a socket the dumps showed, and their cmdline and user name. No readlink per fd.
// - /proc: every process's fds read once, on worker threads, while the caller dumps; then the
//   processes that changed meanwhile once more. Also when BPF cannot load or its scan fails.
// Each beginPoll() starts afresh: nothing is kept from one look to the next.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attribution/owner_finder.hpp"

namespace waitwatch {

struct OneShotOwnersOptions {
  std::string procRoot = "/proc";
  // Try the BPF scan first. Its pids are those of the caller's pid namespace: only for a
  // procRoot that is that namespace's /proc.
  bool bpf = true;
  // The scan program a running waitwatchd pinned, where there is one, instead of a load.
  bool reusePinned = false;
  unsigned threads = 1;  // fd-walking threads of the /proc walk
  // The scan's claims are taken in on its thread while the socket walk goes on, and after the
  // walk only those on the sockets it saw. Tests: how many of the scan's processes its thread
  // takes in, however soon or late the walk ends (the answer is the same whatever the split).
  std::optional<std::size_t> claimAheadProcesses{};
};

class OneShotRun;

class OneShotOwners final : public OwnerFinder {
 public:
  explicit OneShotOwners(OneShotOwnersOptions options);
  ~OneShotOwners() override;

  Result<void> beginPoll(TimePoint now) override;
  InodeTable::View lookup(std::uint32_t inode) override;
  void resolve(const PendingHints& hints, TimePoint now) override;
  InodeTable::View settle(std::uint32_t inode, std::uint32_t uid) override;
  const ProcessInfo& process(std::uint32_t slot) override;
  std::optional<std::string> takePermissionWarning() override;
  [[nodiscard]] std::vector<std::string> problems() const override;
  [[nodiscard]] const ResolverStats& stats() const override { return stats_; }

  // Whether the last look's owners came from the BPF scan (else from walking /proc).
  [[nodiscard]] bool usedBpf() const;
  // Whether that scan's program was one a running waitwatchd pinned.
  [[nodiscard]] bool reusedPinned() const;

 private:
  OneShotOwnersOptions options_;
  std::unique_ptr<OneShotRun> run_;
  bool warned_ = false;
  ResolverStats stats_;
};

}  // namespace waitwatch
