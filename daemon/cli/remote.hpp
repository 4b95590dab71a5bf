// SPDX-License-Identifier: Apache-2.0
#pragma once
// `waitwatch --from URL`: a running waitwatchd's view through its JSON API (/api/v1/snapshot
// and /api/v1/alerts), over libcurl: HTTP, or HTTPS (--cacert) with basic auth (--user, the
// password from --password-file or $WAITWATCH_PASSWORD) when the daemon's web section asks.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/alerts_json.hpp"
#include "api/snapshot_json.hpp"
#include "cli/options.hpp"
#include "cli/render.hpp"
#include "core/duration.hpp"
#include "core/result.hpp"

namespace waitwatch::cli {

struct DaemonView {
  api::SnapshotDocument snapshot;
  std::vector<api::AlertSummary> alerts;
};

// How to reach a protected daemon.
struct RemoteAccess {
  std::string cacert;    // empty: the system's CAs
  std::string user;      // empty: no authentication
  std::string password;  // with `user`
};

// The access CliOptions ask for, the password read from --password-file (its first line) or
// else $WAITWATCH_PASSWORD. Errors name the file or say where the password goes.
Result<RemoteAccess> remoteAccess(const CliOptions& options);

// The body of a GET, which must answer 200. Errors are one line naming the URL ("connection
// refused", "HTTP 503: no poll has completed yet", a timeout, "HTTP 401: ...").
Result<std::string> httpGet(const std::string& url, Duration timeout,
                            const RemoteAccess& access = {});

// Both documents from `baseUrl` (as parseDaemonUrl returns it), parsed.
Result<DaemonView> fetchDaemonView(const std::string& baseUrl,
                                   Duration timeout = std::chrono::seconds(30),
                                   const RemoteAccess& access = {});
// The same for `options.from`, with remoteAccess(options).
Result<DaemonView> fetchDaemonView(const CliOptions& options,
                                   Duration timeout = std::chrono::seconds(30));

}  // namespace waitwatch::cli
