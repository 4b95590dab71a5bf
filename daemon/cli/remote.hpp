#pragma once
// `waitwatch --from URL`: a running waitwatchd's view through its JSON API (/api/v1/snapshot
// and /api/v1/alerts), over libcurl (plain HTTP today; HTTPS and basic auth in the URL work
// the day the daemon serves them).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/render.hpp"
#include "cli/snapshot_json.hpp"
#include "core/duration.hpp"
#include "core/result.hpp"

namespace waitwatch::cli {

struct DaemonView {
  SnapshotDocument snapshot;
  std::vector<AlertSummary> alerts;
};

// Pure: the daemon's /api/v1/alerts document -> the firing alerts. Errors name the JSON path.
Result<std::vector<AlertSummary>> alertsFromJson(const nlohmann::json& json);

// The body of a GET, which must answer 200. Errors are one line naming the URL ("connection
// refused", "HTTP 503: no poll has completed yet", a timeout).
Result<std::string> httpGet(const std::string& url, Duration timeout);

// Both documents from `baseUrl` (as parseDaemonUrl returns it), parsed.
Result<DaemonView> fetchDaemonView(const std::string& baseUrl,
                                   Duration timeout = std::chrono::seconds(30));

}  // namespace waitwatch::cli
