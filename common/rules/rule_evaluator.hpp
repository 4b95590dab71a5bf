// SPDX-License-Identifier: Apache-2.0
#pragma once
// One rule type: its keys of a rule object and its evaluation. The engine (engine.cpp) runs
// every evaluator each poll and the shared alert state machine (alert_machine.hpp) turns their
// verdicts into transitions; the configuration (config.cpp) hands each rule object to its
// type's reader. A new rule type is a file of its own that defines a RuleTypeDefinition, and a
// line in the engine's table.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.hpp"
#include "core/ports.hpp"
#include "core/snapshot.hpp"
#include "rules/alert.hpp"
#include "rules/alert_machine.hpp"
#include "rules/config.hpp"
#include "rules/config_reader.hpp"
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

// The keys every rule object has, whatever its type.
inline constexpr std::array<std::string_view, 6> kCommonRuleKeys = {"name", "type",      "severity",
                                                                    "for",  "clear_for", "match"};

struct RuleTypeDefinition {
  RuleType type;
  std::span<const std::string_view> keys;  // its own, besides kCommonRuleKeys
  // Reads its keys of the rule object at `path` into `out` (the common keys are read already).
  bool (*read)(ConfigReader& in, const nlohmann::json& rule, const std::string& path,
               Duration pollInterval, Rule& out);
  std::unique_ptr<RuleEvaluator> (*makeEvaluator)();
};

const RuleTypeDefinition& closeWaitRuleType();  // close_wait_rule.cpp
const RuleTypeDefinition& timeWaitRuleType();   // time_wait_rule.cpp

inline constexpr std::size_t kRuleTypeCount = 2;
// Every rule type, indexed by RuleType (engine.cpp).
const std::array<const RuleTypeDefinition*, kRuleTypeCount>& ruleTypes();

}  // namespace waitwatch
