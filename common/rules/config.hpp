// SPDX-License-Identifier: Apache-2.0
#pragma once
// The configuration, compiled from JSON into plain values. compileConfig validates everything
// (unknown keys, types, impossible values) so that the engine and the daemon never see a bad
// value; errors name the JSON path and the reason.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/duration.hpp"
#include "core/function_ref.hpp"
#include "core/netns_selection.hpp"
#include "core/ports.hpp"
#include "core/result.hpp"
#include "rules/alert.hpp"
#include "rules/glob.hpp"

namespace waitwatch {

class ConfigReader;

// The metrics listener when neither the config nor --listen names one. The Prometheus exporter
// range 9100-9999 is fully allocated by now; 9929 is documented in the README as waitwatch's.
inline constexpr std::string_view kDefaultListen = "0.0.0.0:9929";
inline constexpr std::string_view kDefaultConfigPath = "/etc/waitwatch/waitwatch.json";

enum class GroupBy : std::uint8_t { Process, Unit, Container, Pod };
std::string_view groupByName(GroupBy g);  // "process", "unit", "container", "pod"
std::optional<GroupBy> parseGroupBy(std::string_view name);
std::string groupByNames();  // "\"process\", \"unit\", \"container\" or \"pod\"", for errors

// An inclusive port range; a single port is {p, p}.
struct PortRange {
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  [[nodiscard]] bool contains(std::uint16_t p) const { return p >= low && p <= high; }
  bool operator==(const PortRange&) const = default;
};

// "local_port": a port, a range "8000-8099", or a class "well-known", "registered",
// "ephemeral" (the classes of core/ports.hpp: IANA's, except that a port in the namespace's
// ip_local_port_range is ephemeral).
struct LocalPortSelector {
  std::optional<PortClass> portClass;  // set: the class; unset: `range`
  PortRange range;
  [[nodiscard]] bool matches(std::uint16_t port, const EphemeralRange& ephemeral) const {
    return portClass ? classifyPort(port, ephemeral) == *portClass : range.contains(port);
  }
  bool operator==(const LocalPortSelector&) const = default;
};

// One side of `match`. Each key is a list of alternatives (any may match). Empty lists are
// absent keys.
struct Selector {
  std::vector<Glob> comm;       // process name, /proc/<pid>/comm
  std::vector<Glob> unit;       // systemd unit
  std::vector<Glob> container;  // matched against "runtime:shortid" and the full id
  // From the runtime's files: the container's name (in Kubernetes, its name in the pod), and
  // the Kubernetes pod's name and namespace.
  std::vector<Glob> containerName;
  std::vector<Glob> pod;
  std::vector<Glob> podNamespace;
  std::vector<std::string> user;  // user name or numeric uid
  std::vector<LocalPortSelector> localPort;
  std::vector<Cidr> destination;           // remote address of the socket / TIME_WAIT pair
  std::vector<PortRange> destinationPort;  // remote port
  [[nodiscard]] bool empty() const {
    return comm.empty() && unit.empty() && container.empty() && containerName.empty() &&
           pod.empty() && podNamespace.empty() && user.empty() && localPort.empty() &&
           destination.empty() && destinationPort.empty();
  }
  bool operator==(const Selector&) const = default;
};

// Per dimension: a socket (or group) passes a key when it matches one of `include`'s values
// (or include does not set that key) and none of `exclude`'s. It passes `match` when it passes
// every key. So include keys combine with AND, exclude keys with OR (each one removes).
// A dimension the subject does not have (the comm of an unattributed socket, the destination
// of a server-side TIME_WAIT group) never matches: it fails an include, passes an exclude.
struct Match {
  Selector include;
  Selector exclude;
  bool operator==(const Match&) const = default;
};

struct CloseWaitRule {
  GroupBy groupBy = GroupBy::Process;
  std::uint64_t minSockets = 10;  // fire when >= this many are older than minAge
  Duration minAge{300'000};
  // Also fire when the group's settled CLOSE_WAIT count (sockets seen in at least two polls,
  // so that short-lived churn never counts) grew by >= growth within growthWindow.
  std::optional<std::uint64_t> growth;
  Duration growthWindow{600'000};
  // Also fire when a process of the group runs out of file descriptors within this long, by
  // the forecast (rules/fd_forecast.hpp), and the group holds a socket older than minAge.
  std::optional<Duration> fdExhaustionWithin;
  bool operator==(const CloseWaitRule&) const = default;
};

struct TimeWaitRule {
  std::optional<double> portUsageRatio;     // (0, 1]: share of usable ephemeral ports per pair
  std::optional<std::uint64_t> minSockets;  // TIME_WAIT sockets in a namespace
  std::optional<double> ratePerSecond;      // new TIME_WAIT sockets per second in a namespace
  bool timeWaitOverflow = false;            // fire when TCPTimeWaitOverflow rises
  // Set: the rule is per closer group (the process, unit or container that closed the
  // connections first): min_sockets and rate_per_second count the group's TIME_WAIT sockets,
  // port_usage_ratio fires for a group that closes toward a pair that far used. Unset
  // ("destination"): per pair and per namespace, as above.
  std::optional<GroupBy> groupBy;
  bool operator==(const TimeWaitRule&) const = default;
};

struct Rule {
  std::string name;  // unique within the config
  RuleType type = RuleType::CloseWait;
  Severity severity = Severity::Warning;
  Duration forDuration{0};  // `for`: the condition must hold this long before firing
  Duration clearFor{0};     // the condition must be false this long before resolving
  Match match;
  CloseWaitRule closeWait;  // used when type == CloseWait
  TimeWaitRule timeWait;    // used when type == TimeWait
  bool operator==(const Rule&) const = default;
};

struct MetricsOptions {
  bool includePid = false;  // a `pid` label on per-process series (pids churn series)
  // Per metric family, at most this many labelled groups (top by CLOSE_WAIT count, or by port
  // usage); the rest are summed under one "other" series.
  std::uint32_t maxGroups = 50;
  bool operator==(const MetricsOptions&) const = default;
};

struct AlertOptions {
  // While an alert keeps firing, the engine emits a StillFiring reminder this often; 0 = never.
  Duration reminderInterval{3'600'000};
  bool operator==(const AlertOptions&) const = default;
};

struct ForecastOptions {
  // The span a forecast's slope is measured over (rules/fd_forecast.hpp): a leak is forecast
  // once it has grown for a quarter of it, and no longer after a quarter of it without growth.
  Duration window{600'000};
  bool operator==(const ForecastOptions&) const = default;
};

// Container names (containers/container_names.hpp): looked up in the runtimes' own files under
// `root`, where the host's filesystem is ("/" on the host; a DaemonSet mounts the runtimes'
// directories at the same paths).
struct ContainerOptions {
  bool names = true;
  std::string root = "/";
  bool operator==(const ContainerOptions&) const = default;
};

struct Config {
  Duration pollInterval{5'000};
  std::string listen{kDefaultListen};                        // "ADDR:PORT", "[V6ADDR]:PORT"
  NamespaceSelection namespaces = NamespaceSelection::Host;  // Host or All
  MetricsOptions metrics;
  AlertOptions alerts;
  ForecastOptions forecast;
  ContainerOptions containers;
  std::vector<Rule> rules;
  bool operator==(const Config&) const = default;

  // "poll every 5s, listen on 0.0.0.0:9929, host namespace, 2 rules (close-wait-leak:
  // close_wait, port-exhaustion: time_wait)" for --check-config.
  [[nodiscard]] std::string summary() const;
};

// A top-level section that a program reads itself (waitwatchd's "web"): compileConfig accepts
// its key and, once the rest of the file checked out, hands its value to `read`, whose errors
// name their path as the rest do.
struct ConfigSection {
  std::string_view key;
  FunctionRef<bool(ConfigReader&, const nlohmann::json&)> read;
};

// Parses and validates a configuration. `origin` (a file name, or empty) prefixes every error:
// "/etc/waitwatch/waitwatch.json: rules[1].for: \"5 minutes\" is not a duration, expected e.g.
// \"5m\"". JSON with // and /* */ comments is accepted.
Result<Config> compileConfig(std::string_view jsonText, std::string_view origin,
                             std::span<const ConfigSection> sections = {});

// The built-in defaults; config/waitwatch.json is the same configuration as a commented file
// (a test checks that they are equal).
Config defaultConfig();

// The keys each configuration object accepts, for tools and for the test that keeps
// config/waitwatch.schema.json in step with the validator. `object` is "" (top level),
// "metrics", "alerts", "rule(close_wait)", "rule(time_wait)", "match" or "selector" (the
// sections a program reads itself list their own).
struct ConfigKeySet {
  std::string_view object;
  std::vector<std::string_view> keys;
};
std::vector<ConfigKeySet> configKeySets();

// "0.0.0.0:9929", "[::]:9929", "127.0.0.1:9929" -> endpoint; nullopt otherwise (port 1-65535).
std::optional<Endpoint> parseListenAddress(std::string_view text);

}  // namespace waitwatch
