// SPDX-License-Identifier: Apache-2.0
#include "service/decisions.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace waitwatch {

bool pollsProgressing(std::uint64_t nowUsec, std::uint64_t lastPollEndUsec, Duration interval) {
  const auto allowedUsec = static_cast<std::uint64_t>(interval.count()) * 2000 + 1'000'000;
  return nowUsec < lastPollEndUsec || nowUsec - lastPollEndUsec <= allowedUsec;
}

WatchdogGate::Action WatchdogGate::step(std::uint64_t nowUsec, std::uint64_t periodUsec,
                                        std::uint64_t lastPollEndUsec, Duration interval,
                                        bool force) {
  if (!pollsProgressing(nowUsec, lastPollEndUsec, interval)) {
    if (withheld_) return Action::Nothing;
    withheld_ = true;
    return Action::StartWithholding;
  }
  withheld_ = false;
  if (!force && lastPingUsec_ != 0 && nowUsec - lastPingUsec_ < periodUsec / 4) {
    return Action::Nothing;
  }
  lastPingUsec_ = nowUsec;
  return Action::Ping;
}

std::string statusLine(const Snapshot& snapshot, std::size_t alertsFiring) {
  std::uint64_t withCloseWait = 0;
  for (const auto& p : snapshot.processes) {
    if (p.states[TcpState::CloseWait] > 0) ++withCloseWait;
  }
  auto plural = [](std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  return plural(snapshot.totals().total(), "socket", "sockets") + ", " +
         plural(withCloseWait, "process", "processes") + " with CLOSE_WAIT, " +
         plural(alertsFiring, "alert", "alerts") + " firing";
}

TimeWaitCreatedTotals addTimeWaitCreated(
    const std::unordered_map<std::uint64_t, std::uint64_t>& before,
    const std::vector<NetnsEntry>& namespaces) {
  TimeWaitCreatedTotals out;
  out.totals.reserve(namespaces.size());
  for (const NetnsEntry& ns : namespaces) {
    const auto it = before.find(ns.ref.inode);
    const std::uint64_t total = (it == before.end() ? 0 : it->second) + ns.timeWaitCreated;
    out.byInode[ns.ref.inode] = total;
    out.totals.push_back(total);
  }
  return out;
}

std::string unitLabel(const std::string& unit, bool inContainer) {
  return inContainer ? std::string() : unit;
}

CloserGroup closerGroup(const Snapshot& s, const TimeWaitByCloser& t, bool includePid) {
  CloserGroup g;
  if (t.group < s.timeWait.size()) {
    const std::uint32_t ns = s.timeWait[t.group].netns;
    if (ns < s.namespaces.size()) g.netns = s.namespaces[ns].ref.label();
  }
  if (t.closer < s.closers.size()) {
    const ProcessInfo& p = s.closers[t.closer];
    g.comm = p.comm;
    g.unit = unitLabel(p.unit, !p.container.empty());
    g.container = p.container.labelName();
    g.pod = p.container.podName;
    g.podNamespace = p.container.podNamespace;
    if (includePid) g.pid = p.key.pid;
  }
  return g;
}

void addTimeWaitClosed(std::map<CloserGroup, ClosedTotal>& totals, const Snapshot& snapshot,
                       bool includePid, TimePoint now, Duration forgetAfter,
                       std::size_t maxGroups) {
  for (const TimeWaitByCloser& t : snapshot.timeWaitByCloser) {
    if (t.closer == kNoIndex || t.created == 0) continue;
    ClosedTotal& c = totals[closerGroup(snapshot, t, includePid)];
    c.total += t.created;
    c.lastIncrease = now;
  }
  std::erase_if(totals, [&](const auto& kv) { return now - kv.second.lastIncrease > forgetAfter; });
  if (totals.size() <= maxGroups) return;
  std::vector<std::pair<TimePoint, CloserGroup>> byAge;
  byAge.reserve(totals.size());
  for (const auto& [group, c] : totals)
    byAge.emplace_back(c.lastIncrease, group);
  std::nth_element(byAge.begin(), byAge.begin() + static_cast<std::ptrdiff_t>(maxGroups),
                   byAge.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = maxGroups; i < byAge.size(); ++i)
    totals.erase(byAge[i].second);
}

ReloadPlan planReload(const ServiceConfig& current, Result<ServiceConfig> loaded,
                      CapabilitySet droppedAtStart, const std::optional<TlsCredentials>& servedTls,
                      const std::optional<TlsCredentials>& newTls) {
  ReloadPlan plan;
  if (!loaded) {
    plan.rejected = loaded.error();
    return plan;
  }
  ServiceConfig config = std::move(*loaded);
  // A capability dropped at start-up is gone for good.
  const CapabilitySet lost = neededCapabilities(config.namespaces) & droppedAtStart;
  if (lost != 0) {
    plan.rejected =
        Error{EPERM, "\"namespaces\": \"" + std::string(namespaceSelectionName(config.namespaces)) +
                         "\" needs " + capabilityNames(lost) +
                         ": needs a restart: capability dropped at start (the "
                         "configuration then did not need it)"};
    return plan;
  }
  plan.newSource =
      config.namespaces != current.namespaces || config.containers != current.containers;
  if (config.listen != current.listen) {
    plan.logs.emplace_back(
        4, "listen address changes take effect on restart; still serving on " + current.listen);
    config.listen = current.listen;
  }
  // A renewed certificate or key is served from the next handshake. Turning TLS on or off, or
  // another min_version, needs a restart: libmicrohttpd fixes the listener's TLS mode and
  // versions when it starts.
  if (newTls != servedTls) {
    if (newTls && servedTls && newTls->minVersion == servedTls->minVersion) {
      plan.tls = ReloadPlan::Tls::Renew;
    } else {
      plan.tls = ReloadPlan::Tls::NeedsRestart;
      plan.logs.emplace_back(
          4,
          "TLS changes (web.tls_server_config: on, off or min_version) take effect on "
          "restart; still serving " +
              std::string(servedTls ? "HTTPS as before" : "plain HTTP"));
      config.web.tls = current.web.tls;
    }
  }
  plan.intervalChanged = config.pollInterval != current.pollInterval;
  plan.config = std::move(config);
  return plan;
}

}  // namespace waitwatch
