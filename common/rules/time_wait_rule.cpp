// SPDX-License-Identifier: Apache-2.0
// time_wait rules: ephemeral ports used toward one destination (per source address), and per
// namespace the TIME_WAIT count, the rate of new ones and the kernel's overflow counter.
#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>
#include <utility>

#include "rules/config_json.hpp"
#include "rules/match.hpp"
#include "rules/rule_evaluator.hpp"

namespace waitwatch {
namespace {

class TimeWaitEvaluator final : public RuleEvaluator {
 public:
  void begin(const Snapshot& snap, std::span<RuleState* const> rules,
             const Config& config) override {
    rules_.assign(rules.begin(), rules.end());
    configuredInterval_ = config.pollInterval;
    trackKernelCounters(snap);
    // Each TIME_WAIT group's closers: timeWaitByCloser is sorted by group.
    closersOf_.assign(snap.timeWait.size() + 1, 0);
    for (const TimeWaitByCloser& t : snap.timeWaitByCloser) {
      if (t.group < snap.timeWait.size()) ++closersOf_[t.group + 1];
    }
    for (std::size_t i = 1; i < closersOf_.size(); ++i)
      closersOf_[i] += closersOf_[i - 1];
  }

  void finish(std::size_t index, const Snapshot& snap, TimePoint now, std::int64_t nowMs,
              AlertMachine& machine, std::vector<Alert>& out) override {
    (void)nowMs;
    RuleState& rs = *rules_[index];
    const Rule& rule = rs.rule;
    const TimeWaitRule& tw = rule.timeWait;
    const bool processDims = usesProcessDimensions(rule.match);
    const bool endpointDims = usesEndpointDimensions(rule.match);
    const bool filtered = processDims || endpointDims;
    const std::size_t nns = snap.namespaces.size();

    struct NsAgg {
      std::uint64_t timeWait = 0;
      std::uint64_t created = 0;
    };
    std::vector<NsAgg> agg(nns);
    twPass_.assign(snap.timeWait.size(), 0);
    const bool trackDestinations =
        tw.portUsageRatio.has_value() &&
        std::any_of(rs.groups.begin(), rs.groups.end(),
                    [](const auto& kv) { return kv.first.rfind("destination:", 0) == 0; });

    for (std::size_t t = 0; t < snap.timeWait.size(); ++t) {
      const TimeWaitGroup& tg = snap.timeWait[t];
      if (tg.netns >= nns) continue;
      if (filtered && !passesTimeWait(rule.match, snap, tg, processDims, endpointDims)) continue;
      twPass_[t] = 1;
      agg[tg.netns].timeWait += tg.timeWait;
      agg[tg.netns].created += tg.created;
      if (!tw.portUsageRatio || tg.serverSide || tw.groupBy) continue;
      // A pair with no TIME_WAIT socket is kept only for its CLOSE_WAIT sockets: not this rule's.
      const bool over = tg.timeWait > 0 && tg.portUsageRatio >= *tw.portUsageRatio;
      if (!over && !trackDestinations) continue;
      std::string key = destinationKey(snap, tg);
      GroupState* g = nullptr;
      if (over) {
        g = &rs.groups[key];
      } else if (auto it = rs.groups.find(key); it != rs.groups.end()) {
        g = &it->second;  // below the threshold now, but pending or firing: refresh its values
      }
      if (g == nullptr) continue;
      g->seenGeneration = machine.generation;
      g->condition = over;
      if (!g->alert) g->alert = std::make_unique<Alert>(machine.newAlert(rs, key));
      fillDestination(*g->alert, snap, tg);
      g->alert->reasons.clear();
      if (over) g->alert->reasons.push_back(AlertReason::PortUsage);
    }

    if (tw.groupBy) {
      evaluateClosers(rs, snap, machine);
    }
    const bool namespaceRule =
        !tw.groupBy && (tw.minSockets || tw.ratePerSecond || tw.timeWaitOverflow);
    for (std::size_t n = 0; namespaceRule && n < nns; ++n) {
      const NetnsEntry& ns = snap.namespaces[n];
      const std::uint64_t count = filtered ? agg[n].timeWait : ns.states[TcpState::TimeWait];
      const std::uint64_t created = filtered ? agg[n].created : ns.timeWaitCreated;
      const double seconds = createdSeconds(snap, static_cast<std::uint32_t>(n));
      const double rate = seconds > 0 ? static_cast<double>(created) / seconds : 0.0;
      std::vector<AlertReason> reasons;
      if (tw.minSockets && count >= *tw.minSockets) reasons.push_back(AlertReason::TimeWaitCount);
      if (tw.ratePerSecond && rate >= *tw.ratePerSecond) {
        reasons.push_back(AlertReason::TimeWaitRate);
      }
      if (tw.timeWaitOverflow && overflowDelta_[n] > 0) {
        reasons.push_back(AlertReason::TimeWaitOverflow);
      }
      const std::string key = "namespace:" + std::to_string(ns.ref.inode);
      Alert* tracked = trackedAlert(rs, key, !reasons.empty(), machine);
      if (tracked == nullptr) continue;
      Alert& a = *tracked;
      a.group = AlertGroup{};
      a.group.kind = GroupKind::Namespace;
      a.group.netns = ns.ref.label();
      a.group.netnsInode = ns.ref.inode;
      a.reasons = std::move(reasons);
      a.count = count;
      a.timeWait = TimeWaitDetails{};
      a.timeWait.ratePerSecond = rate;
      a.timeWait.maxTimeWaitBuckets = ns.maxTimeWaitBuckets;
      a.timeWait.overflowDelta = overflowDelta_[n];
      a.timeWait.overflowTotal = ns.kernel.timeWaitOverflow;
      a.timeWait.usablePorts = ns.ephemeral.usableCount();
      topTimeWaitGroups(snap, static_cast<std::uint32_t>(n), a);
    }

    machine.finishRule(
        rs, now, /*keepIdle=*/false,
        [](Alert& a) {
          a.count = 0;
          a.timeWait.portUsageRatio = 0;
          a.timeWait.live = 0;
          a.timeWait.ratePerSecond = 0;
          a.timeWait.overflowDelta = 0;
          a.peers.clear();
          a.localPorts.clear();
        },
        out);
  }

 private:
  // The alert of group `key`, refreshed for this evaluation, when its condition holds or it is
  // already pending or firing (to resolve it); nullptr when neither.
  static Alert* trackedAlert(RuleState& rs, const std::string& key, bool condition,
                             AlertMachine& machine) {
    auto it = rs.groups.find(key);
    if (!condition && it == rs.groups.end()) return nullptr;
    if (it == rs.groups.end()) it = rs.groups.try_emplace(key).first;
    GroupState& g = it->second;
    g.seenGeneration = machine.generation;
    g.condition = condition;
    if (!g.alert) g.alert = std::make_unique<Alert>(machine.newAlert(rs, key));
    return g.alert.get();
  }

  // What a namespace's TIME_WAIT "created" was counted over: the time between its dumps
  // when the collector measured it, else the poll interval.
  [[nodiscard]] double createdSeconds(const Snapshot& snap, std::uint32_t netns) const {
    Duration d = snap.pollInterval > Duration::zero() ? snap.pollInterval : configuredInterval_;
    if (netns < snap.namespaces.size() && snap.namespaces[netns].timeWaitWindow > Duration::zero())
      d = snap.namespaces[netns].timeWaitWindow;
    return static_cast<double>(d.count()) / 1000.0;
  }

  static std::string destinationKey(const Snapshot& snap, const TimeWaitGroup& tg) {
    return "destination:" + std::to_string(snap.namespaces[tg.netns].ref.inode) + ":" +
           tg.source.toString() + "->" + tg.destination.toString();
  }

  void fillDestination(Alert& a, const Snapshot& snap, const TimeWaitGroup& tg) const {
    const double seconds = createdSeconds(snap, tg.netns);
    const NetnsEntry& ns = snap.namespaces[tg.netns];
    a.group = AlertGroup{};
    a.group.kind = GroupKind::Destination;
    a.group.netns = ns.ref.label();
    a.group.netnsInode = ns.ref.inode;
    a.count = tg.timeWait;
    a.peers = {PeerCount{tg.destination, tg.timeWait}};
    a.localPorts.clear();
    TimeWaitDetails& t = a.timeWait;
    t.source = tg.source;
    t.destination = tg.destination;
    t.portUsageRatio = tg.portUsageRatio;
    t.live = tg.live;
    t.usablePorts = ns.ephemeral.usableCount();
    t.ratePerSecond = seconds > 0 ? tg.created / seconds : 0.0;
    t.maxTimeWaitBuckets = ns.maxTimeWaitBuckets;
    std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> closers;
    addClosers(snap, static_cast<std::size_t>(&tg - snap.timeWait.data()), closers);
    nameTopCloser(snap, tg.netns, closers, a);
  }

  // Adds the closers of TIME_WAIT group `t` to `closers` (closer index -> (sockets, new)).
  void addClosers(
      const Snapshot& snap, std::size_t t,
      std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>>& closers) const {
    if (t + 1 >= closersOf_.size()) return;
    for (std::size_t i = closersOf_[t]; i < closersOf_[t + 1]; ++i) {
      const TimeWaitByCloser& c = snap.timeWaitByCloser[i];
      auto& [count, created] = closers[c.closer];
      count += c.timeWait;
      created += c.created;
    }
  }

  // Names the process that closed most of the counted TIME_WAIT sockets in the alert's group.
  void nameTopCloser(
      const Snapshot& snap, std::uint32_t netns,
      const std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>>& closers,
      Alert& a) const {
    TimeWaitDetails& t = a.timeWait;
    t.closersTracked = snap.closerSource != CloserSource::None;
    t.closerTimeWait = 0;
    t.closerRatePerSecond = 0;
    t.closerUnknown = 0;
    const ProcessInfo* top = nullptr;
    std::uint64_t topCreated = 0;
    for (const auto& [closer, counts] : closers) {
      if (closer >= snap.closers.size()) {
        t.closerUnknown += counts.first;
        continue;
      }
      const ProcessInfo& p = snap.closers[closer];
      if (top == nullptr || counts.first > t.closerTimeWait ||
          (counts.first == t.closerTimeWait && p.key < top->key)) {
        top = &p;
        t.closerTimeWait = counts.first;
        topCreated = counts.second;
      }
    }
    if (top == nullptr) return;
    const double seconds = createdSeconds(snap, netns);
    t.closerRatePerSecond = seconds > 0 ? static_cast<double>(topCreated) / seconds : 0.0;
    a.group.pid = top->key.pid;
    a.group.startTime = top->key.startTime;
    a.group.comm = top->comm;
    a.group.user = top->user;
    a.group.unit = top->unit;
    setContainer(a.group, top->container);
  }

  bool passesTimeWait(const Match& m, const Snapshot& snap, const TimeWaitGroup& tg,
                      bool processDims, bool endpointDims) const {
    const EphemeralRange& eph = tg.netns < snap.namespaces.size()
                                    ? snap.namespaces[tg.netns].ephemeral
                                    : defaultEphemeralRange();
    if (tg.serverSide) {
      const ProcessInfo* listener =
          tg.listener < snap.processes.size() ? &snap.processes[tg.listener].info : nullptr;
      if (processDims && !passesProcess(m, listener, std::nullopt)) return false;
      return !endpointDims || passesEndpoint(m, tg.destination.port, nullptr, eph);
    }
    if (processDims && !passesProcess(m, nullptr, std::nullopt)) return false;
    return !endpointDims || passesEndpoint(m, std::nullopt, &tg.destination, eph);
  }

  // group_by a closer: the TIME_WAIT sockets each closer group holds, over the groups the
  // rule's endpoint match passes; process matches apply to the closer.
  void evaluateClosers(RuleState& rs, const Snapshot& snap, AlertMachine& machine) {
    const Rule& rule = rs.rule;
    const TimeWaitRule& tw = rule.timeWait;
    const bool processDims = usesProcessDimensions(rule.match);
    const bool endpointDims = usesEndpointDimensions(rule.match);
    struct Acc {
      const ProcessInfo* closer = nullptr;  // the member that closed the most
      std::uint64_t closerSockets = 0;
      std::uint32_t netns = 0;
      GroupKind kind = GroupKind::Process;
      std::uint64_t timeWait = 0;
      std::uint64_t created = 0;
      std::unordered_map<std::uint32_t, std::uint64_t> byCloser;  // closer -> sockets
      std::unordered_map<std::size_t, std::uint64_t> byGroup;     // TIME_WAIT group -> sockets
    };
    std::unordered_map<std::string, Acc> accs;
    for (const TimeWaitByCloser& t : snap.timeWaitByCloser) {
      if (t.group >= snap.timeWait.size() || t.closer >= snap.closers.size()) continue;
      const TimeWaitGroup& tg = snap.timeWait[t.group];
      if (tg.netns >= snap.namespaces.size()) continue;
      const ProcessInfo& c = snap.closers[t.closer];
      if (processDims && !passesProcess(rule.match, &c, std::nullopt)) continue;
      if (endpointDims) {
        const EphemeralRange& eph = snap.namespaces[tg.netns].ephemeral;
        const bool passes = tg.serverSide
                                ? passesEndpoint(rule.match, tg.destination.port, nullptr, eph)
                                : passesEndpoint(rule.match, std::nullopt, &tg.destination, eph);
        if (!passes) continue;
      }
      const std::string inode = std::to_string(snap.namespaces[tg.netns].ref.inode);
      GroupKind kind = GroupKind::Process;
      std::string key;
      if (*tw.groupBy == GroupBy::Unit && !c.unit.empty()) {
        kind = GroupKind::Unit;
        key = "closer:unit:" + c.unit + ":" + inode;
      } else if (*tw.groupBy == GroupBy::Container && !c.container.empty()) {
        kind = GroupKind::Container;
        key = "closer:container:" + c.container.runtime + ":" + c.container.id + ":" + inode;
      } else if (*tw.groupBy == GroupBy::Pod && !c.container.pod.empty()) {
        kind = GroupKind::Pod;
        key = "closer:pod:" + c.container.pod + ":" + inode;
      } else {
        key = "closer:process:" + std::to_string(c.key.pid) + "@" +
              std::to_string(c.key.startTime) + ":" + c.comm + ":" + inode;
      }
      Acc& a = accs[key];
      const std::uint64_t mine = a.byCloser[t.closer] += t.timeWait;
      if (a.closer == nullptr || mine > a.closerSockets) {
        a.closer = &c;
        a.closerSockets = mine;
      }
      a.netns = tg.netns;
      a.kind = kind;
      a.timeWait += t.timeWait;
      a.created += t.created;
      a.byGroup[t.group] += t.timeWait;
    }
    for (auto& [key, a] : accs) {
      const double seconds = createdSeconds(snap, a.netns);
      const double rate = seconds > 0 ? static_cast<double>(a.created) / seconds : 0.0;
      // The most used pair it closes toward.
      const TimeWaitGroup* worst = nullptr;
      for (const auto& [group, n] : a.byGroup) {
        const TimeWaitGroup& tg = snap.timeWait[group];
        if (!tg.serverSide && (worst == nullptr || tg.portUsageRatio > worst->portUsageRatio)) {
          worst = &tg;
        }
      }
      std::vector<AlertReason> reasons;
      if (tw.portUsageRatio && worst != nullptr && worst->portUsageRatio >= *tw.portUsageRatio) {
        reasons.push_back(AlertReason::PortUsage);
      }
      if (tw.minSockets && a.timeWait >= *tw.minSockets) {
        reasons.push_back(AlertReason::TimeWaitCount);
      }
      if (tw.ratePerSecond && rate >= *tw.ratePerSecond) {
        reasons.push_back(AlertReason::TimeWaitRate);
      }
      Alert* tracked = trackedAlert(rs, key, !reasons.empty(), machine);
      if (tracked == nullptr) continue;
      Alert& alert = *tracked;
      const NetnsEntry& ns = snap.namespaces[a.netns];
      alert.group = AlertGroup{};
      alert.group.kind = a.kind;
      alert.group.netns = ns.ref.label();
      alert.group.netnsInode = ns.ref.inode;
      alert.group.processes = static_cast<std::uint32_t>(a.byCloser.size());
      alert.reasons = std::move(reasons);
      alert.count = a.timeWait;
      alert.timeWait = TimeWaitDetails{};
      TimeWaitDetails& d = alert.timeWait;
      d.ratePerSecond = rate;
      d.maxTimeWaitBuckets = ns.maxTimeWaitBuckets;
      d.usablePorts = ns.ephemeral.usableCount();
      d.closersTracked = true;
      d.closerTimeWait = a.timeWait;
      d.closerRatePerSecond = rate;
      if (worst != nullptr) {
        d.source = worst->source;
        d.destination = worst->destination;
        d.portUsageRatio = worst->portUsageRatio;
        d.live = worst->live;
      }
      // Where it closes toward: the destinations and server ports with most of its sockets.
      std::vector<std::pair<std::uint64_t, std::size_t>> where;
      for (const auto& [group, n] : a.byGroup)
        where.emplace_back(n, group);
      std::sort(where.begin(), where.end(), [](const auto& x, const auto& y) {
        return x.first != y.first ? x.first > y.first : x.second < y.second;
      });
      alert.peers.clear();
      alert.localPorts.clear();
      for (const auto& [n, group] : where) {
        const TimeWaitGroup& tg = snap.timeWait[group];
        if (tg.serverSide) {
          if (alert.localPorts.size() < kTopReported) {
            alert.localPorts.push_back(PortCount{tg.destination.port, n});
          }
        } else if (alert.peers.size() < kTopReported) {
          alert.peers.push_back(PeerCount{tg.destination, n});
        }
      }
      const ProcessInfo& c = *a.closer;
      alert.group.pid = a.kind == GroupKind::Process ? c.key.pid : 0;
      alert.group.startTime = a.kind == GroupKind::Process ? c.key.startTime : 0;
      alert.group.comm = c.comm;
      alert.group.user = c.user;
      alert.group.unit = c.unit;
      setContainer(alert.group, c.container);
    }
  }

  // The destinations and server ports holding most TIME_WAIT sockets in a namespace: what an
  // operator looks at first.
  void topTimeWaitGroups(const Snapshot& snap, std::uint32_t ns, Alert& a) const {
    std::vector<std::pair<std::uint64_t, std::size_t>> clients;
    std::vector<std::pair<std::uint64_t, std::size_t>> servers;
    const TimeWaitGroup* newest = nullptr;
    for (std::size_t t = 0; t < snap.timeWait.size(); ++t) {
      const TimeWaitGroup& tg = snap.timeWait[t];
      if (tg.netns != ns || twPass_[t] == 0 || tg.timeWait == 0) continue;
      (tg.serverSide ? servers : clients).emplace_back(tg.timeWait, t);
      if (tg.created > 0 && (newest == nullptr || tg.created > newest->created)) newest = &tg;
    }
    a.timeWait.newest = newest != nullptr ? newest->created : 0;
    a.timeWait.newestServerSide = newest != nullptr && newest->serverSide;
    a.timeWait.newestAt = newest != nullptr ? newest->destination : Endpoint{};
    std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> closers;
    for (std::size_t t = 0; t < snap.timeWait.size(); ++t) {
      if (snap.timeWait[t].netns == ns && twPass_[t] != 0) addClosers(snap, t, closers);
    }
    nameTopCloser(snap, ns, closers, a);
    auto top = [](std::vector<std::pair<std::uint64_t, std::size_t>>& v) {
      const std::size_t k = std::min(v.size(), kTopReported);
      std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(),
                        [](const auto& x, const auto& y) {
                          return x.first != y.first ? x.first > y.first : x.second < y.second;
                        });
      v.resize(k);
    };
    top(clients);
    top(servers);
    a.peers.clear();
    for (const auto& [n, t] : clients)
      a.peers.push_back(PeerCount{snap.timeWait[t].destination, n});
    a.localPorts.clear();
    for (const auto& [n, t] : servers) {
      a.localPorts.push_back(PortCount{snap.timeWait[t].destination.port, n});
    }
  }

  void trackKernelCounters(const Snapshot& snap) {
    overflowDelta_.assign(snap.namespaces.size(), 0);
    std::unordered_map<std::uint64_t, std::uint64_t> next;
    next.reserve(snap.namespaces.size());
    for (std::size_t n = 0; n < snap.namespaces.size(); ++n) {
      const NetnsEntry& ns = snap.namespaces[n];
      if (!ns.kernel.valid) continue;
      const std::uint64_t value = ns.kernel.timeWaitOverflow;
      if (auto it = lastOverflow_.find(ns.ref.inode); it != lastOverflow_.end()) {
        // A counter that went down belongs to a new namespace with a recycled inode.
        if (value > it->second) overflowDelta_[n] = value - it->second;
      }
      next[ns.ref.inode] = value;
    }
    lastOverflow_ = std::move(next);
  }

  std::vector<RuleState*> rules_;
  Duration configuredInterval_{};
  std::vector<std::uint64_t> overflowDelta_;                       // per namespace index
  std::unordered_map<std::uint64_t, std::uint64_t> lastOverflow_;  // netns inode -> counter
  std::vector<std::uint8_t> twPass_;  // the snapshot's TIME_WAIT groups the rule matched
  // Per TIME_WAIT group t: its closers are snap.timeWaitByCloser[closersOf_[t], closersOf_[t+1]).
  std::vector<std::size_t> closersOf_;
};

constexpr std::array<std::string_view, 5> kKeys = {
    "port_usage_ratio", "min_sockets", "rate_per_second", "time_wait_overflow", "group_by"};

bool readSection(ConfigReader& in, const nlohmann::json& v, const std::string& path,
                 Duration /*pollInterval*/, Rule& out) {
  TimeWaitRule& r = out.timeWait;
  if (v.contains("port_usage_ratio")) {
    double x = 0;
    if (!in.ratio(v["port_usage_ratio"], in.child(path, "port_usage_ratio"), x)) return false;
    r.portUsageRatio = x;
  }
  if (v.contains("min_sockets")) {
    std::uint64_t n = 0;
    if (!in.count(v["min_sockets"], in.child(path, "min_sockets"), 1, n)) return false;
    r.minSockets = n;
  }
  if (v.contains("rate_per_second")) {
    double x = 0;
    if (!in.positiveNumber(v["rate_per_second"], in.child(path, "rate_per_second"), x)) {
      return false;
    }
    r.ratePerSecond = x;
  }
  if (v.contains("time_wait_overflow") &&
      !in.boolean(v["time_wait_overflow"], in.child(path, "time_wait_overflow"),
                  r.timeWaitOverflow)) {
    return false;
  }
  if (v.contains("group_by")) {
    const std::string p = in.child(path, "group_by");
    std::string g;
    if (!in.string(v["group_by"], p, g)) return false;
    if (g != "destination") {
      const std::optional<GroupBy> groupBy = parseGroupBy(g);
      if (!groupBy) {
        return in.fail(p, config_json::jsonQuote(g) +
                              " is not a grouping, expected \"destination\", " + groupByNames());
      }
      if (r.timeWaitOverflow) {
        return in.fail(in.child(path, "time_wait_overflow"),
                       "is per namespace: the kernel's counter names no closer; use it in a "
                       "rule without \"group_by\"");
      }
      r.groupBy = *groupBy;
    }
  }
  if (!r.portUsageRatio && !r.minSockets && !r.ratePerSecond && !r.timeWaitOverflow) {
    return in.fail(path,
                   "a time_wait rule needs at least one of port_usage_ratio, min_sockets, "
                   "rate_per_second, time_wait_overflow");
  }
  return true;
}

std::unique_ptr<RuleEvaluator> makeEvaluator() {
  return std::make_unique<TimeWaitEvaluator>();
}

}  // namespace

const RuleTypeDefinition& timeWaitRuleType() {
  static const RuleTypeDefinition type{RuleType::TimeWait, kKeys, readSection, makeEvaluator};
  return type;
}

}  // namespace waitwatch
