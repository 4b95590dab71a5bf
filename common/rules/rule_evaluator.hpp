// SPDX-License-Identifier: Apache-2.0
#pragma once
// One rule type's evaluation. The engine (engine.cpp) runs every evaluator each poll and the
// shared alert state machine (alert_machine.hpp) turns their verdicts into transitions: a new
// rule type is a new evaluator in a file of its own and a line in the engine's table.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/duration.hpp"
#include "core/ports.hpp"
#include "core/snapshot.hpp"
#include "rules/alert.hpp"
#include "rules/alert_machine.hpp"
#include "rules/config.hpp"
#include "rules/cookie_ages.hpp"

namespace waitwatch {

// At most this many ports and peers are named in an alert.
inline constexpr std::size_t kTopReported = 5;

// The range a socket of no known namespace is judged by.
const EphemeralRange& defaultEphemeralRange();

class RuleEvaluator {
 public:
  virtual ~RuleEvaluator() = default;

  // Starts a poll with this type's rules, in configuration order (possibly none).
  virtual void begin(const Snapshot& snap, std::span<RuleState* const> rules,
                     const Config& config) = 0;
  // Whether this poll wants every CLOSE_WAIT socket of the snapshot, aged, through
  // addCloseWaitSocket (the engine ages them in one pass for every rule).
  [[nodiscard]] virtual bool wantsCloseWaitSockets() const { return false; }
  virtual void addCloseWaitSocket(const Snapshot& snap, std::size_t i, const CookieAges::Entry& age,
                                  std::int64_t nowMs) {
    (void)snap, (void)i, (void)age, (void)nowMs;
  }
  // Ends the poll of rule `index` of begin's list: its groups' verdicts and values, stepped
  // through `machine`.
  virtual void finish(std::size_t index, const Snapshot& snap, TimePoint now, std::int64_t nowMs,
                      AlertMachine& machine, std::vector<Alert>& out) = 0;
};

std::unique_ptr<RuleEvaluator> makeCloseWaitEvaluator();  // close_wait_rule.cpp
std::unique_ptr<RuleEvaluator> makeTimeWaitEvaluator();   // time_wait_rule.cpp

}  // namespace waitwatch
