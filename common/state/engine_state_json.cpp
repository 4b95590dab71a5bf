// SPDX-License-Identifier: Apache-2.0
#include "state/engine_state_json.hpp"

#include <cerrno>
#include <cmath>
#include <limits>
#include <string>

#include "rules/config_json.hpp"

namespace waitwatch::state {
namespace {

using json = nlohmann::json;

// The reader throws this to its entry point, which turns it into the Error it returns.
struct Bad {
  std::string what;
};

// One value of the document with its path, for errors.
class In {
 public:
  In(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const { throw Bad{path_ + ": " + what}; }

  [[nodiscard]] In operator[](const char* key) const {
    if (!j_.is_object()) fail("expected an object");
    const auto it = j_.find(key);
    if (it == j_.end()) throw Bad{path_ + "." + key + ": missing"};
    return In(*it, path_ + "." + key);
  }
  [[nodiscard]] bool has(const char* key) const { return j_.is_object() && j_.contains(key); }

  template <typename F>
  void each(F&& f) const {
    if (!j_.is_array()) fail("expected an array");
    for (std::size_t i = 0; i < j_.size(); ++i)
      f(In(j_[i], path_ + "[" + std::to_string(i) + "]"));
  }

  [[nodiscard]] std::uint64_t u64(
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const {
    if (!j_.is_number_unsigned() || j_.get<std::uint64_t>() > max) {
      fail("expected an integer from 0 to " + std::to_string(max));
    }
    return j_.get<std::uint64_t>();
  }
  [[nodiscard]] std::int64_t i64() const {
    if (!j_.is_number_integer()) fail("expected an integer");
    if (j_.is_number_unsigned() &&
        j_.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail("out of range");
    }
    return j_.get<std::int64_t>();
  }
  [[nodiscard]] std::int32_t i32() const {
    const std::int64_t v = i64();
    if (v < std::numeric_limits<std::int32_t>::min() ||
        v > std::numeric_limits<std::int32_t>::max()) {
      fail("out of range");
    }
    return static_cast<std::int32_t>(v);
  }
  [[nodiscard]] double number() const {
    if (!j_.is_number() || !std::isfinite(j_.get<double>())) fail("expected a number");
    return j_.get<double>();
  }
  [[nodiscard]] bool boolean() const {
    if (!j_.is_boolean()) fail("expected true or false");
    return j_.get<bool>();
  }
  [[nodiscard]] std::string text() const {
    if (!j_.is_string()) fail("expected a string");
    return j_.get<std::string>();
  }
  template <typename E>
  [[nodiscard]] E name(std::optional<E> (*parse)(std::string_view)) const {
    const auto e = parse(text());
    if (!e) fail(quoted() + " is not a name this waitwatchd knows");
    return *e;
  }
  [[nodiscard]] IpAddress address() const {
    const std::string t = text();
    if (t.empty()) return IpAddress{};
    const auto a = IpAddress::parse(t);
    if (!a) fail(quoted() + " is not an IP address");
    return *a;
  }

 private:
  // The file's text as a printable, bounded quote: errors go to the log.
  [[nodiscard]] std::string quoted() const {
    return config_json::jsonQuote(config_json::shorten(text(), config_json::kMaxQuotedKey));
  }

  const json& j_;
  std::string path_;
};

json addressJson(const IpAddress& a) {
  return a.family == AddressFamily::Unspec ? std::string() : a.toString();
}
json endpointJson(const Endpoint& e) {
  return {{"address", addressJson(e.address)}, {"port", e.port}};
}
Endpoint readEndpoint(const In& in) {
  return Endpoint{in["address"].address(), static_cast<std::uint16_t>(in["port"].u64(65535))};
}

json reasonsJson(const std::vector<AlertReason>& reasons) {
  json out = json::array();
  for (AlertReason r : reasons)
    out.push_back(alertReasonName(r));
  return out;
}
std::vector<AlertReason> readReasons(const In& in) {
  std::vector<AlertReason> out;
  in.each([&](const In& r) { out.push_back(r.name(&parseAlertReason)); });
  return out;
}

json samplesJson(const std::vector<SavedSample>& samples) {
  json out = json::array();
  for (const SavedSample& s : samples)
    out.push_back(json::array({s.ms, s.value}));
  return out;
}
std::vector<SavedSample> readSamples(const In& in) {
  std::vector<SavedSample> out;
  in.each([&](const In& s) {
    SavedSample v;
    int field = 0;
    s.each([&](const In& x) {
      if (field == 0) v.ms = x.i64();
      if (field == 1) v.value = x.u64();
      ++field;
    });
    if (field != 2) s.fail("expected [milliseconds, value]");
    out.push_back(v);
  });
  return out;
}

json alertJson(const Alert& a) {
  const AlertGroup& g = a.group;
  json ports = json::array();
  for (const PortCount& p : a.localPorts)
    ports.push_back({{"port", p.port}, {"count", p.count}});
  json peers = json::array();
  for (const PeerCount& p : a.peers)
    peers.push_back({{"endpoint", endpointJson(p.endpoint)}, {"count", p.count}});
  json kinds = json::array();
  for (std::uint32_t c : a.closeWait.kinds.counts)
    kinds.push_back(c);
  const FdDetails& f = a.closeWait.fds;
  json fds{{"pid", f.pid}, {"comm", f.comm}, {"open", f.open}, {"max", f.max}};
  if (f.forecast) {
    fds["per_minute"] = f.forecast->perMinute;
    fds["exhaustion_ms"] = f.forecast->exhaustion.count();
  }
  const TimeWaitDetails& t = a.timeWait;
  return {{"severity", severityName(a.severity)},
          {"group",
           {{"kind", groupKindName(g.kind)},
            {"pid", g.pid},
            {"start_time", g.startTime},
            {"comm", g.comm},
            {"user", g.user},
            {"unit", g.unit},
            {"container", g.container},
            {"container_name", g.containerName},
            {"pod", g.pod},
            {"pod_namespace", g.podNamespace},
            {"pod_uid", g.podUid},
            {"netns", g.netns},
            {"netns_inode", g.netnsInode},
            {"processes", g.processes}}},
          {"reasons", reasonsJson(a.reasons)},
          {"count", a.count},
          {"oldest_age_ms", a.oldestAge.count()},
          {"oldest_age_is_lower_bound", a.oldestAgeIsLowerBound},
          {"local_ports", std::move(ports)},
          {"peers", std::move(peers)},
          {"close_wait",
           {{"total", a.closeWait.total},
            {"growth", a.closeWait.growth},
            {"peak", a.closeWait.peak},
            {"client_side", a.closeWait.clientSide},
            {"kinds", std::move(kinds)},
            {"fds", std::move(fds)}}},
          {"time_wait",
           {{"source", addressJson(t.source)},
            {"destination", endpointJson(t.destination)},
            {"port_usage_ratio", t.portUsageRatio},
            {"live", t.live},
            {"usable_ports", t.usablePorts},
            {"rate_per_second", t.ratePerSecond},
            {"max_time_wait_buckets", t.maxTimeWaitBuckets},
            {"overflow_delta", t.overflowDelta},
            {"overflow_total", t.overflowTotal},
            {"newest_server_side", t.newestServerSide},
            {"newest_at", endpointJson(t.newestAt)},
            {"newest", t.newest},
            {"closers_tracked", t.closersTracked},
            {"closer_time_wait", t.closerTimeWait},
            {"closer_rate_per_second", t.closerRatePerSecond},
            {"closer_unknown", t.closerUnknown}}}};
}

Alert readAlert(const In& in) {
  Alert a;
  a.severity = in["severity"].name(&parseSeverity);
  const In g = in["group"];
  a.group.kind = g["kind"].name(&parseGroupKind);
  a.group.pid = g["pid"].i32();
  a.group.startTime = g["start_time"].u64();
  a.group.comm = g["comm"].text();
  a.group.user = g["user"].text();
  a.group.unit = g["unit"].text();
  a.group.container = g["container"].text();
  // Not in files of versions that did not name containers.
  for (auto [key, member] :
       {std::pair{"container_name", &AlertGroup::containerName}, std::pair{"pod", &AlertGroup::pod},
        std::pair{"pod_namespace", &AlertGroup::podNamespace},
        std::pair{"pod_uid", &AlertGroup::podUid}}) {
    if (g.has(key)) a.group.*member = g[key].text();
  }
  a.group.netns = g["netns"].text();
  a.group.netnsInode = g["netns_inode"].u64();
  a.group.processes = static_cast<std::uint32_t>(g["processes"].u64(0xffffffffu));
  a.reasons = readReasons(in["reasons"]);
  a.count = in["count"].u64();
  a.oldestAge = Duration(in["oldest_age_ms"].i64());
  a.oldestAgeIsLowerBound = in["oldest_age_is_lower_bound"].boolean();
  in["local_ports"].each([&](const In& p) {
    a.localPorts.push_back(
        PortCount{static_cast<std::uint16_t>(p["port"].u64(65535)), p["count"].u64()});
  });
  in["peers"].each([&](const In& p) {
    a.peers.push_back(PeerCount{readEndpoint(p["endpoint"]), p["count"].u64()});
  });

  const In cw = in["close_wait"];
  a.closeWait.total = cw["total"].u64();
  a.closeWait.growth = cw["growth"].u64();
  a.closeWait.peak = cw["peak"].u64();
  a.closeWait.clientSide = cw["client_side"].u64();
  std::size_t k = 0;
  cw["kinds"].each([&](const In& c) {
    if (k == kCloseWaitKindCount) c.fail("more kinds than this waitwatchd knows");
    a.closeWait.kinds.counts[k++] = static_cast<std::uint32_t>(c.u64(0xffffffffu));
  });
  const In f = cw["fds"];
  a.closeWait.fds.pid = f["pid"].i32();
  a.closeWait.fds.comm = f["comm"].text();
  a.closeWait.fds.open = f["open"].u64();
  a.closeWait.fds.max = f["max"].u64();
  if (f.has("per_minute")) {
    a.closeWait.fds.forecast =
        FdForecast{f["per_minute"].number(), Duration(f["exhaustion_ms"].i64())};
  }

  const In t = in["time_wait"];
  TimeWaitDetails& d = a.timeWait;
  d.source = t["source"].address();
  d.destination = readEndpoint(t["destination"]);
  d.portUsageRatio = t["port_usage_ratio"].number();
  d.live = t["live"].u64();
  d.usablePorts = static_cast<std::uint32_t>(t["usable_ports"].u64(0xffffffffu));
  d.ratePerSecond = t["rate_per_second"].number();
  d.maxTimeWaitBuckets = static_cast<std::uint32_t>(t["max_time_wait_buckets"].u64(0xffffffffu));
  d.overflowDelta = t["overflow_delta"].u64();
  d.overflowTotal = t["overflow_total"].u64();
  d.newestServerSide = t["newest_server_side"].boolean();
  d.newestAt = readEndpoint(t["newest_at"]);
  d.newest = t["newest"].u64();
  d.closersTracked = t["closers_tracked"].boolean();
  d.closerTimeWait = t["closer_time_wait"].u64();
  d.closerRatePerSecond = t["closer_rate_per_second"].number();
  d.closerUnknown = t["closer_unknown"].u64();
  return a;
}

json groupJson(const SavedGroup& g) {
  json j{{"key", g.key},
         {"firing", g.firing},
         {"since_ms", g.sinceMs},
         {"fired_at_ms", g.firedAtMs},
         {"last_notified_ms", g.lastNotifiedMs},
         {"peak", g.peak},
         {"fired_reasons", reasonsJson(g.firedReasons)},
         {"history", samplesJson(g.history)}};
  if (g.pendingSinceMs) j["pending_since_ms"] = *g.pendingSinceMs;
  if (g.falseSinceMs) j["false_since_ms"] = *g.falseSinceMs;
  if (g.alert) j["alert"] = alertJson(*g.alert);
  return j;
}

SavedGroup readGroup(const In& in) {
  SavedGroup g;
  g.key = in["key"].text();
  g.firing = in["firing"].boolean();
  g.sinceMs = in["since_ms"].i64();
  g.firedAtMs = in["fired_at_ms"].i64();
  g.lastNotifiedMs = in["last_notified_ms"].i64();
  g.peak = in["peak"].u64();
  g.firedReasons = readReasons(in["fired_reasons"]);
  g.history = readSamples(in["history"]);
  if (in.has("pending_since_ms")) g.pendingSinceMs = in["pending_since_ms"].i64();
  if (in.has("false_since_ms")) g.falseSinceMs = in["false_since_ms"].i64();
  if (in.has("alert")) g.alert = readAlert(in["alert"]);
  return g;
}

}  // namespace

json engineStateToJson(const EngineState& state) {
  json rules = json::array();
  for (const SavedRule& r : state.rules) {
    json groups = json::array();
    for (const SavedGroup& g : r.groups)
      groups.push_back(groupJson(g));
    rules.push_back(
        {{"name", r.name}, {"type", ruleTypeName(r.type)}, {"groups", std::move(groups)}});
  }
  json fds = json::array();
  for (const SavedFdHistory& h : state.fdHistories) {
    fds.push_back({{"pid", h.process.pid},
                   {"start_time", h.process.startTime},
                   {"samples", samplesJson(h.samples)}});
  }
  return {{"rules", std::move(rules)},
          {"fd_histories", std::move(fds)},
          {"tcp_memory", samplesJson(state.tcpMemory)}};
}

Result<EngineState> engineStateFromJson(const json& j) {
  try {
    const In root(j, "state");
    EngineState out;
    root["rules"].each([&](const In& r) {
      SavedRule rule;
      rule.name = r["name"].text();
      rule.type = r["type"].name(&parseRuleType);
      r["groups"].each([&](const In& g) { rule.groups.push_back(readGroup(g)); });
      out.rules.push_back(std::move(rule));
    });
    root["fd_histories"].each([&](const In& h) {
      out.fdHistories.push_back(SavedFdHistory{ProcessKey{h["pid"].i32(), h["start_time"].u64()},
                                               readSamples(h["samples"])});
    });
    if (root.has("tcp_memory")) out.tcpMemory = readSamples(root["tcp_memory"]);
    return out;
  } catch (const Bad& bad) {
    return Error{EBADMSG, bad.what};
  }
}

}  // namespace waitwatch::state
