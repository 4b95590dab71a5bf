// SPDX-License-Identifier: Apache-2.0
#include "rules/alert.hpp"

#include "core/enum_names.hpp"

namespace waitwatch {
namespace {

constexpr EnumNames<RuleType, 2> kRuleTypes({{RuleType::CloseWait, "close_wait"},
                                             {RuleType::TimeWait, "time_wait"}});
constexpr EnumNames<Severity, 2> kSeverities({{Severity::Warning, "warning"},
                                              {Severity::Critical, "critical"}});
constexpr EnumNames<AlertState, 3> kAlertStates({{AlertState::Firing, "firing"},
                                                 {AlertState::StillFiring, "still_firing"},
                                                 {AlertState::Resolved, "resolved"}});
constexpr EnumNames<AlertReason, 7> kAlertReasons({{AlertReason::OldSockets, "old_sockets"},
                                                   {AlertReason::Growth, "growth"},
                                                   {AlertReason::PortUsage, "port_usage"},
                                                   {AlertReason::TimeWaitCount, "time_wait_count"},
                                                   {AlertReason::TimeWaitRate, "time_wait_rate"},
                                                   {AlertReason::TimeWaitOverflow,
                                                    "time_wait_overflow"},
                                                   {AlertReason::FdExhaustion, "fd_exhaustion"}});
constexpr EnumNames<GroupKind, 7> kGroupKinds({{GroupKind::Process, "process"},
                                               {GroupKind::Unit, "unit"},
                                               {GroupKind::Container, "container"},
                                               {GroupKind::Pod, "pod"},
                                               {GroupKind::Unattributed, "unattributed"},
                                               {GroupKind::Destination, "destination"},
                                               {GroupKind::Namespace, "namespace"}});

}  // namespace

std::string_view ruleTypeName(RuleType t) {
  return kRuleTypes.name(t);
}
std::optional<RuleType> parseRuleType(std::string_view text) {
  return kRuleTypes.parse(text);
}
std::string ruleTypeNames() {
  return kRuleTypes.quotedList();
}

std::string_view severityName(Severity s) {
  return kSeverities.name(s);
}
std::optional<Severity> parseSeverity(std::string_view text) {
  return kSeverities.parse(text);
}
std::string severityNames() {
  return kSeverities.quotedList();
}

std::string_view alertStateName(AlertState s) {
  return kAlertStates.name(s);
}

std::optional<AlertState> parseAlertState(std::string_view text) {
  return kAlertStates.parse(text);
}

std::string_view journalState(AlertState s) {
  return s == AlertState::Resolved ? "resolved" : "firing";
}

std::string_view alertReasonName(AlertReason r) {
  return kAlertReasons.name(r);
}
std::optional<AlertReason> parseAlertReason(std::string_view text) {
  return kAlertReasons.parse(text);
}

std::string_view groupKindName(GroupKind k) {
  return kGroupKinds.name(k);
}
std::optional<GroupKind> parseGroupKind(std::string_view text) {
  return kGroupKinds.parse(text);
}

void setContainer(AlertGroup& g, const ContainerInfo& c) {
  g.container = c.shortName();
  g.containerName = c.name;
  g.pod = c.podName;
  g.podNamespace = c.podNamespace;
  g.podUid = c.pod;
}

std::string podText(const AlertGroup& g) {
  if (g.pod.empty()) return "pod " + g.podUid;
  return "pod " + (g.podNamespace.empty() ? "" : g.podNamespace + "/") + g.pod;
}

std::string containerText(const AlertGroup& g) {
  if (!g.pod.empty()) {
    std::string out = podText(g);
    if (!g.containerName.empty()) out += ", container " + g.containerName;
    return out;
  }
  if (!g.containerName.empty()) return "container " + g.containerName;
  if (!g.container.empty()) return "container " + g.container;
  return {};
}

}  // namespace waitwatch
