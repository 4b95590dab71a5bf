// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the daemon serves over HTTP: /metrics (Prometheus text format), /api/v1/snapshot and
// /api/v1/alerts (JSON). Everything is rendered from the latest published poll.
#include <prometheus/collectable.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "service/exporter.hpp"
#include "service/http_server.hpp"

namespace waitwatch {

enum class ApiRoute : std::uint8_t { Metrics, Snapshot, Alerts, NotFound, MethodNotAllowed };

// Pure: which endpoint a request line names. Only GET and HEAD are served; paths match exactly
// (no trailing slash, no prefix match), query strings are not part of `path`.
ApiRoute routeRequest(std::string_view method, std::string_view path);

// The snapshot as JSON: the keys `waitwatch --json` prints (states, namespaces, processes, ...)
// plus what only the daemon knows (CLOSE_WAIT ages, TIME_WAIT created since start).
nlohmann::ordered_json snapshotJson(const PollView& view);
// The firing alerts with their details (api::alertsToJson at the poll's time).
nlohmann::ordered_json alertsJson(const PollView& view);

class DaemonApi {
 public:
  // `collectables` are serialized in order for /metrics; `poll` provides the JSON views.
  DaemonApi(std::shared_ptr<const PollMetrics> poll,
            std::vector<std::shared_ptr<const prometheus::Collectable>> collectables);

  HttpResponse handle(const HttpRequest& request) const;
  [[nodiscard]] std::string renderMetrics() const;

 private:
  std::shared_ptr<const PollMetrics> poll_;
  std::vector<std::shared_ptr<const prometheus::Collectable>> collectables_;
};

}  // namespace waitwatch
