// SPDX-License-Identifier: Apache-2.0
#include "cli/view.hpp"

#include <algorithm>
#include <bitset>
#include <map>
#include <memory>
#include <set>

namespace waitwatch::cli {
namespace {

bool hasPort(const Filter& f, std::uint16_t port) {
  return std::find(f.ports.begin(), f.ports.end(), port) != f.ports.end();
}

bool stateSelected(const Filter& f, TcpState s) {
  return f.states == 0 || (f.states & stateBit(s)) != 0;
}

std::vector<bool> selectProcesses(const Snapshot& s, const Filter& f) {
  std::vector<bool> selected(s.processes.size(), true);
  if (!f.selectsOwners()) return selected;
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    const ProcessInfo& info = s.processes[i].info;
    const bool pidOk =
        f.pids.empty() || std::find(f.pids.begin(), f.pids.end(), info.key.pid) != f.pids.end();
    const bool unitOk = f.units.empty() || matchesUnit(info, f.units);
    selected[i] = pidOk && unitOk && matchesContainerFilters(info, f);
  }
  return selected;
}

bool groupMatches(const TimeWaitGroup& g, const Filter& f, const std::vector<bool>& selected) {
  if (!stateSelected(f, TcpState::TimeWait)) return false;
  if (!f.ports.empty() && !hasPort(f, g.destination.port)) return false;
  if (f.selectsOwners()) {
    return g.serverSide && g.listener < selected.size() && selected[g.listener];
  }
  return true;
}

// Builds the output snapshot's processes from `keep` (input indices, in input order).
// `kinds`: the CLOSE_WAIT kinds of the sockets counted (nullptr: the input's, while CLOSE_WAIT
// is counted whole).
void copyProcesses(const Snapshot& in, const std::vector<bool>& keep,
                   const std::vector<StateCounts>& counts, const std::vector<CloseWaitKinds>* kinds,
                   const std::vector<std::vector<std::uint16_t>>* listenPorts,
                   FilteredSnapshot& out, std::vector<std::uint32_t>& newIndex) {
  newIndex.assign(in.processes.size(), kNoIndex);
  for (std::size_t i = 0; i < in.processes.size(); ++i) {
    if (!keep[i]) continue;
    newIndex[i] = static_cast<std::uint32_t>(out.snapshot.processes.size());
    out.origin.push_back(static_cast<std::uint32_t>(i));
    ProcessEntry e = in.processes[i];
    e.states = counts[i];
    if (kinds != nullptr) {
      e.closeWaitKinds = (*kinds)[i];
    } else if (e.states[TcpState::CloseWait] == 0) {
      e.closeWaitKinds = {};
    }
    if (listenPorts != nullptr) {
      e.listenPorts = (*listenPorts)[i];
      std::sort(e.listenPorts.begin(), e.listenPorts.end());
      e.listenPorts.erase(std::unique(e.listenPorts.begin(), e.listenPorts.end()),
                          e.listenPorts.end());
    }
    out.snapshot.processes.push_back(std::move(e));
  }
}

void copyGroups(const Snapshot& in, const Filter& f, const std::vector<bool>& selected,
                const std::vector<std::uint32_t>& newIndex, Snapshot& out) {
  std::vector<std::uint32_t> newGroup(in.timeWait.size(), kNoIndex);
  for (std::uint32_t i = 0; i < in.timeWait.size(); ++i) {
    const TimeWaitGroup& g = in.timeWait[i];
    if (!groupMatches(g, f, selected)) continue;
    TimeWaitGroup copy = g;
    copy.listener = g.listener < newIndex.size() ? newIndex[g.listener] : kNoIndex;
    newGroup[i] = static_cast<std::uint32_t>(out.timeWait.size());
    out.timeWait.push_back(copy);
  }
  // The closers of the groups kept.
  out.closerSource = in.closerSource;
  out.closesLost = in.closesLost;
  std::vector<std::uint32_t> newCloser(in.closers.size(), kNoIndex);
  for (const TimeWaitByCloser& t : in.timeWaitByCloser) {
    if (t.group >= newGroup.size() || newGroup[t.group] == kNoIndex) continue;
    TimeWaitByCloser copy = t;
    copy.group = newGroup[t.group];
    if (t.closer < in.closers.size()) {
      if (newCloser[t.closer] == kNoIndex) {
        newCloser[t.closer] = static_cast<std::uint32_t>(out.closers.size());
        out.closers.push_back(in.closers[t.closer]);
      }
      copy.closer = newCloser[t.closer];
    }
    out.timeWaitByCloser.push_back(copy);
  }
}

}  // namespace

bool matchesUnit(const ProcessInfo& info, std::span<const std::string> units) {
  for (const std::string& u : units) {
    if (!info.unit.empty() && (info.unit == u || info.unit == u + ".service")) return true;
    const ContainerInfo& c = info.container;
    if (c.empty()) continue;
    if (c.shortName() == u || c.id == u || (!c.pod.empty() && c.pod == u)) return true;
    if (u.size() >= 4 && c.id.starts_with(u)) return true;
  }
  return false;
}

bool matchesContainerFilters(const ProcessInfo& info, const Filter& f) {
  const ContainerInfo& c = info.container;
  auto any = [](const std::vector<std::string>& list, auto&& test) {
    return list.empty() || std::any_of(list.begin(), list.end(), test);
  };
  return any(f.containers,
             [&](const std::string& v) {
               if (c.empty()) return false;
               if (!c.name.empty() && (c.name == v || c.runtime + ":" + c.name == v)) return true;
               if (c.shortName() == v || c.id == v) return true;
               if (v.size() >= 4 && c.id.starts_with(v)) return true;
               // An alert's container is its short id only: a longer id or prefix names it too.
               return c.id.size() == 12 && v.size() > 12 && v.starts_with(c.id);
             }) &&
         any(f.pods,
             [&](const std::string& v) {
               return !c.empty() &&
                      ((!c.podName.empty() && c.podName == v) || (!c.pod.empty() && c.pod == v));
             }) &&
         any(f.podNamespaces, [&](const std::string& v) {
           return !c.empty() && !c.podNamespace.empty() && c.podNamespace == v;
         });
}

FilteredSnapshot filterWithSockets(const Snapshot& s, std::span<const SocketLine> lines,
                                   const Filter& f) {
  FilteredSnapshot out;
  const std::vector<bool> selected = selectProcesses(s, f);

  // Which local ports listen, per namespace: a TIME_WAIT socket on one is server side.
  std::vector<std::unique_ptr<std::bitset<65536>>> listening(s.namespaces.size());
  for (const SocketLine& l : lines) {
    if (l.socket.state != TcpState::Listen || l.netns >= listening.size()) continue;
    if (!listening[l.netns]) listening[l.netns] = std::make_unique<std::bitset<65536>>();
    listening[l.netns]->set(l.socket.local.port);
  }
  std::map<std::pair<std::uint32_t, Endpoint>, std::uint32_t> serverGroups;
  for (const TimeWaitGroup& g : s.timeWait) {
    if (g.serverSide) serverGroups[{g.netns, g.destination}] = g.listener;
  }

  std::vector<StateCounts> counts(s.processes.size());
  std::vector<CloseWaitKinds> kinds(s.processes.size());
  std::vector<std::vector<std::uint16_t>> ports(s.processes.size());
  std::vector<bool> keep(s.processes.size(), false);
  std::vector<std::uint32_t> matching;  // line indices
  std::vector<StateCounts> nsStates(s.namespaces.size());
  std::uint64_t noPermission = 0;
  std::uint64_t vanished = 0;

  for (std::size_t li = 0; li < lines.size(); ++li) {
    const SocketLine& l = lines[li];
    const SocketRecord& r = l.socket;
    if (l.netns >= s.namespaces.size() || !stateSelected(f, r.state)) continue;
    const auto owners = s.owners(l.ownerBegin, l.ownerCount);
    if (r.state == TcpState::TimeWait) {
      const bool server = listening[l.netns] && listening[l.netns]->test(r.local.port);
      if (!f.ports.empty() && !hasPort(f, server ? r.local.port : r.remote.port)) continue;
      if (f.selectsOwners()) {
        if (!server) continue;
        const auto it =
            serverGroups.find({l.netns, Endpoint{r.local.address.unmapped(), r.local.port}});
        if (it == serverGroups.end() || it->second >= selected.size() || !selected[it->second]) {
          continue;
        }
      }
    } else {
      if (!f.ports.empty() && !hasPort(f, r.local.port) && !hasPort(f, r.remote.port)) continue;
      if (f.selectsOwners()) {
        const bool any = std::any_of(owners.begin(), owners.end(), [&](std::uint32_t o) {
          return o < selected.size() && selected[o];
        });
        if (!any) continue;
      }
    }
    ++nsStates[l.netns][r.state];
    matching.push_back(static_cast<std::uint32_t>(li));
    if (l.attribution == Attribution::NoPermission) ++noPermission;
    if (l.attribution == Attribution::Vanished) ++vanished;
    for (std::uint32_t o : owners) {
      if (o >= selected.size() || !selected[o]) continue;
      ++counts[o][r.state];
      if (r.state == TcpState::CloseWait) ++kinds[o][closeWaitKind(r.recvQ)];
      keep[o] = true;
      if (r.state == TcpState::Listen) ports[o].push_back(r.local.port);
    }
  }
  if (f.empty()) keep.assign(s.processes.size(), true);
  for (const TimeWaitGroup& g : s.timeWait) {  // a kept group names its listener
    if (groupMatches(g, f, selected) && g.listener < keep.size()) keep[g.listener] = true;
  }

  out.snapshot.time = s.time;
  out.snapshot.pollInterval = s.pollInterval;
  out.snapshot.namespaces = s.namespaces;
  for (std::size_t i = 0; i < s.namespaces.size(); ++i)
    out.snapshot.namespaces[i].states = nsStates[i];
  std::vector<std::uint32_t> newIndex;
  copyProcesses(s, keep, counts, &kinds, &ports, out, newIndex);
  copyGroups(s, f, selected, newIndex, out.snapshot);
  out.snapshot.unattributedNoPermission = noPermission;
  out.snapshot.unattributedVanished = vanished;

  // The matching sockets, with their selected owners, and the CLOSE_WAIT records among them.
  out.sockets.reserve(matching.size());
  AddressInterner addresses;
  for (std::uint32_t li : matching) {
    SocketLine l = lines[li];
    const auto begin = static_cast<std::uint32_t>(out.snapshot.ownerLinks.size());
    for (std::uint32_t k = 0; k < l.ownerCount; ++k) {
      const std::size_t at = std::size_t{l.ownerBegin} + k;
      if (at >= s.ownerLinks.size()) break;
      const std::uint32_t o = s.ownerLinks[at];
      if (o < newIndex.size() && newIndex[o] != kNoIndex && selected[o]) {
        out.snapshot.ownerLinks.push_back(newIndex[o]);
      }
    }
    l.ownerBegin = begin;
    l.ownerCount = static_cast<std::uint32_t>(out.snapshot.ownerLinks.size()) - begin;
    if (l.socket.state == TcpState::CloseWait) {
      const SocketRecord& r = l.socket;
      CloseWaitSocket& c = out.snapshot.closeWait.emplace_back(CloseWaitSocket{
          .cookie = r.cookie,
          .inode = r.inode,
          .uid = r.uid,
          .netns = l.netns,
          .localAddress = addresses.intern(r.local.address, out.snapshot.addresses),
          .remoteAddress = addresses.intern(r.remote.address, out.snapshot.addresses),
          .localPort = r.local.port,
          .remotePort = r.remote.port,
          .ownerBegin = l.ownerBegin});
      c.setOwnerCount(l.ownerCount);
      c.setKind(closeWaitKind(r.recvQ));
    }
    out.sockets.push_back(l);
  }
  return out;
}

FilteredSnapshot filterCounts(const Snapshot& s, const Filter& f) {
  FilteredSnapshot out;
  const std::vector<bool> selected = selectProcesses(s, f);
  std::vector<StateCounts> counts(s.processes.size());
  std::vector<bool> keep(s.processes.size(), false);
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    if (!selected[i]) continue;
    for (TcpState st : kAllTcpStates) {
      if (stateSelected(f, st)) counts[i][st] = s.processes[i].states[st];
    }
    keep[i] = f.empty() || counts[i].total() > 0;
  }
  for (const TimeWaitGroup& g : s.timeWait) {
    if (groupMatches(g, f, selected) && g.listener < keep.size()) keep[g.listener] = true;
  }

  out.snapshot.time = s.time;
  out.snapshot.pollInterval = s.pollInterval;
  out.snapshot.namespaces = s.namespaces;
  for (std::size_t n = 0; n < s.namespaces.size(); ++n) {
    StateCounts& ns = out.snapshot.namespaces[n].states;
    if (f.selectsOwners()) {
      ns = StateCounts{};
      for (std::size_t i = 0; i < s.processes.size(); ++i) {
        if (selected[i] && s.processes[i].netns == n) ns += counts[i];
      }
      for (const TimeWaitGroup& g : s.timeWait) {
        if (g.netns == n && groupMatches(g, f, selected)) ns[TcpState::TimeWait] += g.timeWait;
      }
    } else {
      for (TcpState st : kAllTcpStates) {
        if (!stateSelected(f, st)) ns[st] = 0;
      }
    }
  }
  std::vector<std::uint32_t> newIndex;
  copyProcesses(s, keep, counts, nullptr, nullptr, out, newIndex);
  if (!stateSelected(f, TcpState::Listen)) {
    for (ProcessEntry& p : out.snapshot.processes)
      p.listenPorts.clear();
  }
  copyGroups(s, f, selected, newIndex, out.snapshot);
  // CLOSE_WAIT records with their selected owners.
  if (stateSelected(f, TcpState::CloseWait)) {
    out.snapshot.addresses = s.addresses;  // the records keep their address indices
    for (const CloseWaitSocket& c : s.closeWait) {
      CloseWaitSocket copy = c;
      copy.ownerBegin = static_cast<std::uint32_t>(out.snapshot.ownerLinks.size());
      for (std::uint32_t k = 0; k < c.ownerCount; ++k) {
        const std::size_t at = std::size_t{c.ownerBegin} + k;
        if (at >= s.ownerLinks.size()) break;
        const std::uint32_t o = s.ownerLinks[at];
        if (o < newIndex.size() && newIndex[o] != kNoIndex && selected[o]) {
          out.snapshot.ownerLinks.push_back(newIndex[o]);
        }
      }
      copy.setOwnerCount(static_cast<std::uint32_t>(out.snapshot.ownerLinks.size()) -
                         copy.ownerBegin);
      if (f.selectsOwners() && copy.ownerCount == 0) {
        out.snapshot.ownerLinks.resize(copy.ownerBegin);
        continue;
      }
      out.snapshot.closeWait.push_back(copy);
    }
  }
  out.snapshot.unattributedNoPermission = f.selectsOwners() ? 0 : s.unattributedNoPermission;
  out.snapshot.unattributedVanished = f.selectsOwners() ? 0 : s.unattributedVanished;
  return out;
}

AlertSelection selectAlerts(std::vector<api::AlertSummary> alerts, const Filter& f,
                            const Snapshot& selected) {
  AlertSelection out;
  if (!f.selectsOwners()) {
    out.about = std::move(alerts);
    return out;
  }
  // What the alert names, as a process the filters can be asked about.
  auto named = [](const api::AlertSummary& a) {
    ProcessInfo info;
    info.key = ProcessKey{a.pid, a.startTime};
    info.unit = a.unit;
    if (const auto colon = a.container.find(':'); colon != std::string::npos) {
      info.container =
          ContainerInfo{a.container.substr(0, colon), a.container.substr(colon + 1), ""};
      info.container.pod = a.podUid;
      info.container.name = a.containerName;
      info.container.podName = a.pod;
      info.container.podNamespace = a.podNamespace;
    }
    return info;
  };
  auto pidSelected = [&](const ProcessKey& key) {
    if (std::find(f.pids.begin(), f.pids.end(), key.pid) == f.pids.end()) return false;
    // The same pid with another start time is an earlier process.
    for (const ProcessEntry& p : selected.processes) {
      if (p.info.key.pid == key.pid && key.startTime != 0 && p.info.key.startTime != 0) {
        return p.info.key.startTime == key.startTime;
      }
    }
    return true;
  };
  for (api::AlertSummary& a : alerts) {
    const ProcessInfo info = named(a);
    const std::string& kind = a.groupKind;
    bool about = false;
    if (kind == "process" || (kind.empty() && a.pid != 0)) {
      about = (f.pids.empty() || pidSelected(info.key)) &&
              (f.units.empty() || matchesUnit(info, f.units)) && matchesContainerFilters(info, f);
    } else if (kind == "unit" || kind == "container" || kind == "pod") {
      // A unit, container or pod the filters name, holding a selected process where --pid asks.
      const bool isUnit = kind == "unit";
      const bool isPod = kind == "pod";
      ProcessInfo whole;
      if (isUnit) {
        whole.unit = info.unit;
      } else {
        whole.container = info.container;
      }
      const bool namedByUnits = f.units.empty() || matchesUnit(whole, f.units);
      const bool holds =
          f.pids.empty() ||
          std::any_of(
              selected.processes.begin(), selected.processes.end(), [&](const ProcessEntry& p) {
                const ContainerInfo& c = p.info.container;
                const bool member =
                    isUnit ? p.info.unit == a.unit
                    : isPod
                        ? (a.podUid.empty() ? c.podName == a.pod && c.podNamespace == a.podNamespace
                                            : c.pod == a.podUid)
                        : c.shortName() == a.container;
                return std::find(f.pids.begin(), f.pids.end(), p.info.key.pid) != f.pids.end() &&
                       member;
              });
      about = !(isUnit  ? a.unit
                : isPod ? a.pod + a.podUid
                        : a.container)
                   .empty() &&
              namedByUnits && holds && matchesContainerFilters(whole, f);
    }
    // Destinations, namespaces and sockets of no visible owner are about no process.
    if (about) {
      out.about.push_back(std::move(a));
    } else {
      ++out.elsewhere;
    }
  }
  return out;
}

}  // namespace waitwatch::cli
