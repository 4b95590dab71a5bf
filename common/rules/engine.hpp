// SPDX-License-Identifier: Apache-2.0
#pragma once
// The rules engine: fed one Snapshot per poll with the time of that poll, it keeps the history
// the rules need (CLOSE_WAIT first-seen times by cookie, bounded per-group histories, the
// previous kernel counters) and returns alert transitions. Pure: no clock, no I/O, so tests
// replay hours in milliseconds.
//
// Transitions: Firing once when a group's condition has held for `for`; StillFiring reminders
// every alerts.reminder_interval while it keeps firing (the engine decides reminders, so the
// daemon writes every alert it gets, never one per poll); Resolved once after the condition was
// false for `clear_for`.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/duration.hpp"
#include "core/function_ref.hpp"
#include "core/snapshot.hpp"
#include "rules/alert.hpp"
#include "rules/config.hpp"
#include "rules/engine_state.hpp"

namespace waitwatch {

class Engine {
 public:
  explicit Engine(const Config& config);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One poll. `now` is the poll's time (the caller's steady clock); it must not go backwards.
  // Returns the transitions of this poll, in rule order then group key order.
  std::vector<Alert> evaluate(const Snapshot& snapshot, TimePoint now);

  // Replaces the rules. State (pending, firing, histories) carries over for rules whose name
  // and type are unchanged; alerts of rules that disappear or change type are dropped without
  // a Resolved transition (see droppedOnReconfigure). Socket ages always carry over.
  void reconfigure(const Config& config);
  // The alerts that were firing for rules removed by the last reconfigure, as Resolved
  // transitions, so the daemon can close them in the journal.
  [[nodiscard]] std::vector<Alert> takeDroppedOnReconfigure();

  // What to keep across a restart (engine_state.hpp): every group of every rule, times on the
  // steady clock. The socket ages go through forEachAge, one at a time.
  [[nodiscard]] std::vector<SavedRule> saveRules() const;
  void forEachAge(FunctionRef<void(const SavedAge&)> f) const;
  // Takes over what a previous daemon of the same boot saved; only before the first evaluate
  // (later it changes nothing and returns an empty summary). Sockets keep their first-seen
  // times. Groups of rules with the same name and type go on where they were: a firing alert
  // keeps firing without a second Firing transition, one whose condition is gone resolves once
  // after clear_for. Firing groups of rules the configuration no longer has are resolved (see
  // takeDroppedOnReconfigure). Saved times later than `now` are taken as `now`.
  RestoreSummary restore(std::span<const SavedRule> rules, std::span<const SavedAge> ages,
                         TimePoint now);

  // Every alert firing after the last evaluate, with that poll's values (state Firing), in
  // rule order then group key order.
  [[nodiscard]] std::vector<Alert> firing() const;

  // The age of a CLOSE_WAIT socket seen at the last evaluate, by cookie; nullopt if unknown.
  [[nodiscard]] std::optional<SocketAge> closeWaitAge(std::uint64_t cookie, TimePoint now) const;
  // For each entry of snapshot.processes (same index), its oldest CLOSE_WAIT socket (age 0 when
  // it has none). `snapshot` must be the one last passed to evaluate.
  [[nodiscard]] std::vector<SocketAge> oldestCloseWaitByProcess(const Snapshot& snapshot,
                                                                TimePoint now) const;
  // Number of CLOSE_WAIT sockets the engine tracks (memory is proportional to it).
  [[nodiscard]] std::size_t trackedSockets() const;
  // Bytes of the per-socket table behind trackedSockets (for memory breakdowns).
  [[nodiscard]] std::size_t trackedBytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace waitwatch
