// SPDX-License-Identifier: Apache-2.0
#pragma once
// Rendering: snapshots -> text for a terminal, and the CLI's JSON beyond the shared snapshot
// form (per-socket lines, UDP). Pure; no I/O.
//
// The default view, top to bottom: firing alerts (from a daemon), one row per process that
// holds TCP sockets (sorted by CLOSE_WAIT, then total), the TIME_WAIT groups by destination,
// the totals per state. Ports carry their class as a one-letter mark: 80w (well-known,
// 0-1023), 8080r (registered, 1024-49151), 50123e (ephemeral, 49152-65535).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "api/alerts_json.hpp"
#include "api/snapshot_json.hpp"
#include "cli/options.hpp"
#include "core/snapshot.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch::cli {

struct RenderOptions {
  // Index-aligned with the snapshot's processes: oldest CLOSE_WAIT age (a daemon's view).
  std::span<const SocketAge> closeWaitOldest{};
  TcpStateMask states = 0;             // the --state filter (0: all): which count columns to show
  std::size_t maxTimeWaitGroups = 10;  // per side; the rest is summed in one line
  std::size_t commandWidth = 40;       // COMMAND is cut to this many characters
};

// "8080r": the port and its class mark. `local`: the range of the namespace a local port (or a
// peer's port on loopback) is in: a port the kernel may pick there is ephemeral, 'e'; null for
// a remote port, classed by its IANA range alone (the peer's range is not known here).
std::string portWithClass(std::uint16_t port, const EphemeralRange* local = nullptr);
// "127.0.0.1:8080r", "[::1]:53w"; "*" for port 0 (an unconnected peer).
std::string endpointWithClass(const Endpoint& e, const EphemeralRange* local = nullptr);
// The ephemeral range of namespace `netns` (null for an index outside the snapshot), for a
// local port; for a peer's port the same range when the peer is on loopback (then in the same
// namespace), else null (classed by IANA: the peer's range is not known here).
const EphemeralRange* rangeOf(const Snapshot& snapshot, std::uint32_t netns);
const EphemeralRange* peerRangeOf(const Snapshot& snapshot, std::uint32_t netns,
                                  const Endpoint& peer);
// TIME_WAIT groups, the ones holding the most ports first: client pairs count their live
// connections too (they take ports from the same range).
bool usesMorePorts(const TimeWaitGroup* a, const TimeWaitGroup* b);
// The container's name as an operator knows it (ContainerInfo::displayName), else the unit,
// else "-".
std::string ownerOrDash(const ProcessInfo& info);
// The command line with the directory of the program dropped ("/usr/sbin/nginx -g x" reads
// "nginx -g x"): the program's name is what a cut column must keep.
std::string command(const ProcessInfo& info);
// "2a 1e": CLOSE_WAIT sockets by kind in the KIND column's letters; "-" for none.
std::string kindsCell(const CloseWaitKinds& kinds);
// "nginx[812]".
std::string processName(const ProcessInfo& info);
// "3h12m", "45s", "0s".
std::string shortAge(Duration d);

// The process table: PID, USER, UNIT/CONTAINER, COMMAND, the count columns (CLOSE-WAIT with
// its OLDEST age when known and its KIND: "2a 1e"), LISTEN and its ports. Processes whose shown
// counts are all zero are left out.
std::string renderProcessTable(const Snapshot& snapshot, const RenderOptions& options = {});
// The KIND column's letters, when the table shows one (CLOSE-WAIT among `states`, 0 = all).
std::string closeWaitKindLegend(const Snapshot& snapshot, TcpStateMask states);
// TIME_WAIT groups: client side by (source, destination) with the share of the usable
// ephemeral range; server side by listening endpoint with the listening process.
std::string renderTimeWait(const Snapshot& snapshot, const RenderOptions& options = {});
// One line per namespace (when there are several) and a TOTAL line: the non-zero states.
std::string renderTotals(const Snapshot& snapshot);
// Firing alerts, most severe first.
std::string renderAlerts(std::span<const api::AlertSummary> alerts);

// One line per socket with its owners, like `ss -tanp`: STATE, RECV-Q, SEND-Q, LOCAL, PEER,
// PROCESS (comm[pid],...; "-" for a socket the kernel alone holds, "?" when its owner could not
// be read) and, where known, how long: TIME_WAIT sockets show the time left before the kernel
// frees them.
std::string renderSockets(const Snapshot& snapshot, std::span<const SocketLine> sockets,
                          bool udp = false);
// UDP: one row per process with its UDP sockets and bound ports.
std::string renderUdp(const Snapshot& udp, std::span<const SocketLine> sockets);

// The old first view of `waitwatch`: a row per namespace, a column per state.
std::string renderStateTable(const Snapshot& snapshot);

// --json extras: "sockets" (one object per socket) and "udp".
nlohmann::ordered_json socketsJson(const Snapshot& snapshot, std::span<const SocketLine> sockets,
                                   bool udp = false);
nlohmann::ordered_json udpJson(const Snapshot& udp, std::span<const SocketLine> sockets,
                               bool withSockets);
nlohmann::ordered_json alertsJson(std::span<const api::AlertSummary> alerts);

// "YYYY-MM-DD HH:MM:SS" in local time ("?" when it cannot be converted).
std::string timeOfDay(double unixSeconds);

}  // namespace waitwatch::cli
