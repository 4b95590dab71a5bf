// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the rules engine says: one alert transition (firing, reminder, resolved) with everything
// an operator and the daemon's outputs (journal fields, metrics labels, the JSON API) need.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/close_wait_kind.hpp"
#include "core/duration.hpp"
#include "core/process.hpp"

namespace waitwatch {

enum class RuleType : std::uint8_t { CloseWait, TimeWait };
std::string_view ruleTypeName(RuleType t);  // "close_wait", "time_wait"
std::optional<RuleType> parseRuleType(std::string_view text);
std::string ruleTypeNames();  // "\"close_wait\" or \"time_wait\"", for errors

enum class Severity : std::uint8_t { Warning, Critical };
std::string_view severityName(Severity s);  // "warning", "critical"
std::optional<Severity> parseSeverity(std::string_view text);
std::string severityNames();  // "\"warning\" or \"critical\"", for errors

enum class AlertState : std::uint8_t {
  Firing,       // the condition held for `for`: emitted once
  StillFiring,  // a reminder, emitted every alerts.reminder_interval while firing (never per poll)
  Resolved,     // the condition was false for `clear_for`: emitted once
};
// "firing", "still_firing", "resolved". The journal's WAITWATCH_STATE is "firing" for both
// Firing and StillFiring (see journalState).
std::string_view alertStateName(AlertState s);
std::optional<AlertState> parseAlertState(std::string_view text);
std::string_view journalState(AlertState s);  // "firing" or "resolved"

// Which threshold made the condition true (an alert can have several).
enum class AlertReason : std::uint8_t {
  OldSockets,        // close_wait: >= min_sockets CLOSE_WAIT sockets older than min_age
  Growth,            // close_wait: grew by >= growth within growth_window
  PortUsage,         // time_wait: one (source, destination) pair uses >= port_usage_ratio
  TimeWaitCount,     // time_wait: >= min_sockets TIME_WAIT sockets in the namespace
  TimeWaitRate,      // time_wait: >= rate_per_second new TIME_WAIT sockets per second
  TimeWaitOverflow,  // time_wait: the kernel's TCPTimeWaitOverflow counter rose
  FdExhaustion,      // close_wait: a process runs out of fds within fd_exhaustion_within
};
std::string_view alertReasonName(AlertReason r);  // "old_sockets", "growth", "port_usage", ...
std::optional<AlertReason> parseAlertReason(std::string_view text);

// What the alert is about. close_wait groups are processes (default), systemd units or
// containers, plus one "unattributed" group per namespace for sockets no visible process holds;
// time_wait groups are a (source, destination) pair or a whole namespace.
enum class GroupKind : std::uint8_t {
  Process,       // pid + start time + netns: a reused pid is a new group
  Unit,          // systemd unit + netns (processes with no unit fall back to Process)
  Container,     // container + netns (processes in no container fall back to Process)
  Pod,           // Kubernetes pod + netns (processes in no pod fall back to Process)
  Unattributed,  // CLOSE_WAIT sockets with no visible owner, per netns
  Destination,   // time_wait: (netns, source address, destination endpoint)
  Namespace,     // time_wait: a whole namespace
};
std::string_view groupKindName(GroupKind k);  // "process", "unit", ...
std::optional<GroupKind> parseGroupKind(std::string_view text);

struct AlertGroup {
  GroupKind kind = GroupKind::Process;
  // Process groups: the process. Unit and container groups: pid 0, and comm/user of the
  // process holding the most counted sockets at this poll (may change between polls; `key`
  // does not). Empty where unknown.
  std::int32_t pid = 0;
  std::uint64_t startTime = 0;  // /proc/<pid>/stat start time (clock ticks), process groups
  std::string comm;
  std::string user;
  std::string unit;
  std::string container;  // ContainerInfo::shortName(), e.g. "docker:0123456789ab"
  std::string netns;      // NetnsRef::label()
  std::uint64_t netnsInode = 0;
  std::uint32_t processes = 0;  // close_wait: processes in the group holding counted sockets
  // Where the runtime's files name them: the container's name (else empty), and the Kubernetes
  // pod's name and namespace. The pod's uid also where only the cgroup path gives it.
  std::string containerName{};
  std::string pod{};
  std::string podNamespace{};
  std::string podUid{};
  bool operator==(const AlertGroup&) const = default;
};

// Sets the group's container fields from the process's container.
void setContainer(AlertGroup& g, const ContainerInfo& c);
// How alert texts name the group's container: "pod payments/checkout-7d9f-x2k4, container api",
// "container shop-web-1", "container docker:0123456789ab"; "" when not in one.
std::string containerText(const AlertGroup& g);
// "pod payments/checkout-7d9f-x2k4", or "pod <uid>" when its name was not found.
std::string podText(const AlertGroup& g);

struct PortCount {
  std::uint16_t port = 0;
  std::uint64_t count = 0;
  bool operator==(const PortCount&) const = default;
};

// A remote peer. For server-side sockets (the local port is one the owner listens on, or is
// outside the ephemeral range) only the address matters and `endpoint.port` is 0; for
// client-side sockets the peer is the service endpoint that was connected to.
struct PeerCount {
  Endpoint endpoint;
  std::uint64_t count = 0;
  bool operator==(const PeerCount&) const = default;
};

// File descriptors of the group's process nearest to running out (a process group's own
// process when none is forecast to); pid 0 when there is none to speak of.
struct FdDetails {
  std::int32_t pid = 0;
  std::string comm;
  std::uint64_t open = 0;  // 0: not read
  std::uint64_t max = 0;   // RLIMIT_NOFILE soft limit; 0: unknown or unlimited
  std::optional<FdForecast> forecast;
  bool operator==(const FdDetails&) const = default;
};

struct CloseWaitDetails {
  std::uint64_t total = 0;       // all CLOSE_WAIT sockets of the group (count = older than min_age)
  std::uint64_t growth = 0;      // growth of settled sockets within growth_window (0 if unset)
  std::uint64_t peak = 0;        // highest `total` while the alert fired
  std::uint64_t clientSide = 0;  // of total, sockets whose local port is an outgoing one
  CloseWaitKinds kinds;          // of total, by what their Recv-Q says
  FdDetails fds;
  bool operator==(const CloseWaitDetails&) const = default;
};

struct TimeWaitDetails {
  // Destination groups:
  IpAddress source;
  Endpoint destination;
  double portUsageRatio = 0.0;  // (timeWait + live) / usablePorts
  std::uint64_t live = 0;       // non-TIME_WAIT connections of the same tuple
  std::uint32_t usablePorts = 0;
  // Namespace groups (rate and overflow also set for destination groups where known):
  double ratePerSecond = 0.0;            // new TIME_WAIT sockets per second
  std::uint32_t maxTimeWaitBuckets = 0;  // net.ipv4.tcp_max_tw_buckets, 0 if unknown
  std::uint64_t overflowDelta = 0;       // TCPTimeWaitOverflow rise since the previous poll
  std::uint64_t overflowTotal = 0;       // the counter's value
  // Where most of this poll's new TIME_WAIT sockets are (namespace groups): a rate alert names
  // where the new ones come from, not the largest pile, which may be old and not growing.
  // newest == 0: none new.
  bool newestServerSide = false;  // a server port (newestAt.port) or a destination (newestAt)
  Endpoint newestAt;
  std::uint64_t newest = 0;
  // Who closed the connections (the side that closes first holds the TIME_WAIT): the process
  // that closed most of the group's, named in AlertGroup (pid, comm, user, unit, container),
  // with its TIME_WAIT sockets and how many of them are new since the last poll, per second.
  // closersTracked false: the snapshot knows no closers (none is named).
  bool closersTracked = false;
  std::uint64_t closerTimeWait = 0;  // 0: no closer known
  double closerRatePerSecond = 0.0;
  std::uint64_t closerUnknown = 0;  // TIME_WAIT sockets of the group whose closer is not known
  bool operator==(const TimeWaitDetails&) const = default;
};

struct Alert {
  std::string rule;  // the rule's `name`
  RuleType type = RuleType::CloseWait;
  Severity severity = Severity::Warning;
  AlertState state = AlertState::Firing;
  // Identity of the group within the rule, stable across polls and reloads, e.g.
  // "process:1234@98765:4026531840", "unit:nginx.service:4026531840",
  // "destination:4026531840:10.0.0.5->10.0.0.9:5432", "namespace:4026531840".
  std::string key;
  AlertGroup group;
  std::vector<AlertReason> reasons;  // what is true now; for Resolved what was true when firing

  // close_wait: CLOSE_WAIT sockets older than min_age; time_wait: TIME_WAIT sockets in the group.
  std::uint64_t count = 0;
  Duration oldestAge{0};               // close_wait: the oldest CLOSE_WAIT socket of the group
  bool oldestAgeIsLowerBound = false;  // it was already there at the first poll: "at least"
  std::vector<PortCount> localPorts;   // most sockets first, at most 5
  std::vector<PeerCount> peers;        // most sockets first, at most 5
  CloseWaitDetails closeWait;          // type == CloseWait
  TimeWaitDetails timeWait;            // type == TimeWait

  TimePoint since{};    // when the condition started to hold (before `for` elapsed)
  TimePoint firedAt{};  // when it fired
  TimePoint at{};       // the evaluation this alert comes from (resolve time for Resolved)

  // One line for an operator: what is wrong, how bad, what to look at.
  std::string message;
  bool operator==(const Alert&) const = default;
};

}  // namespace waitwatch
