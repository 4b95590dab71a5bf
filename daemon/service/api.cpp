#include "service/api.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "waitwatch_version.hpp"

namespace waitwatch {
namespace {

// Keys in the order written (states in the kernel's order), as `waitwatch --json` prints them.
using json = nlohmann::ordered_json;

constexpr std::string_view kTextFormat = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";

double seconds(Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
}

json statesJson(const StateCounts& c) {
  json j = json::object();
  for (TcpState s : kAllTcpStates)
    j[std::string(stateName(s))] = c[s];
  return j;
}

std::string netnsLabel(const Snapshot& s, std::uint32_t index) {
  return index < s.namespaces.size() ? s.namespaces[index].ref.label() : std::string();
}

// Steady-clock times become Unix times through the poll's own pair of clocks.
double unixSeconds(const PollView& view, TimePoint t) {
  const auto offset = std::chrono::duration_cast<Duration>(t - view.snapshot->time);
  return static_cast<double>(view.unixTimeMs + offset.count()) / 1000.0;
}

HttpResponse text(unsigned status, std::string body) {
  return HttpResponse{.status = status,
                      .contentType = "text/plain; charset=utf-8",
                      .body = std::move(body),
                      .allow = {}};
}

}  // namespace

ApiRoute routeRequest(std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") return ApiRoute::MethodNotAllowed;
  if (path == "/metrics") return ApiRoute::Metrics;
  if (path == "/api/v1/snapshot") return ApiRoute::Snapshot;
  if (path == "/api/v1/alerts") return ApiRoute::Alerts;
  return ApiRoute::NotFound;
}

json snapshotJson(const PollView& view) {
  const Snapshot& s = *view.snapshot;
  json j;
  j["version"] = kVersion;
  j["time_unix_seconds"] = static_cast<double>(view.unixTimeMs) / 1000.0;
  j["poll_interval_seconds"] = seconds(s.pollInterval);
  j["poll_duration_seconds"] = seconds(view.pollDuration);
  j["states"] = statesJson(s.totals());

  json namespaces = json::array();
  for (std::size_t i = 0; i < s.namespaces.size(); ++i) {
    const auto& ns = s.namespaces[i];
    json n{{"inode", ns.ref.inode},
           {"name", ns.ref.name.empty() ? json(nullptr) : json(ns.ref.name)},
           {"label", ns.ref.label()},
           {"states", statesJson(ns.states)},
           {"time_wait_created", ns.timeWaitCreated},
           {"max_time_wait_buckets", ns.maxTimeWaitBuckets},
           {"ephemeral_ports",
            {{"low", ns.ephemeral.low()},
             {"high", ns.ephemeral.high()},
             {"usable", ns.ephemeral.usableCount()}}}};
    if (i < view.timeWaitCreatedTotal.size()) {
      n["time_wait_created_total"] = view.timeWaitCreatedTotal[i];
    }
    if (ns.kernel.valid) {
      n["kernel"] = {{"TCPTimeWaitOverflow", ns.kernel.timeWaitOverflow},
                     {"TW", ns.kernel.timeWaitRecycled},
                     {"TCPAbortOnClose", ns.kernel.abortOnClose},
                     {"TCPAbortOnTimeout", ns.kernel.abortOnTimeout},
                     {"ListenOverflows", ns.kernel.listenOverflows},
                     {"ListenDrops", ns.kernel.listenDrops},
                     {"ActiveOpens", ns.kernel.activeOpens},
                     {"PassiveOpens", ns.kernel.passiveOpens}};
    }
    namespaces.push_back(std::move(n));
  }
  j["namespaces"] = std::move(namespaces);

  // Command lines and executables are left out on purpose: the API shows what the metrics
  // show (issue 8), and a command line can carry secrets.
  json processes = json::array();
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    const auto& p = s.processes[i];
    json item{{"pid", p.info.key.pid},
              {"start_time", p.info.key.startTime},
              {"comm", p.info.comm},
              {"user", p.info.user},
              {"uid", p.info.uid},
              {"unit", p.info.unit},
              {"container", p.info.container.shortName()},
              {"netns", netnsLabel(s, p.netns)},
              {"states", statesJson(p.states)},
              {"listen_ports", p.listenPorts}};
    if (i < view.processOldestCloseWait.size() && p.states[TcpState::CloseWait] > 0) {
      item["close_wait_oldest_age_seconds"] = seconds(view.processOldestCloseWait[i].age);
      item["close_wait_oldest_age_is_lower_bound"] = view.processOldestCloseWait[i].lowerBound;
    }
    processes.push_back(std::move(item));
  }
  j["processes"] = std::move(processes);

  json timeWait = json::array();
  for (const auto& g : s.timeWait) {
    json item{{"netns", netnsLabel(s, g.netns)},
              {"side", g.serverSide ? "server" : "client"},
              {"time_wait", g.timeWait},
              {"live", g.live},
              {"created", g.created}};
    if (g.serverSide) {
      item["local"] = g.destination.toString();
      if (g.listener < s.processes.size()) {
        item["listener"] = {{"pid", s.processes[g.listener].info.key.pid},
                            {"comm", s.processes[g.listener].info.comm}};
      }
    } else {
      item["source"] = g.source.toString();
      item["destination"] = g.destination.toString();
      item["port_usage_ratio"] = g.portUsageRatio;
    }
    timeWait.push_back(std::move(item));
  }
  j["time_wait"] = std::move(timeWait);
  j["unattributed"] = {{"no_permission", s.unattributedNoPermission},
                       {"vanished", s.unattributedVanished}};
  j["alerts_firing"] = view.firing.size();
  return j;
}

json alertJson(const Alert& a, const PollView& view) {
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
           {"netns", g.netns},
           {"processes", g.processes}}},
         {"reasons", std::move(reasons)},
         {"count", a.count},
         {"local_ports", std::move(ports)},
         {"peers", std::move(peers)}};
  if (view.snapshot) {
    j["since_unix_seconds"] = unixSeconds(view, a.since);
    j["fired_at_unix_seconds"] = unixSeconds(view, a.firedAt);
  }
  if (a.type == RuleType::CloseWait) {
    j["oldest_age_seconds"] = seconds(a.oldestAge);
    j["oldest_age_is_lower_bound"] = a.oldestAgeIsLowerBound;
    j["close_wait"] = {{"total", a.closeWait.total},
                       {"growth", a.closeWait.growth},
                       {"peak", a.closeWait.peak},
                       {"client_side", a.closeWait.clientSide}};
  } else {
    json tw{{"rate_per_second", a.timeWait.ratePerSecond},
            {"max_time_wait_buckets", a.timeWait.maxTimeWaitBuckets},
            {"overflow_delta", a.timeWait.overflowDelta},
            {"overflow_total", a.timeWait.overflowTotal}};
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

json alertsJson(const PollView& view) {
  json alerts = json::array();
  for (const auto& a : view.firing)
    alerts.push_back(alertJson(a, view));
  return json{{"time_unix_seconds", static_cast<double>(view.unixTimeMs) / 1000.0},
              {"alerts", std::move(alerts)}};
}

DaemonApi::DaemonApi(std::shared_ptr<const PollMetrics> poll,
                     std::vector<std::shared_ptr<const prometheus::Collectable>> collectables)
    : poll_(std::move(poll)), collectables_(std::move(collectables)) {}

std::string DaemonApi::renderMetrics() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& c : collectables_) {
    auto f = c->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

HttpResponse DaemonApi::handle(const HttpRequest& request) const {
  switch (routeRequest(request.method, request.path)) {
    case ApiRoute::MethodNotAllowed: {
      HttpResponse r = text(405, "method not allowed: only GET and HEAD are served\n");
      r.allow = "GET, HEAD";
      return r;
    }
    case ApiRoute::NotFound:
      return text(404, "not found: try /metrics, /api/v1/snapshot or /api/v1/alerts\n");
    case ApiRoute::Metrics:
      return HttpResponse{.status = 200,
                          .contentType = std::string(kTextFormat),
                          .body = renderMetrics(),
                          .allow = {}};
    case ApiRoute::Snapshot:
    case ApiRoute::Alerts: {
      const auto view = poll_->view();
      if (!view) return text(503, "no poll has completed yet\n");
      const json body = routeRequest(request.method, request.path) == ApiRoute::Snapshot
                            ? snapshotJson(*view)
                            : alertsJson(*view);
      return HttpResponse{.status = 200,
                          .contentType = std::string(kJson),
                          .body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                          .allow = {}};
    }
  }
  return text(500, "unreachable\n");
}

}  // namespace waitwatch
