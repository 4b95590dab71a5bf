// SPDX-License-Identifier: Apache-2.0
#include "rules/alert_machine.hpp"

#include "rules/messages.hpp"

namespace waitwatch {
namespace {

bool hasReason(const std::vector<AlertReason>& v, AlertReason r) {
  return std::find(v.begin(), v.end(), r) != v.end();
}

}  // namespace

void mergeReasons(std::vector<AlertReason>& into, const std::vector<AlertReason>& from) {
  for (AlertReason r : from) {
    if (!hasReason(into, r)) into.push_back(r);
  }
  std::sort(into.begin(), into.end());
}

std::uint64_t peakValue(const Alert& a) {
  return a.type == RuleType::CloseWait ? a.closeWait.total : a.count;
}

Alert AlertMachine::newAlert(const RuleState& rs, const std::string& key) const {
  Alert a;
  a.rule = rs.rule.name;
  a.type = rs.rule.type;
  a.severity = rs.rule.severity;
  a.key = key;
  return a;
}

// Emits a transition with the group's latest values.
void AlertMachine::emit(const RuleState& rs, const GroupState& g, AlertState state, TimePoint now,
                        std::vector<Alert>& out) const {
  Alert a = *g.alert;
  a.severity = rs.rule.severity;
  a.state = state;
  a.since = g.since;
  a.firedAt = g.firedAt;
  a.at = now;
  if (a.type == RuleType::CloseWait) a.closeWait.peak = g.peak;
  if (state == AlertState::Resolved || a.reasons.empty()) a.reasons = g.firedReasons;
  a.message = alertMessage(a, rs.rule);
  out.push_back(std::move(a));
}

// The state machine of one group: pending -> firing (after `for`) -> resolved (after
// `clear_for` of false), with reminders while firing.
void AlertMachine::step(const RuleState& rs, GroupState& g, bool condition, TimePoint now,
                        std::vector<Alert>& out) const {
  const Rule& rule = rs.rule;
  if (condition) {
    g.falseSince.reset();
    if (!g.pendingSince) g.pendingSince = now;
    if (!g.firing) {
      if (now - *g.pendingSince >= rule.forDuration) {
        g.firing = true;
        g.since = *g.pendingSince;
        g.firedAt = now;
        g.lastNotified = now;
        g.peak = peakValue(*g.alert);
        g.firedReasons = g.alert->reasons;
        emit(rs, g, AlertState::Firing, now, out);
      }
      return;
    }
    g.peak = std::max(g.peak, peakValue(*g.alert));
    mergeReasons(g.firedReasons, g.alert->reasons);
    const Duration reminder = reminderInterval;
    if (reminder > Duration::zero() && now - g.lastNotified >= reminder) {
      g.lastNotified = now;
      emit(rs, g, AlertState::StillFiring, now, out);
    }
    return;
  }
  g.pendingSince.reset();
  if (!g.firing) return;
  if (!g.falseSince) g.falseSince = now;
  if (now - *g.falseSince >= rule.clearFor) {
    emit(rs, g, AlertState::Resolved, now, out);
    g.firing = false;
    g.falseSince.reset();
    g.firedReasons.clear();
  }
}

}  // namespace waitwatch
