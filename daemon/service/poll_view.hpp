// SPDX-License-Identifier: Apache-2.0
#pragma once
// What one poll publishes for readers on other threads (scrapes, the JSON API): an immutable
// value, swapped in whole after each poll, so a reader always sees one poll and never waits for
// one.
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "core/snapshot.hpp"
#include "rules/alert.hpp"
#include "rules/engine.hpp"

namespace waitwatch {

// The labels of a TIME_WAIT closer's series: who closed the connections, and where. `container`
// is ContainerInfo::labelName(), `unit` unitLabel()'s (service/decisions.hpp), pod and namespace
// a Kubernetes pod's.
struct CloserGroup {
  std::string comm, unit, container, netns;
  std::int32_t pid = 0;  // 0 unless metrics.include_pid
  std::string pod{}, podNamespace{};
  auto operator<=>(const CloserGroup&) const = default;
};

struct PollView {
  // Never null in a published view. Its per-socket vectors (closeWait, ownerLinks, addresses)
  // are empty: the engine consumed them before publishing, and keeping them would double the
  // daemon's memory at a million sockets while the next poll builds its own.
  std::shared_ptr<const Snapshot> snapshot;
  // Index-aligned with snapshot->processes: the age of the process's oldest CLOSE_WAIT socket
  // (0 when it has none), from the engine.
  std::vector<SocketAge> processOldestCloseWait;
  // Index-aligned with snapshot->namespaces: TIME_WAIT sockets created since the daemon
  // started (a counter the daemon accumulates poll by poll).
  std::vector<std::uint64_t> timeWaitCreatedTotal;
  // Connections each closer group closed into TIME_WAIT since the daemon started (known
  // closers only, the groups the daemon still tracks).
  std::map<CloserGroup, std::uint64_t> timeWaitClosedTotal;
  std::vector<Alert> firing;    // every alert firing after this poll
  std::uint64_t pollCount = 0;  // 1 for the first poll
  std::int64_t unixTimeMs = 0;  // wall-clock time of the poll, for API readers
  Duration pollDuration{0};
};

// The latest published value of T. Writers swap a whole new value in; readers take a
// reference-counted pointer and then work without any lock.
template <typename T>
class Latest {
 public:
  void publish(std::shared_ptr<const T> value) {
    std::lock_guard lock(mutex_);
    value_.swap(value);
    // The old value (now in `value`) is released outside the lock.
  }
  [[nodiscard]] std::shared_ptr<const T> get() const {
    std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> value_;
};

}  // namespace waitwatch
