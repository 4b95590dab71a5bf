// SPDX-License-Identifier: Apache-2.0
#include "rules/alert.hpp"

namespace waitwatch {

std::string_view ruleTypeName(RuleType t) {
  switch (t) {
    case RuleType::CloseWait:
      return "close_wait";
    case RuleType::TimeWait:
      return "time_wait";
  }
  return "?";
}

std::string_view severityName(Severity s) {
  switch (s) {
    case Severity::Warning:
      return "warning";
    case Severity::Critical:
      return "critical";
  }
  return "?";
}

std::string_view alertStateName(AlertState s) {
  switch (s) {
    case AlertState::Firing:
      return "firing";
    case AlertState::StillFiring:
      return "still_firing";
    case AlertState::Resolved:
      return "resolved";
  }
  return "?";
}

std::string_view journalState(AlertState s) {
  return s == AlertState::Resolved ? "resolved" : "firing";
}

std::string_view alertReasonName(AlertReason r) {
  switch (r) {
    case AlertReason::OldSockets:
      return "old_sockets";
    case AlertReason::Growth:
      return "growth";
    case AlertReason::PortUsage:
      return "port_usage";
    case AlertReason::TimeWaitCount:
      return "time_wait_count";
    case AlertReason::TimeWaitRate:
      return "time_wait_rate";
    case AlertReason::TimeWaitOverflow:
      return "time_wait_overflow";
  }
  return "?";
}

std::string_view groupKindName(GroupKind k) {
  switch (k) {
    case GroupKind::Process:
      return "process";
    case GroupKind::Unit:
      return "unit";
    case GroupKind::Container:
      return "container";
    case GroupKind::Unattributed:
      return "unattributed";
    case GroupKind::Destination:
      return "destination";
    case GroupKind::Namespace:
      return "namespace";
  }
  return "?";
}

}  // namespace waitwatch
