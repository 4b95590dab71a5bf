// SPDX-License-Identifier: Apache-2.0
#pragma once
// The alert state machine every rule type shares. A rule type's evaluator (rule_evaluator.hpp)
// says, each poll, which groups it saw, their verdict and their latest values; the machine
// turns verdicts into transitions: pending -> firing (after `for`) -> resolved (after
// `clear_for` of false), with reminders every alerts.reminder_interval while firing.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "rules/alert.hpp"
#include "rules/config.hpp"

namespace waitwatch {

struct Sample {
  std::int64_t ms = 0;
  std::uint64_t count = 0;
};

// What the engine remembers about one group of one rule between polls.
struct GroupState {
  std::uint64_t seenGeneration = 0;  // the poll that last saw the group
  bool condition = false;            // this poll's verdict (valid when seen this poll)
  std::optional<TimePoint> pendingSince;
  std::optional<TimePoint> falseSince;
  bool firing = false;
  TimePoint since{};
  TimePoint firedAt{};
  TimePoint lastNotified{};
  std::uint64_t peak = 0;
  std::vector<AlertReason> firedReasons;  // union of reasons while firing
  std::vector<Sample> history;            // growth: (time, settled count), oldest first
  std::unique_ptr<Alert> alert;           // latest values; only while pending or firing
};

struct RuleState {
  Rule rule;
  std::map<std::string, GroupState, std::less<>> groups;  // ordered: deterministic output
};

// What "peak" reports in a resolution: the most CLOSE_WAIT sockets the group held while firing
// (all of them, not only those past min_age), or the most TIME_WAIT sockets.
std::uint64_t peakValue(const Alert& a);
// Adds the reasons of `from` that `into` lacks, sorted.
void mergeReasons(std::vector<AlertReason>& into, const std::vector<AlertReason>& from);

class AlertMachine {
 public:
  std::uint64_t generation = 0;  // the poll being evaluated: groups seen in it carry it
  Duration reminderInterval{};   // alerts.reminder_interval; zero: no reminders

  // A group's first alert: the rule's name, type and severity, and the group's key.
  [[nodiscard]] Alert newAlert(const RuleState& rs, const std::string& key) const;

  // Emits a transition with the group's latest values.
  void emit(const RuleState& rs, const GroupState& g, AlertState state, TimePoint now,
            std::vector<Alert>& out) const;

  // One group's verdict of this poll into its state, and the transition it makes, if any.
  void step(const RuleState& rs, GroupState& g, bool condition, TimePoint now,
            std::vector<Alert>& out) const;

  // Walks a rule's groups in key order: steps those seen this poll with their verdict, and
  // those not seen as false (zeroing their values), forgetting groups with nothing to remember.
  template <typename Zero>
  void finishRule(RuleState& rs, TimePoint now, bool keepIdle, Zero&& zero,
                  std::vector<Alert>& out) {
    for (auto it = rs.groups.begin(); it != rs.groups.end();) {
      GroupState& g = it->second;
      const bool seen = g.seenGeneration == generation;
      if (!seen) {
        if (g.firing && g.alert) zero(*g.alert);
        step(rs, g, false, now, out);
      } else {
        step(rs, g, g.condition, now, out);
      }
      const bool idle = !g.firing && !g.pendingSince;
      if (idle) g.alert.reset();
      if (idle && (!seen || !keepIdle)) {
        it = rs.groups.erase(it);
      } else {
        ++it;
      }
    }
  }
};

}  // namespace waitwatch
