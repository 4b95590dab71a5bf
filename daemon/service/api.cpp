// SPDX-License-Identifier: Apache-2.0
#include "service/api.hpp"

#include <malloc.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "cli/snapshot_json.hpp"
#include "waitwatch_version.hpp"

namespace waitwatch {
namespace {

// Keys in the order written (states in the kernel's order), as `waitwatch --json` prints them.
using json = nlohmann::ordered_json;

constexpr std::string_view kTextFormat = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";
// A document this large was built from a tree of small allocations (about 3.7 KB per process,
// 37 MB at 10,000 processes) in this HTTP thread's malloc arena, which glibc keeps once freed.
constexpr std::size_t kTrimAfterBytes = 1 << 20;

double seconds(Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
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
  // The same document `waitwatch --json` prints (cli::snapshotToJson), plus what only the
  // daemon knows: its version and times, CLOSE_WAIT ages, TIME_WAIT created since start, the
  // number of firing alerts. Command lines and executables are left out on purpose: the API
  // shows what the metrics show (issue 8), and a command line can carry secrets.
  std::vector<cli::ProcessAge> ages;
  ages.reserve(view.processOldestCloseWait.size());
  for (const SocketAge& a : view.processOldestCloseWait)
    ages.push_back(cli::ProcessAge{a.age, a.lowerBound});
  const json header{{"version", kVersion},
                    {"time_unix_seconds", static_cast<double>(view.unixTimeMs) / 1000.0},
                    {"poll_duration_seconds", seconds(view.pollDuration)}};
  const json trailer{{"alerts_firing", view.firing.size()}};
  return cli::snapshotToJson(
      *view.snapshot, cli::SnapshotJsonOptions{.commandLines = false,
                                               .closeWaitOldest = ages,
                                               .timeWaitCreatedTotal = view.timeWaitCreatedTotal,
                                               .header = &header,
                                               .trailer = &trailer});
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
      std::string body;
      {
        const json doc = routeRequest(request.method, request.path) == ApiRoute::Snapshot
                             ? snapshotJson(*view)
                             : alertsJson(*view);
        body = doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      }
      // The tree is freed now: hand its pages back rather than keep them for the daemon's life.
      if (body.size() >= kTrimAfterBytes) ::malloc_trim(0);
      return HttpResponse{
          .status = 200, .contentType = std::string(kJson), .body = std::move(body), .allow = {}};
    }
  }
  return text(500, "unreachable\n");
}

}  // namespace waitwatch
