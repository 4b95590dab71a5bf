// SPDX-License-Identifier: Apache-2.0
#pragma once
// The daemon's /api/v1/alerts document (schema: docs/api/alerts.schema.json): its writer, from
// the engine's alerts, and its reader, which `waitwatch --from` uses. Pure: values in, values
// out.
//
// {"time_unix_seconds", "alerts": [{"rule", "type", "severity", "state", "key", "message",
//   "group": {...}, "reasons", "count", "local_ports", "peers", "since_unix_seconds",
//   "fired_at_unix_seconds", then "oldest_age_seconds" ... "close_wait" or "time_wait"}]}
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "core/result.hpp"
#include "rules/alert.hpp"

namespace waitwatch::api {

// The poll the alerts come from, on both clocks: engine times (steady) become Unix times.
struct PollClock {
  TimePoint steady{};       // when the poll started, on the engine's clock
  std::int64_t unixMs = 0;  // the same moment, in Unix milliseconds
  [[nodiscard]] double unixSeconds(TimePoint t) const {
    const auto offset = std::chrono::duration_cast<Duration>(t - steady);
    return static_cast<double>(unixMs + offset.count()) / 1000.0;
  }
};

nlohmann::ordered_json alertToJson(const Alert& alert, const PollClock& clock);
// The whole document: the poll's time and every alert.
nlohmann::ordered_json alertsToJson(std::span<const Alert> alerts, const PollClock& clock);

// A firing alert as the document gives it, reduced to what a terminal shows.
struct AlertSummary {
  std::string rule;
  std::string severity;  // "warning", "critical"
  std::string message;   // the engine's sentence, made printable
  double sinceUnixSeconds = 0;
  // Whom it is about (its "group"): its kind ("process", "unit", "container", "destination",
  // ...; empty when not given), and the pid, start time, unit and container the daemon wrote
  // (a process group: the process; a time_wait group: its top closer).
  std::string groupKind{};
  std::int32_t pid = 0;
  std::uint64_t startTime = 0;
  std::string unit{};
  std::string container{};
  std::string containerName{};  // where the runtime's files named them
  std::string pod{};            // the pod's name
  std::string podNamespace{};
  std::string podUid{};
  bool operator==(const AlertSummary&) const = default;
};

// Reads the document. Errors name the JSON path ("alerts[0].message: missing, or not a
// string"); keys it does not know are ignored (a newer daemon may add some).
Result<std::vector<AlertSummary>> alertsFromJson(const nlohmann::json& json);

}  // namespace waitwatch::api
