// SPDX-License-Identifier: Apache-2.0
#pragma once
// The view an operator asked for: a Snapshot narrowed by --state, --port, --pid and --unit.
// Pure: snapshots and socket lists in, a smaller snapshot out, rendered like any other.
#include <cstdint>
#include <span>
#include <vector>

#include "api/alerts_json.hpp"
#include "cli/options.hpp"
#include "core/snapshot.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch::cli {

struct FilteredSnapshot {
  Snapshot snapshot;
  std::vector<SocketLine> sockets;    // the matching sockets, indices into `snapshot`
  std::vector<std::uint32_t> origin;  // per process of `snapshot`: its index in the input
};

// Does process `info` belong to one of `units`: a systemd unit ("nginx.service", or "nginx"
// for a service), or a container (its short name "docker:0123456789ab", its id or an id
// prefix of at least 4 characters, or its Kubernetes pod uid).
bool matchesUnit(const ProcessInfo& info, std::span<const std::string> units);

// Does process `info` pass the filters on names the runtimes' files give: --container (the
// container's name, "runtime:name", its short name, its id or an id prefix of at least 4
// characters), --pod (a Kubernetes pod's name or uid) and --namespace (its namespace). An
// empty list passes every process.
bool matchesContainerFilters(const ProcessInfo& info, const Filter& filter);

// With every socket of the snapshot (`lines`, as the aggregator keeps them): exact. A socket
// matches when its state is selected, its local or remote port is one of the ports, and one of
// its owners is selected; a TIME_WAIT socket has no owner and matches an owner filter only on
// the listening port of a selected process, and a port filter by the group's destination port
// (the remote port on the client side, the listening port on the server side), so that the
// TIME_WAIT groups kept add up to the TIME_WAIT sockets counted. Namespace totals count each
// matching socket once; process rows count it for each selected owner. Processes with no
// matching socket are dropped, except listeners of kept TIME_WAIT groups.
FilteredSnapshot filterWithSockets(const Snapshot& snapshot, std::span<const SocketLine> lines,
                                   const Filter& filter);

// Without a socket list (a daemon's snapshot): --state and the owner filters at the level of
// process counts. Exact for --state; with --pid or --unit the totals are the sum of the
// selected processes, so a socket two of them share counts twice. Ports cannot be filtered
// this way (the caller rejects --port).
FilteredSnapshot filterCounts(const Snapshot& snapshot, const Filter& filter);

// A daemon's firing alerts split by the owner filters (--pid, --unit), by what each alert's
// group is: a process alert stays when its process passes the filters as a process row would
// (pid and start time, unit or container); a unit or container alert when the filters name it,
// or when it holds a process --pid selects (`selected`: the snapshot as filterCounts leaves it);
// alerts about destinations, namespaces or unattributed sockets are about no process. The
// others are only counted. Without owner filters every alert stays.
struct AlertSelection {
  std::vector<api::AlertSummary> about;
  std::size_t elsewhere = 0;
};
AlertSelection selectAlerts(std::vector<api::AlertSummary> alerts, const Filter& filter,
                            const Snapshot& selected);

}  // namespace waitwatch::cli
