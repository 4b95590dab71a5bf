// SPDX-License-Identifier: Apache-2.0
#include "api/alerts_json.hpp"

#include <cerrno>
#include <cstdint>

#include "api/snapshot_json.hpp"
#include "proc/proc_text.hpp"

namespace waitwatch::api {
namespace {

using json = nlohmann::ordered_json;

double seconds(Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
}

}  // namespace

json alertToJson(const Alert& a, const PollClock& clock) {
  json reasons = json::array();
  for (AlertReason r : a.reasons)
    reasons.push_back(alertReasonName(r));
  json ports = json::array();
  for (const auto& p : a.localPorts)
    ports.push_back({{"port", p.port}, {"count", p.count}});
  json peers = json::array();
  for (const auto& p : a.peers) {
    peers.push_back({{"address", p.endpoint.address.toString()},
                     {"port", p.endpoint.port},
                     {"count", p.count}});
  }
  const auto& g = a.group;
  json j{{"rule", a.rule},
         {"type", ruleTypeName(a.type)},
         {"severity", severityName(a.severity)},
         {"state", alertStateName(a.state)},
         {"key", a.key},
         {"message", a.message},
         {"group",
          {{"kind", groupKindName(g.kind)},
           {"pid", g.pid},
           {"start_time", g.startTime},
           {"comm", g.comm},
           {"user", g.user},
           {"unit", g.unit},
           {"container", g.container},
           {"container_name", g.containerName},
           {"pod_name", g.pod},
           {"pod_namespace", g.podNamespace},
           {"pod_uid", g.podUid},
           {"netns", g.netns},
           {"processes", g.processes}}},
         {"reasons", std::move(reasons)},
         {"count", a.count},
         {"local_ports", std::move(ports)},
         {"peers", std::move(peers)}};
  j["since_unix_seconds"] = clock.unixSeconds(a.since);
  j["fired_at_unix_seconds"] = clock.unixSeconds(a.firedAt);
  if (a.type == RuleType::CloseWait) {
    j["oldest_age_seconds"] = seconds(a.oldestAge);
    j["oldest_age_is_lower_bound"] = a.oldestAgeIsLowerBound;
    j["close_wait"] = {{"total", a.closeWait.total},
                       {"growth", a.closeWait.growth},
                       {"peak", a.closeWait.peak},
                       {"client_side", a.closeWait.clientSide},
                       {"kinds", closeWaitKindsJson(a.closeWait.kinds)}};
    const FdDetails& fds = a.closeWait.fds;
    if (fds.open != 0) {
      json f{{"pid", fds.pid}, {"comm", fds.comm}, {"open", fds.open}, {"max", fds.max}};
      if (fds.forecast && fds.max != 0) {
        f["exhaustion_seconds"] = seconds(fds.forecast->exhaustion);
        f["growth_per_minute"] = fds.forecast->perMinute;
      }
      j["close_wait"]["fds"] = std::move(f);
    }
  } else {
    json tw{{"rate_per_second", a.timeWait.ratePerSecond},
            {"max_time_wait_buckets", a.timeWait.maxTimeWaitBuckets},
            {"overflow_delta", a.timeWait.overflowDelta},
            {"overflow_total", a.timeWait.overflowTotal}};
    if (a.timeWait.closersTracked) {
      // The closer itself is the alert's group (pid, comm, unit, ...).
      tw["closer_time_wait"] = a.timeWait.closerTimeWait;
      tw["closer_rate_per_second"] = a.timeWait.closerRatePerSecond;
      tw["closer_unknown"] = a.timeWait.closerUnknown;
    }
    if (g.kind == GroupKind::Destination) {
      tw["source"] = a.timeWait.source.toString();
      tw["destination"] = a.timeWait.destination.toString();
      tw["port_usage_ratio"] = a.timeWait.portUsageRatio;
      tw["live"] = a.timeWait.live;
      tw["usable_ports"] = a.timeWait.usablePorts;
    }
    j["time_wait"] = std::move(tw);
  }
  return j;
}

json alertsToJson(std::span<const Alert> alerts, const PollClock& clock) {
  json out = json::array();
  for (const Alert& a : alerts)
    out.push_back(alertToJson(a, clock));
  return json{{"time_unix_seconds", static_cast<double>(clock.unixMs) / 1000.0},
              {"alerts", std::move(out)}};
}

Result<std::vector<AlertSummary>> alertsFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("alerts") || !j["alerts"].is_array()) {
    return Error{EBADMSG, "alerts: missing, or not an array"};
  }
  std::vector<AlertSummary> out;
  const auto& alerts = j["alerts"];
  for (std::size_t i = 0; i < alerts.size(); ++i) {
    const auto& a = alerts[i];
    const std::string where = "alerts[" + std::to_string(i) + "]";
    if (!a.is_object()) return Error{EBADMSG, where + ": expected an object"};
    AlertSummary s;
    for (auto [key, member] :
         {std::pair{"rule", &AlertSummary::rule}, std::pair{"severity", &AlertSummary::severity},
          std::pair{"message", &AlertSummary::message}}) {
      if (!a.contains(key) || !a[key].is_string()) {
        return Error{EBADMSG, where + "." + key + ": missing, or not a string"};
      }
      s.*member = printable(a[key].get<std::string>(), 4096);
    }
    if (a.contains("since_unix_seconds")) {
      if (!a["since_unix_seconds"].is_number()) {
        return Error{EBADMSG, where + ".since_unix_seconds: expected a number"};
      }
      s.sinceUnixSeconds = a["since_unix_seconds"].get<double>();
    }
    if (a.contains("group")) {
      const auto& g = a["group"];
      if (!g.is_object()) return Error{EBADMSG, where + ".group: expected an object"};
      if (g.contains("pid")) {
        if (!g["pid"].is_number_integer() || g["pid"].get<std::int64_t>() < 0 ||
            g["pid"].get<std::int64_t>() > INT32_MAX) {
          return Error{EBADMSG, where + ".group.pid: expected a process id"};
        }
        s.pid = static_cast<std::int32_t>(g["pid"].get<std::int64_t>());
      }
      if (g.contains("start_time")) {
        if (!g["start_time"].is_number_unsigned() &&
            !(g["start_time"].is_number_integer() && g["start_time"].get<std::int64_t>() >= 0)) {
          return Error{EBADMSG, where + ".group.start_time: expected a non-negative integer"};
        }
        s.startTime = g["start_time"].get<std::uint64_t>();
      }
      for (auto [key, member] :
           {std::pair{"kind", &AlertSummary::groupKind}, std::pair{"unit", &AlertSummary::unit},
            std::pair{"container", &AlertSummary::container},
            std::pair{"container_name", &AlertSummary::containerName},
            std::pair{"pod_name", &AlertSummary::pod},
            std::pair{"pod_namespace", &AlertSummary::podNamespace},
            std::pair{"pod_uid", &AlertSummary::podUid}}) {
        if (!g.contains(key)) continue;
        if (!g[key].is_string())
          return Error{EBADMSG, where + ".group." + key + ": expected a string"};
        s.*member = printable(g[key].get<std::string>(), 256);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace waitwatch::api
