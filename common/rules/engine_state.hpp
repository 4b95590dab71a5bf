// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the daemon keeps across a restart, as values: the first-seen time of every CLOSE_WAIT
// socket by cookie, every alert group's state machine (pending, firing, resolving, histories)
// and the open-fd histories the forecasts need. Times are milliseconds of the steady clock
// (CLOCK_MONOTONIC), which only means the same thing within one boot: whoever stores this keeps
// the boot's id beside it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/process.hpp"
#include "rules/alert.hpp"

namespace waitwatch {

struct SavedAge {
  std::uint64_t cookie = 0;
  std::int64_t firstSeenMs = 0;  // steady clock
  bool lowerBound = false;       // it was already there when the daemon first looked
  bool operator==(const SavedAge&) const = default;
};

struct SavedSample {
  std::int64_t ms = 0;  // steady clock
  std::uint64_t value = 0;
  bool operator==(const SavedSample&) const = default;
};

struct SavedGroup {
  std::string key;
  std::optional<std::int64_t> pendingSinceMs;
  std::optional<std::int64_t> falseSinceMs;
  bool firing = false;
  std::int64_t sinceMs = 0;
  std::int64_t firedAtMs = 0;
  std::int64_t lastNotifiedMs = 0;
  std::uint64_t peak = 0;
  std::vector<AlertReason> firedReasons;
  std::vector<SavedSample> history;  // the close_wait rule's growth samples
  // The group's latest values (what a Resolved transition reports); only while pending or firing.
  std::optional<Alert> alert;
  bool operator==(const SavedGroup&) const = default;
};

struct SavedRule {
  std::string name;
  RuleType type = RuleType::CloseWait;
  std::vector<SavedGroup> groups;
  bool operator==(const SavedRule&) const = default;
};

struct SavedFdHistory {
  ProcessKey process;
  std::vector<SavedSample> samples;  // open fds, oldest first
  bool operator==(const SavedFdHistory&) const = default;
};

// Everything but the ages, which are streamed (a million sockets are 16 MB).
struct EngineState {
  std::vector<SavedRule> rules;
  std::vector<SavedFdHistory> fdHistories;
  std::vector<SavedSample> tcpMemory;  // the host's TCP memory pages, oldest first
  bool operator==(const EngineState&) const = default;
};

// What a restore took over, for the daemon's log line.
struct RestoreSummary {
  std::size_t ages = 0;
  std::size_t groups = 0;   // groups of rules the configuration still has
  std::size_t firing = 0;   // of them, firing
  std::size_t dropped = 0;  // firing groups of rules no longer configured (resolved now)
  std::size_t fdProcesses = 0;
};

}  // namespace waitwatch
