// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one JSON form of a Snapshot, shared by `waitwatch --json` and the daemon's
// /api/v1/snapshot (schema: docs/api/snapshot.schema.json), and its reader (`waitwatch --from`
// turns the daemon's JSON back into a Snapshot and renders it with the same code as a local one).
// Pure: values in, values out.
//
// {"states": {all eleven state names: count},
//  "namespaces": [{"inode", "name", "label", "states", "time_wait_created",
//                  "time_wait_window_seconds",
//                  "max_time_wait_buckets", "ephemeral_ports": {"low", "high", "usable"},
//                  "tcp_hash": {"buckets", "shared_with_host"}, "kernel": {...}}],
//  "processes": [{"pid", "start_time", "comm", "user", "uid", "unit", "container",
//                 "container_id", "pod", "netns", "states", "listen_ports",
//                 "listen": [{"port", "class"}]}],
//  "time_wait": [{"netns", "side", "time_wait", "live", "created", ...}],
//  "unattributed": {"no_permission", "vanished"}}
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/duration.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"

namespace waitwatch::api {

struct SnapshotJsonOptions {
  // Command lines and executables per process. The daemon's API leaves them out (a command
  // line can carry secrets, and the API shows what the metrics show); the local CLI has them.
  bool commandLines = false;
  // Index-aligned with Snapshot::processes; empty when unknown. Written for processes that
  // hold CLOSE_WAIT sockets.
  std::span<const SocketAge> closeWaitOldest{};
  // Index-aligned with Snapshot::namespaces: TIME_WAIT sockets created since the daemon
  // started; empty when unknown.
  std::span<const std::uint64_t> timeWaitCreatedTotal{};
  // Keys written before "states" (the daemon's version and times) and after "unattributed".
  const nlohmann::ordered_json* header = nullptr;
  const nlohmann::ordered_json* trailer = nullptr;
};

// {"ESTABLISHED": n, "SYN_SENT": n, ... all eleven states, in the kernel's order}
nlohmann::ordered_json stateCountsJson(const StateCounts& counts);
// {"abandoned": n, "eof_not_closed": n, "unread_data": n}
nlohmann::ordered_json closeWaitKindsJson(const CloseWaitKinds& kinds);

nlohmann::ordered_json snapshotToJson(const Snapshot& snapshot,
                                      const SnapshotJsonOptions& options = {});

// What snapshotFromJson recovers beside the Snapshot.
struct SnapshotDocument {
  Snapshot snapshot;
  std::vector<SocketAge> closeWaitOldest;  // index-aligned with processes (zero when absent)
  bool hasAges = false;                    // any process carried an age
  std::string version;                     // "" when absent
  double timeUnixSeconds = 0;              // 0 when absent
};

// Reads what snapshotToJson writes. Keys it does not know are ignored (a newer daemon may add
// some); a missing or mistyped key it needs gives an Error naming its path
// ("processes[3].states.CLOSE_WAIT: expected a non-negative integer").
Result<SnapshotDocument> snapshotFromJson(const nlohmann::json& json);

}  // namespace waitwatch::api
