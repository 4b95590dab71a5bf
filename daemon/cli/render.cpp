// SPDX-License-Identifier: Apache-2.0
#include "cli/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <tuple>

#include "cli/text.hpp"
#include "core/enum_names.hpp"

namespace waitwatch::cli {
namespace {

using json = nlohmann::ordered_json;

// Wide enough for a Kubernetes container ("k8s:payments/checkout-7d9f-x2k4/api") and a
// templated unit; longer ones are cut in the middle.
constexpr std::size_t kOwnerWidth = 48;

struct Column {
  std::string header;
  bool right = false;     // numbers
  std::size_t limit = 0;  // cut cells to this width (0: no limit)
  bool middle = false;    // cut in the middle: names that share a prefix differ at the end
};

// Aligned columns separated by two spaces; the last column is not padded.
std::string table(const std::vector<Column>& columns,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(columns.size(), 0);
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  std::vector<std::string> header;
  for (const Column& c : columns)
    header.push_back(c.header);
  cells.push_back(std::move(header));
  for (const auto& r : rows) {
    std::vector<std::string> row;
    for (std::size_t i = 0; i < columns.size(); ++i)
      row.push_back(i >= r.size()       ? std::string()
                    : columns[i].middle ? cutMiddle(r[i], columns[i].limit)
                                        : cutEnd(r[i], columns[i].limit));
    cells.push_back(std::move(row));
  }
  for (const auto& r : cells) {
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], displayWidth(r[i]));
  }
  std::string out;
  for (const auto& r : cells) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::size_t pad = width[i] - displayWidth(r[i]);
      if (i > 0) line += "  ";
      if (columns[i].right) {
        line += std::string(pad, ' ') + r[i];
      } else if (i + 1 < r.size()) {
        line += r[i] + std::string(pad, ' ');
      } else {
        line += r[i];
      }
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + '\n';
  }
  return out;
}

// `local`: the namespace's range, for a local port; null for a remote one (classed by IANA: the
// peer's range is not known here).
PortClass portClass(std::uint16_t port, const EphemeralRange* local) {
  return local != nullptr ? classifyPort(port, *local) : classifyPort(port);
}

char classMark(std::uint16_t port, const EphemeralRange* local) {
  switch (portClass(port, local)) {
    case PortClass::WellKnown:
      return 'w';
    case PortClass::Registered:
      return 'r';
    case PortClass::Ephemeral:
      return 'e';
  }
  return '?';
}

// "53.1%", and two decimals below 1% so that a small share does not read as none.
std::string percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ratio < 0.01 ? "%.2f%%" : "%.1f%%", ratio * 100.0);
  return buf;
}

struct CountColumn {
  std::string header;
  TcpStateMask states;
};

std::vector<CountColumn> countColumns(TcpStateMask selected) {
  if (selected == 0) {
    return {{"ESTAB", stateBit(TcpState::Established)},
            {"CLOSE-WAIT", stateBit(TcpState::CloseWait)},
            {"FIN-WAIT", stateBit(TcpState::FinWait1) | stateBit(TcpState::FinWait2)},
            {"LISTEN", stateBit(TcpState::Listen)}};
  }
  std::vector<CountColumn> columns;
  for (TcpState s : kAllTcpStates) {
    if (selected & stateBit(s)) columns.push_back({std::string(ssStateName(s)), stateBit(s)});
  }
  return columns;
}

std::uint64_t sum(const StateCounts& c, TcpStateMask mask) {
  std::uint64_t n = 0;
  for (TcpState s : kAllTcpStates) {
    if (mask & stateBit(s)) n += c[s];
  }
  return n;
}

std::string listenPorts(const std::vector<std::uint16_t>& ports, const EphemeralRange* local) {
  constexpr std::size_t kShown = 8;
  std::string out;
  for (std::size_t i = 0; i < ports.size() && i < kShown; ++i) {
    if (i > 0) out += ' ';
    out += portWithClass(ports[i], local);
  }
  if (ports.size() > kShown) out += " +" + std::to_string(ports.size() - kShown) + " more";
  return out;
}

constexpr EnumNames<Attribution, 4> kAttributions({{Attribution::Owned, "owned"},
                                                   {Attribution::NoOwner, "no_owner"},
                                                   {Attribution::NoPermission, "no_permission"},
                                                   {Attribution::Vanished, "vanished"}});

// UDP sockets report CLOSE when unconnected and ESTABLISHED when connected; ss names them so.
std::string udpStateName(TcpState s) {
  return s == TcpState::Established ? "ESTAB" : "UNCONN";
}

}  // namespace

const EphemeralRange* rangeOf(const Snapshot& s, std::uint32_t netns) {
  return netns < s.namespaces.size() ? &s.namespaces[netns].ephemeral : nullptr;
}

const EphemeralRange* peerRangeOf(const Snapshot& s, std::uint32_t netns, const Endpoint& peer) {
  return peer.address.isLoopback() ? rangeOf(s, netns) : nullptr;
}

bool usesMorePorts(const TimeWaitGroup* a, const TimeWaitGroup* b) {
  return std::uint64_t{a->timeWait} + (a->serverSide ? 0 : a->live) >
         std::uint64_t{b->timeWait} + (b->serverSide ? 0 : b->live);
}

std::string ownerOrDash(const ProcessInfo& info) {
  if (!info.container.empty()) return info.container.displayName();
  if (!info.unit.empty()) return info.unit;
  return "-";
}

std::string command(const ProcessInfo& info) {
  if (info.cmdline.empty()) return info.comm;
  const std::string_view c = info.cmdline;
  const std::size_t programEnd = std::min(c.find(' '), c.size());
  if (c.front() != '/') return info.cmdline;
  const std::size_t slash = c.rfind('/', programEnd - 1);
  return std::string(c.substr(slash + 1));
}

std::string processName(const ProcessInfo& info) {
  return info.comm + "[" + std::to_string(info.key.pid) + "]";
}

std::string timeOfDay(double unixSeconds) {
  const auto t = static_cast<std::time_t>(unixSeconds);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string portWithClass(std::uint16_t port, const EphemeralRange* local) {
  return std::to_string(port) + classMark(port, local);
}

std::string endpointWithClass(const Endpoint& e, const EphemeralRange* local) {
  const std::string address = e.address.family == AddressFamily::V6
                                  ? "[" + e.address.toString() + "]"
                                  : e.address.toString();
  if (e.port == 0) return address + ":*";
  return address + ":" + portWithClass(e.port, local);
}

// "2a 1e": the CLOSE_WAIT sockets by kind, in the legend's letters; "-" for none.
std::string kindsCell(const CloseWaitKinds& kinds) {
  static constexpr std::array<char, kCloseWaitKindCount> kLetters = {'a', 'e', 'u'};
  std::string out;
  for (CloseWaitKind k : kCloseWaitKinds) {
    if (kinds[k] == 0) continue;
    if (!out.empty()) out += ' ';
    out += std::to_string(kinds[k]) + kLetters[static_cast<std::size_t>(k)];
  }
  return out.empty() ? "-" : out;
}

std::string shortAge(Duration d) {
  return humanDuration(d);
}

std::string renderProcessTable(const Snapshot& s, const RenderOptions& o) {
  const std::vector<CountColumn> counts = countColumns(o.states);
  TcpStateMask shownMask = 0;
  for (const CountColumn& c : counts)
    shownMask |= c.states;
  const TcpStateMask otherMask = (o.states == 0 ? kAllStatesMask : o.states) & ~shownMask;
  const bool multiNs = s.namespaces.size() > 1;
  const bool ages = !o.closeWaitOldest.empty();

  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    if (sum(s.processes[i].states, shownMask | otherMask) > 0) order.push_back(i);
  }
  if (order.empty()) {
    // Sockets whose holder could not be read are not "held by no process".
    const std::uint64_t hidden = s.unattributedNoPermission + s.unattributedVanished;
    if (hidden > 0) {
      return "no process visible to waitwatch holds TCP sockets in this view (" +
             std::to_string(hidden) + " socket(s) not attributed)\n";
    }
    return "no process holds TCP sockets in this view\n";
  }
  const bool kinds = std::any_of(order.begin(), order.end(), [&](std::size_t i) {
    return s.processes[i].closeWaitKinds.total() > 0;
  });
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const StateCounts& x = s.processes[a].states;
    const StateCounts& y = s.processes[b].states;
    if (x[TcpState::CloseWait] != y[TcpState::CloseWait]) {
      return x[TcpState::CloseWait] > y[TcpState::CloseWait];
    }
    if (x.total() != y.total()) return x.total() > y.total();
    return s.processes[a].info.key.pid < s.processes[b].info.key.pid;
  });
  const bool other = std::any_of(order.begin(), order.end(), [&](std::size_t i) {
    return sum(s.processes[i].states, otherMask) > 0;
  });
  // File descriptors of the processes holding CLOSE_WAIT sockets (each leaked socket is one),
  // and, from a daemon's snapshot, when they run out.
  const bool fds = std::any_of(order.begin(), order.end(),
                               [&](std::size_t i) { return s.processes[i].openFds > 0; });
  const bool runsOut = std::any_of(order.begin(), order.end(),
                                   [&](std::size_t i) { return s.processes[i].fdForecast; });
  const bool listen = (shownMask & stateBit(TcpState::Listen)) != 0;

  std::vector<Column> columns;
  if (multiNs) columns.push_back({"NETNS", false, 20});
  columns.push_back({"PID", true, 0});
  columns.push_back({"USER", false, 12});
  columns.push_back({"UNIT/CONTAINER", false, kOwnerWidth, true});
  columns.push_back({"COMMAND", false, o.commandWidth, true});
  for (const CountColumn& c : counts) {
    columns.push_back({c.header, true, 0});
    if (ages && c.states == stateBit(TcpState::CloseWait)) columns.push_back({"OLDEST", true, 0});
    if (kinds && c.states == stateBit(TcpState::CloseWait)) columns.push_back({"KIND", false, 0});
    if (fds && c.states == stateBit(TcpState::CloseWait)) columns.push_back({"FDS", true, 0});
    if (runsOut && c.states == stateBit(TcpState::CloseWait)) {
      columns.push_back({"RUNS-OUT", true, 0});
    }
  }
  if (other) columns.push_back({"OTHER", true, 0});
  if (listen) columns.push_back({"PORTS", false, 0});

  std::vector<std::vector<std::string>> rows;
  for (std::size_t i : order) {
    const ProcessEntry& p = s.processes[i];
    std::vector<std::string> r;
    if (multiNs) {
      r.push_back(p.netns < s.namespaces.size() ? s.namespaces[p.netns].ref.label() : "?");
    }
    r.push_back(std::to_string(p.info.key.pid));
    r.push_back(p.info.user);
    r.push_back(ownerOrDash(p.info));
    r.push_back(command(p.info));
    for (const CountColumn& c : counts) {
      r.push_back(std::to_string(sum(p.states, c.states)));
      if (ages && c.states == stateBit(TcpState::CloseWait)) {
        std::string age = "-";
        if (i < o.closeWaitOldest.size() && p.states[TcpState::CloseWait] > 0) {
          age = (o.closeWaitOldest[i].lowerBound ? ">=" : "") + shortAge(o.closeWaitOldest[i].age);
        }
        r.push_back(age);
      }
      if (kinds && c.states == stateBit(TcpState::CloseWait)) {
        r.push_back(kindsCell(p.closeWaitKinds));
      }
      if (fds && c.states == stateBit(TcpState::CloseWait)) {
        std::string cell = p.openFds == 0 ? "-" : std::to_string(p.openFds);
        if (p.openFds != 0 && p.maxFds != 0) cell += "/" + std::to_string(p.maxFds);
        r.push_back(std::move(cell));
      }
      if (runsOut && c.states == stateBit(TcpState::CloseWait)) {
        const auto& f = p.fdForecast;
        r.push_back(!f                                  ? "-"
                    : f->exhaustion <= Duration::zero() ? "now"
                                                        : "in " + shortAge(f->exhaustion));
      }
    }
    if (other) r.push_back(std::to_string(sum(p.states, otherMask)));
    if (listen) r.push_back(listenPorts(p.listenPorts, rangeOf(s, p.netns)));
    rows.push_back(std::move(r));
  }
  return table(columns, rows);
}

std::string closeWaitKindLegend(const Snapshot& s, TcpStateMask states) {
  if (states != 0 && (states & stateBit(TcpState::CloseWait)) == 0) return "";
  const bool any = std::any_of(s.processes.begin(), s.processes.end(),
                               [](const ProcessEntry& p) { return p.closeWaitKinds.total() > 0; });
  if (!any) return "";
  return "(CLOSE-WAIT kinds: a abandoned, not read since the peer closed; e end-of-stream read, "
         "never closed; u data left unread)\n";
}

// Who closed the connections now in TIME_WAIT (the side that closes first holds the TIME_WAIT),
// per closer and group, the most first; or where to see it when this run does not know.
std::string renderTimeWaitClosers(const Snapshot& s, const RenderOptions& o) {
  if (s.closerSource == CloserSource::None) {
    return "\nWho closed them: waitwatchd records every close; ask it with waitwatch --from "
           "http://HOST:9929\n";
  }
  const bool multiNs = s.namespaces.size() > 1;
  // Short-lived closers (a script running curl in a loop) are many processes of one name: one
  // row per (group, name, user, unit or container), counting its processes.
  struct Row {
    std::uint32_t group = 0;
    const ProcessInfo* closer = nullptr;
    std::uint32_t processes = 0;
    std::uint64_t timeWait = 0;
    std::uint64_t created = 0;
  };
  std::vector<Row> found;
  std::map<std::tuple<std::uint32_t, std::string, std::string, std::string>, std::size_t> rowOf;
  std::uint64_t unknown = 0;
  for (const TimeWaitByCloser& t : s.timeWaitByCloser) {
    if (t.group >= s.timeWait.size()) continue;
    if (t.closer >= s.closers.size()) {
      unknown += t.timeWait;
      continue;
    }
    const ProcessInfo& p = s.closers[t.closer];
    const auto [it, inserted] =
        rowOf.try_emplace(std::make_tuple(t.group, p.comm, p.user, ownerOrDash(p)), found.size());
    if (inserted) found.push_back(Row{t.group, &p, 0, 0, 0});
    Row& r = found[it->second];
    ++r.processes;
    r.timeWait += t.timeWait;
    r.created += t.created;
  }
  std::vector<const Row*> order;
  for (const Row& r : found)
    order.push_back(&r);
  std::stable_sort(order.begin(), order.end(),
                   [](const Row* a, const Row* b) { return a->timeWait > b->timeWait; });
  std::vector<Column> columns;
  if (multiNs) columns.push_back({"NETNS", false, 20});
  columns.push_back({"CLOSED BY", false, 0});
  columns.push_back({"USER", false, 12});
  columns.push_back({"UNIT/CONTAINER", false, kOwnerWidth, true});
  columns.push_back({"TO", false, 0});
  columns.push_back({"TIME-WAIT", true, 0});
  columns.push_back({"NEW/S", true, 0});
  std::vector<std::vector<std::string>> rows;
  std::uint64_t restSockets = 0;
  for (const Row* t : order) {
    if (rows.size() >= o.maxTimeWaitGroups) {
      restSockets += t->timeWait;
      continue;
    }
    const TimeWaitGroup& g = s.timeWait[t->group];
    const ProcessInfo& p = *t->closer;
    std::vector<std::string> r;
    if (multiNs) {
      r.push_back(g.netns < s.namespaces.size() ? s.namespaces[g.netns].ref.label() : "?");
    }
    r.push_back(t->processes == 1 ? processName(p)
                                  : p.comm + " (" + std::to_string(t->processes) + " processes)");
    r.push_back(p.user);
    r.push_back(ownerOrDash(p));
    // Server side: its clients, on the listening endpoint it serves.
    r.push_back(g.serverSide ? "clients of " + g.destination.toString() : g.destination.toString());
    r.push_back(std::to_string(t->timeWait));
    const Duration window =
        g.netns < s.namespaces.size() ? s.namespaces[g.netns].timeWaitWindow : Duration(0);
    char rate[32] = "-";
    if (window.count() > 0) {
      std::snprintf(rate, sizeof rate, "%.1f",
                    static_cast<double>(t->created) * 1000.0 / static_cast<double>(window.count()));
    }
    r.push_back(rate);
    rows.push_back(std::move(r));
  }
  std::string out = "\nTIME-WAIT by closer (";
  out += s.closerSource == CloserSource::KernelProbe
             ? "every close recorded in the kernel"
             : "owners at the last poll; connections shorter than a poll are not known";
  out += ")\n";
  out += rows.empty() ? std::string("(no closer known)\n") : table(columns, rows);
  if (restSockets > 0) {
    out += "... " + std::to_string(order.size() - rows.size()) + " more with " +
           std::to_string(restSockets) + " TIME-WAIT sockets (all of them in --json)\n";
  }
  if (unknown > 0) {
    out += std::to_string(unknown) + " TIME-WAIT socket" + (unknown == 1 ? "" : "s") +
           " closed by a process not known (before the daemon watched";
    out += s.closerSource == CloserSource::KernelProbe ? ", or lost" : ", or shorter than a poll";
    out += ")\n";
  }
  return out;
}

std::string renderTimeWait(const Snapshot& s, const RenderOptions& o) {
  const bool multiNs = s.namespaces.size() > 1;
  std::string out;
  for (int side = 0; side < 2; ++side) {
    const bool server = side == 1;
    std::vector<const TimeWaitGroup*> groups;
    for (const TimeWaitGroup& g : s.timeWait) {
      if (g.serverSide == server) groups.push_back(&g);
    }
    if (groups.empty()) continue;
    // Client side: the pairs that use the most ports first, whether TIME_WAIT or live.
    std::stable_sort(groups.begin(), groups.end(), usesMorePorts);
    // Client-side CLOSE_WAIT sockets hold their source ports too: shown where there are some.
    const bool closeWait = std::any_of(groups.begin(), groups.end(),
                                       [](const TimeWaitGroup* g) { return g->closeWait > 0; });
    std::vector<Column> columns;
    if (multiNs) columns.push_back({"NETNS", false, 20});
    if (server) {
      columns.push_back({"LOCAL", false, 0});
      columns.push_back({"TIME-WAIT", true, 0});
      columns.push_back({"LISTENER", false, 0});
    } else {
      columns.push_back({"SOURCE", false, 0});
      columns.push_back({"DESTINATION", false, 0});
      columns.push_back({"TIME-WAIT", true, 0});
      columns.push_back({"LIVE", true, 0});
      if (closeWait) columns.push_back({"OF THEM CLOSE-WAIT", true, 0});
      columns.push_back({"EPHEMERAL PORTS USED", false, 0});
    }
    std::vector<std::vector<std::string>> rows;
    std::uint64_t restGroups = 0;
    std::uint64_t restSockets = 0;
    for (const TimeWaitGroup* g : groups) {
      if (rows.size() >= o.maxTimeWaitGroups) {
        ++restGroups;
        restSockets += g->timeWait;
        continue;
      }
      std::vector<std::string> r;
      if (multiNs) {
        r.push_back(g->netns < s.namespaces.size() ? s.namespaces[g->netns].ref.label() : "?");
      }
      if (server) {
        r.push_back(endpointWithClass(g->destination, rangeOf(s, g->netns)));
        r.push_back(std::to_string(g->timeWait));
        r.push_back(g->listener < s.processes.size() ? processName(s.processes[g->listener].info)
                                                     : "?");
      } else {
        r.push_back(g->source.toString());
        r.push_back(endpointWithClass(g->destination, peerRangeOf(s, g->netns, g->destination)));
        r.push_back(std::to_string(g->timeWait));
        r.push_back(std::to_string(g->live));
        if (closeWait) r.push_back(std::to_string(g->closeWait));
        const std::uint32_t usable =
            g->netns < s.namespaces.size() ? s.namespaces[g->netns].ephemeral.usableCount() : 0;
        r.push_back(percent(g->portUsageRatio) + " of " + std::to_string(usable));
      }
      rows.push_back(std::move(r));
    }
    if (!out.empty()) out += '\n';
    out += server      ? "TIME-WAIT on listening ports (server side)\n"
           : closeWait ? "TIME-WAIT and CLOSE-WAIT by destination (client side: each holds a "
                         "source port)\n"
                       : "TIME-WAIT by destination (client side)\n";
    out += table(columns, rows);
    if (restGroups > 0) {
      out += "... " + std::to_string(restGroups) + " more with " + std::to_string(restSockets) +
             " TIME-WAIT sockets (all of them in --json)\n";
    }
  }
  // Closers are of TIME_WAIT sockets: nothing to say for pairs that only hold CLOSE_WAIT ones.
  const bool anyTimeWait = std::any_of(s.timeWait.begin(), s.timeWait.end(),
                                       [](const TimeWaitGroup& g) { return g.timeWait > 0; });
  if (!out.empty() && anyTimeWait) out += renderTimeWaitClosers(s, o);
  return out;
}

std::string renderTotals(const Snapshot& s) {
  auto line = [](const std::string& label, const StateCounts& c) {
    std::string l =
        label + "  " + std::to_string(c.total()) + " TCP socket" + (c.total() == 1 ? "" : "s");
    bool first = true;
    for (TcpState st : kAllTcpStates) {
      if (c[st] == 0) continue;
      l += first ? ": " : ", ";
      first = false;
      l += std::string(ssStateName(st)) + " " + std::to_string(c[st]);
    }
    return l + '\n';
  };
  std::string out;
  if (s.namespaces.size() > 1) {
    for (const NetnsEntry& ns : s.namespaces)
      out += line(ns.ref.label(), ns.states);
  }
  out += line("TOTAL", s.totals());
  return out;
}

std::string renderAlerts(std::span<const api::AlertSummary> alerts) {
  if (alerts.empty()) return "no alert firing\n";
  std::vector<const api::AlertSummary*> sorted;
  for (const api::AlertSummary& a : alerts)
    sorted.push_back(&a);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const api::AlertSummary* a, const api::AlertSummary* b) {
                     return (a->severity == "critical") > (b->severity == "critical");
                   });
  std::string out =
      std::to_string(alerts.size()) + " alert" + (alerts.size() == 1 ? "" : "s") + " firing\n";
  for (const api::AlertSummary* a : sorted) {
    out += "  " + a->severity + "  " + a->rule;
    if (a->sinceUnixSeconds > 0) out += "  since " + timeOfDay(a->sinceUnixSeconds);
    out += "\n    " + a->message + '\n';
  }
  return out;
}

std::string renderSockets(const Snapshot& s, std::span<const SocketLine> sockets, bool udp) {
  const bool multiNs = s.namespaces.size() > 1;
  std::vector<std::size_t> order(sockets.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const SocketLine& x = sockets[a];
    const SocketLine& y = sockets[b];
    if (x.netns != y.netns) return x.netns < y.netns;
    if (x.socket.state != y.socket.state) return x.socket.state < y.socket.state;
    if (x.socket.local != y.socket.local) return x.socket.local < y.socket.local;
    return x.socket.remote < y.socket.remote;
  });
  std::vector<Column> columns;
  if (multiNs) columns.push_back({"NETNS", false, 20});
  columns.push_back({"STATE", false, 0});
  columns.push_back({"RECV-Q", true, 0});
  columns.push_back({"SEND-Q", true, 0});
  columns.push_back({"LOCAL", false, 0});
  columns.push_back({"PEER", false, 0});
  columns.push_back({"PROCESS", false, 0});
  std::vector<std::vector<std::string>> rows;
  rows.reserve(order.size());
  for (std::size_t i : order) {
    const SocketLine& l = sockets[i];
    const SocketRecord& r = l.socket;
    std::vector<std::string> row;
    if (multiNs) {
      row.push_back(l.netns < s.namespaces.size() ? s.namespaces[l.netns].ref.label() : "?");
    }
    row.push_back(udp ? udpStateName(r.state) : std::string(ssStateName(r.state)));
    row.push_back(std::to_string(r.recvQ));
    row.push_back(std::to_string(r.sendQ));
    row.push_back(endpointWithClass(r.local, rangeOf(s, l.netns)));
    row.push_back(endpointWithClass(r.remote, peerRangeOf(s, l.netns, r.remote)));
    std::string who;
    switch (l.attribution) {
      case Attribution::Owned:
        for (std::uint32_t o : s.owners(l.ownerBegin, l.ownerCount)) {
          if (o >= s.processes.size()) continue;
          if (!who.empty()) who += ',';
          who += processName(s.processes[o].info);
        }
        break;
      case Attribution::NoOwner:
        who = "-";
        break;
      case Attribution::NoPermission:
        who = "? (no permission to read its owner)";
        break;
      case Attribution::Vanished:
        who = "? (closed, or its owner exited, during the look)";
        break;
    }
    if (r.state == TcpState::TimeWait && !udp) {
      who += "  " + shortAge(Duration(r.timerRemainingMs)) + " left";
    }
    row.push_back(std::move(who));
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return std::string(udp ? "no UDP socket" : "no TCP socket") + " in this view\n";
  return table(columns, rows);
}

std::string renderUdp(const Snapshot& udp, std::span<const SocketLine> sockets) {
  struct Row {
    std::uint64_t sockets = 0;
    std::uint64_t connected = 0;
    std::vector<std::uint16_t> ports;
  };
  std::map<std::uint32_t, Row> byProcess;
  std::uint64_t unowned = 0;
  for (const SocketLine& l : sockets) {
    const auto owners = udp.owners(l.ownerBegin, l.ownerCount);
    if (owners.empty()) ++unowned;
    for (std::uint32_t o : owners) {
      Row& row = byProcess[o];
      ++row.sockets;
      if (l.socket.state == TcpState::Established) ++row.connected;
      row.ports.push_back(l.socket.local.port);
    }
  }
  const bool multiNs = udp.namespaces.size() > 1;
  std::vector<Column> columns;
  if (multiNs) columns.push_back({"NETNS", false, 20});
  columns.push_back({"PID", true, 0});
  columns.push_back({"USER", false, 12});
  columns.push_back({"UNIT/CONTAINER", false, kOwnerWidth, true});
  columns.push_back({"COMMAND", false, 40, true});
  columns.push_back({"SOCKETS", true, 0});
  columns.push_back({"CONNECTED", true, 0});
  columns.push_back({"BOUND PORTS", false, 0});
  std::vector<std::pair<std::uint32_t, Row*>> order;
  for (auto& [index, row] : byProcess)
    order.emplace_back(index, &row);
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    if (a.second->sockets != b.second->sockets) return a.second->sockets > b.second->sockets;
    return a.first < b.first;
  });
  std::vector<std::vector<std::string>> rows;
  for (auto& [index, row] : order) {
    if (index >= udp.processes.size()) continue;
    const ProcessEntry& p = udp.processes[index];
    std::sort(row->ports.begin(), row->ports.end());
    row->ports.erase(std::unique(row->ports.begin(), row->ports.end()), row->ports.end());
    std::vector<std::string> r;
    if (multiNs) {
      r.push_back(p.netns < udp.namespaces.size() ? udp.namespaces[p.netns].ref.label() : "?");
    }
    r.push_back(std::to_string(p.info.key.pid));
    r.push_back(p.info.user);
    r.push_back(ownerOrDash(p.info));
    r.push_back(command(p.info));
    r.push_back(std::to_string(row->sockets));
    r.push_back(std::to_string(row->connected));
    r.push_back(listenPorts(row->ports, rangeOf(udp, p.netns)));
    rows.push_back(std::move(r));
  }
  std::string out = "UDP sockets by process (" + std::to_string(sockets.size()) + " socket" +
                    (sockets.size() == 1 ? "" : "s");
  if (unowned > 0) out += ", " + std::to_string(unowned) + " without a visible owner";
  out += ")\n";
  if (rows.empty()) return out;
  return out + table(columns, rows);
}

std::string renderStateTable(const Snapshot& snapshot) {
  std::vector<Column> columns{{"NETNS", false, 0}};
  for (TcpState s : kAllTcpStates)
    columns.push_back({std::string(ssStateName(s)), true, 0});
  columns.push_back({"TOTAL", true, 0});
  auto row = [](std::string label, const StateCounts& c) {
    std::vector<std::string> r{std::move(label)};
    for (TcpState s : kAllTcpStates)
      r.push_back(std::to_string(c[s]));
    r.push_back(std::to_string(c.total()));
    return r;
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& ns : snapshot.namespaces)
    rows.push_back(row(ns.ref.label(), ns.states));
  if (snapshot.namespaces.size() > 1) rows.push_back(row("TOTAL", snapshot.totals()));
  return table(columns, rows);
}

json socketsJson(const Snapshot& s, std::span<const SocketLine> sockets, bool udp) {
  json a = json::array();
  for (const SocketLine& l : sockets) {
    const SocketRecord& r = l.socket;
    json owners = json::array();
    for (std::uint32_t o : s.owners(l.ownerBegin, l.ownerCount)) {
      if (o < s.processes.size()) {
        owners.push_back(
            {{"pid", s.processes[o].info.key.pid}, {"comm", s.processes[o].info.comm}});
      }
    }
    json item{{"netns", l.netns < s.namespaces.size() ? s.namespaces[l.netns].ref.label() : ""},
              {"state", udp ? udpStateName(r.state) : std::string(stateName(r.state))},
              {"recv_q", r.recvQ},
              {"send_q", r.sendQ},
              {"local", r.local.toString()},
              {"local_port_class", portClassName(portClass(r.local.port, rangeOf(s, l.netns)))},
              {"remote", r.remote.toString()},
              {"remote_port_class",
               portClassName(portClass(r.remote.port, peerRangeOf(s, l.netns, r.remote)))},
              {"uid", r.uid},
              {"inode", r.inode},
              {"cookie", r.cookie},
              {"owners", std::move(owners)},
              {"attribution", kAttributions.name(l.attribution)}};
    if (r.state == TcpState::TimeWait && !udp) item["time_left_ms"] = r.timerRemainingMs;
    a.push_back(std::move(item));
  }
  return a;
}

json udpJson(const Snapshot& udp, std::span<const SocketLine> sockets, bool withSockets) {
  std::vector<std::uint64_t> count(udp.processes.size(), 0);
  std::vector<std::uint64_t> connected(udp.processes.size(), 0);
  std::vector<std::vector<std::uint16_t>> ports(udp.processes.size());
  std::uint64_t unconnectedTotal = 0;
  std::uint64_t connectedTotal = 0;
  for (const SocketLine& l : sockets) {
    (l.socket.state == TcpState::Established ? connectedTotal : unconnectedTotal) += 1;
    for (std::uint32_t o : udp.owners(l.ownerBegin, l.ownerCount)) {
      if (o >= udp.processes.size()) continue;
      ++count[o];
      if (l.socket.state == TcpState::Established) ++connected[o];
      ports[o].push_back(l.socket.local.port);
    }
  }
  json processes = json::array();
  for (std::size_t i = 0; i < udp.processes.size(); ++i) {
    const ProcessEntry& p = udp.processes[i];
    std::sort(ports[i].begin(), ports[i].end());
    ports[i].erase(std::unique(ports[i].begin(), ports[i].end()), ports[i].end());
    json bound = json::array();
    for (std::uint16_t port : ports[i])
      bound.push_back(
          {{"port", port}, {"class", portClassName(portClass(port, rangeOf(udp, p.netns)))}});
    processes.push_back(
        {{"pid", p.info.key.pid},
         {"comm", p.info.comm},
         {"user", p.info.user},
         {"unit", p.info.unit},
         {"container", p.info.container.shortName()},
         {"container_name", p.info.container.name},
         {"pod_name", p.info.container.podName},
         {"pod_namespace", p.info.container.podNamespace},
         {"netns",
          p.netns < udp.namespaces.size() ? udp.namespaces[p.netns].ref.label() : std::string()},
         {"sockets", count[i]},
         {"connected", connected[i]},
         {"ports", std::move(bound)}});
  }
  json j{
      {"sockets", sockets.size()},
      {"states", {{"UNCONN", unconnectedTotal}, {"ESTAB", connectedTotal}}},
      {"processes", std::move(processes)},
      {"unattributed",
       {{"no_permission", udp.unattributedNoPermission}, {"vanished", udp.unattributedVanished}}}};
  if (withSockets) j["socket_list"] = socketsJson(udp, sockets, true);
  return j;
}

json alertsJson(std::span<const api::AlertSummary> alerts) {
  json a = json::array();
  for (const api::AlertSummary& al : alerts) {
    a.push_back({{"rule", al.rule},
                 {"severity", al.severity},
                 {"message", al.message},
                 {"since_unix_seconds", al.sinceUnixSeconds}});
  }
  return a;
}

}  // namespace waitwatch::cli
