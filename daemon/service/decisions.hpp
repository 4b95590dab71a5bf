// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the daemon decides, apart from doing it: pure functions of values, so that a reload's
// outcome, the watchdog's verdict or a counter's next value is tested without root, threads,
// sockets or a service manager. daemon.cpp performs what they decide.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/duration.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "service/poll_view.hpp"
#include "service/privileges.hpp"
#include "service/service_config.hpp"
#include "service/tls.hpp"

namespace waitwatch {

// "48213 sockets, 3 processes with CLOSE_WAIT, 1 alert firing": the STATUS= line.
std::string statusLine(const Snapshot& snapshot, std::size_t alertsFiring);

// Whether the loop may tell the watchdog it is well: a poll ended within two intervals and a
// second. A loop that still wakes but no longer polls (a timer that stopped) is not well, and
// the watchdog must be let to fire.
bool pollsProgressing(std::uint64_t nowUsec, std::uint64_t lastPollEndUsec, Duration interval);

// What the loop tells the service manager's watchdog each time it wakes: a ping at most every
// quarter of the watchdog's period while polls progress; nothing once they stop, so that the
// manager's watchdog fires and restarts the daemon (said once, when it starts).
class WatchdogGate {
 public:
  enum class Action : std::uint8_t { Nothing, Ping, StartWithholding };

  // Then `step` at each wake-up; `force` pings now (after a reload, say) if all is well.
  Action step(std::uint64_t nowUsec, std::uint64_t periodUsec, std::uint64_t lastPollEndUsec,
              Duration interval, bool force);

 private:
  std::uint64_t lastPingUsec_ = 0;
  bool withheld_ = false;
};

// waitwatch_time_wait_created_total per namespace: the totals so far (by namespace inode) plus
// this poll's; a namespace that went away is forgotten, one that came starts from this poll.
struct TimeWaitCreatedTotals {
  std::unordered_map<std::uint64_t, std::uint64_t> byInode;
  std::vector<std::uint64_t> totals;  // index-aligned with the snapshot's namespaces
};
TimeWaitCreatedTotals addTimeWaitCreated(
    const std::unordered_map<std::uint64_t, std::uint64_t>& before,
    const std::vector<NetnsEntry>& namespaces);

// The `unit` label of a process's series: empty in a container, whose unit is the runtime's
// scope for that container ("cri-containerd-<id>.scope"), a new series at every restart that
// says no more than `container`.
std::string unitLabel(const std::string& unit, bool inContainer);

// The closer group of TIME_WAIT sockets charged to a closer (labels empty for an unknown one).
CloserGroup closerGroup(const Snapshot& s, const TimeWaitByCloser& t, bool includePid);

// waitwatch_time_wait_closed_total per closer group: each poll adds the TIME_WAIT sockets its
// dump saw enter since the last (created) to their closer's group. A group that closed nothing
// for `forgetAfter` is forgotten (a counter may start again from zero), and at most
// `maxGroups` are kept, the most recently active, so that short-lived closers (a script
// running curl in a loop, each with its own pid) cannot grow the map without bound.
struct ClosedTotal {
  std::uint64_t total = 0;
  TimePoint lastIncrease{};
};
void addTimeWaitClosed(std::map<CloserGroup, ClosedTotal>& totals, const Snapshot& snapshot,
                       bool includePid, TimePoint now, Duration forgetAfter, std::size_t maxGroups);

// What a reload does with a configuration that loaded (loadConfig checked the file, the
// certificate and the key). The parts a running daemon cannot change are kept as they are,
// each with a line for the log.
struct ReloadPlan {
  std::optional<Error> rejected;  // the file is refused as a whole: nothing of it applies
  ServiceConfig config;           // what to run on (when not rejected)
  bool newSource = false;         // the namespaces changed: build a new snapshot source
  bool intervalChanged = false;   // re-arm the timer
  enum class Tls : std::uint8_t {
    Unchanged,
    Renew,         // serve the new certificate and key from the next handshake
    NeedsRestart,  // on, off or another min_version: kept as it is (config.web.tls too)
  } tls = Tls::Unchanged;
  std::vector<std::pair<int, std::string>> logs;  // (syslog priority, line)
};
// `droppedAtStart`: capabilities given up at start-up, which no reload can get back.
// `servedTls`: what the listener serves now (nullopt: plain HTTP); `newTls`: what the loaded
// configuration asks for.
ReloadPlan planReload(const ServiceConfig& current, Result<ServiceConfig> loaded,
                      CapabilitySet droppedAtStart, const std::optional<TlsCredentials>& servedTls,
                      const std::optional<TlsCredentials>& newTls);

}  // namespace waitwatch
