// SPDX-License-Identifier: Apache-2.0
#include "service/api.hpp"

#include <malloc.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "api/alerts_json.hpp"
#include "api/snapshot_json.hpp"
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
  // The same document `waitwatch --json` prints (api::snapshotToJson), plus what only the
  // daemon knows: its version and times, CLOSE_WAIT ages, TIME_WAIT created since start, the
  // number of firing alerts. Command lines and executables are left out on purpose: the API
  // shows what the metrics show, and a command line can carry secrets.
  const json header{{"version", kVersion},
                    {"time_unix_seconds", static_cast<double>(view.unixTimeMs) / 1000.0},
                    {"poll_duration_seconds", seconds(view.pollDuration)}};
  const json trailer{{"alerts_firing", view.firing.size()}};
  return api::snapshotToJson(
      *view.snapshot, api::SnapshotJsonOptions{.commandLines = false,
                                               .closeWaitOldest = view.processOldestCloseWait,
                                               .timeWaitCreatedTotal = view.timeWaitCreatedTotal,
                                               .header = &header,
                                               .trailer = &trailer});
}

json alertsJson(const PollView& view) {
  const TimePoint steady = view.snapshot ? view.snapshot->time : TimePoint{};
  return api::alertsToJson(view.firing,
                           api::PollClock{.steady = steady, .unixMs = view.unixTimeMs});
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
