// SPDX-License-Identifier: Apache-2.0
#include "rules/engine.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "rules/cookie_ages.hpp"
#include "rules/match.hpp"
#include "rules/messages.hpp"

namespace waitwatch {
namespace {

constexpr std::size_t kSketchSize = 8;      // candidates kept per group for ports and peers
constexpr std::size_t kTopReported = 5;     // at most this many ports and peers in an alert
constexpr std::size_t kGrowthSamples = 32;  // bounded history per group for `growth`
constexpr std::uint32_t kUnassigned = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kExcluded = kUnassigned - 1;
// How far ahead the cookie table is prefetched: its lookups otherwise wait on memory one by one.
constexpr std::size_t kAgesLookahead = 8;

// Space-saving heavy hitters over a compact key K (a port, or a 64-bit fingerprint of a peer),
// remembering the value V to report: exact while a group has at most kSketchSize distinct
// values (the usual case: a few ports, a few peers). Beyond that each slot keeps the error it
// inherited, and what is reported is the guaranteed part (count - error): a lower bound, never
// an inflated count. Fixed size, no allocation.
template <typename K, typename V>
class TopK {
 public:
  template <typename MakeValue>
  void add(K key, MakeValue&& makeValue) {
    std::size_t minIndex = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (keys_[i] == key) {
        ++counts_[i];
        return;
      }
      if (counts_[i] < counts_[minIndex]) minIndex = i;
    }
    if (size_ < kSketchSize) {
      keys_[size_] = key;
      values_[size_] = makeValue();
      errors_[size_] = 0;
      counts_[size_++] = 1;
      return;
    }
    keys_[minIndex] = key;
    values_[minIndex] = makeValue();
    errors_[minIndex] = counts_[minIndex];
    ++counts_[minIndex];
  }

  // Most first (by guaranteed count), then by value, at most kTopReported.
  template <typename Out, typename Make>
  void top(std::vector<Out>& out, Make&& make) const {
    std::array<std::size_t, kSketchSize> order{};
    for (std::size_t i = 0; i < size_; ++i)
      order[i] = i;
    auto sure = [&](std::size_t i) { return counts_[i] - errors_[i]; };
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(size_),
              [&](std::size_t a, std::size_t b) {
                if (sure(a) != sure(b)) return sure(a) > sure(b);
                return values_[a] < values_[b];
              });
    out.clear();
    for (std::size_t i = 0; i < size_ && i < kTopReported; ++i) {
      out.push_back(make(values_[order[i]], sure(order[i])));
    }
  }

 private:
  std::array<K, kSketchSize> keys_{};
  std::array<std::uint64_t, kSketchSize> counts_{};
  std::array<std::uint64_t, kSketchSize> errors_{};
  std::array<V, kSketchSize> values_{};
  std::size_t size_ = 0;
};

// A peer's identity for the sketch: cheap to compare (no 16-byte memcmp per socket).
std::uint64_t peerFingerprint(const IpAddress& a, std::uint16_t port) {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  std::memcpy(&hi, a.bytes.data(), 8);
  std::memcpy(&lo, a.bytes.data() + 8, 8);
  std::uint64_t h = hi * 0x9e3779b97f4a7c15ULL;
  h ^= (lo + (h << 6) + (h >> 2)) * 0xbf58476d1ce4e5b9ULL;
  h ^= (static_cast<std::uint64_t>(port) << 8 | static_cast<std::uint64_t>(a.family)) *
       0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

struct Sample {
  std::int64_t ms = 0;
  std::uint64_t count = 0;
};

// What the engine remembers about one group of one rule between polls.
struct GroupState {
  std::uint64_t seenGeneration = 0;  // the poll that last saw the group
  bool condition = false;            // this poll's verdict (valid when seen this poll)
  std::optional<TimePoint> pendingSince;
  std::optional<TimePoint> falseSince;
  bool firing = false;
  TimePoint since{};
  TimePoint firedAt{};
  TimePoint lastNotified{};
  std::uint64_t peak = 0;
  std::vector<AlertReason> firedReasons;  // union of reasons while firing
  std::vector<Sample> history;            // growth: (time, settled count), oldest first
  std::unique_ptr<Alert> alert;           // latest values; only while pending or firing
};

struct RuleState {
  Rule rule;
  std::map<std::string, GroupState, std::less<>> groups;  // ordered: deterministic output
};

// One close_wait group while a poll is accumulated.
struct GroupAcc {
  GroupKind kind = GroupKind::Process;
  std::string key;
  std::uint32_t process = kNoIndex;  // process groups: the process; others: a member
  std::uint32_t netns = kNoIndex;
  std::uint64_t total = 0;
  std::uint64_t counted = 0;  // older than min_age
  std::uint64_t settled = 0;  // seen in an earlier poll (or present at the first)
  std::uint64_t clientSide = 0;
  std::int64_t oldestMs = std::numeric_limits<std::int64_t>::max();
  bool oldestLowerBound = false;
  std::size_t lastSocket = std::numeric_limits<std::size_t>::max();  // once per group
  std::uint32_t bestProcess = kNoIndex;
  std::uint64_t bestCount = 0;
  std::uint32_t processes = 0;
  TopK<std::uint16_t, std::uint16_t> ports;
  TopK<std::uint64_t, Endpoint> peers;
};

bool hasReason(const std::vector<AlertReason>& v, AlertReason r) {
  return std::find(v.begin(), v.end(), r) != v.end();
}

void mergeReasons(std::vector<AlertReason>& into, const std::vector<AlertReason>& from) {
  for (AlertReason r : from) {
    if (!hasReason(into, r)) into.push_back(r);
  }
  std::sort(into.begin(), into.end());
}

// What "peak" reports in a resolution: the most CLOSE_WAIT sockets the group held while firing
// (all of them, not only those past min_age), or the most TIME_WAIT sockets.
std::uint64_t peakValue(const Alert& a) {
  return a.type == RuleType::CloseWait ? a.closeWait.total : a.count;
}

const EphemeralRange& defaultEphemeralRange() {
  static const EphemeralRange range;
  return range;
}

}  // namespace

struct Engine::Impl {
  Config config;
  std::vector<RuleState> rules;
  std::vector<Alert> dropped;

  CookieAges ages;
  std::optional<TimePoint> epoch;  // the first poll: millisecond scale origin
  std::int64_t lastMs = 0;
  std::uint64_t generation = 0;

  // One close_wait rule's accumulation over a poll's sockets. Every close_wait rule is fed in
  // the same pass that ages the sockets in `ages`, so no per-socket age is kept beside the
  // cookie table (that was 16 bytes a socket).
  struct CloseWaitPass {
    RuleState* rs = nullptr;
    bool processDims = false;
    bool endpointDims = false;
    std::int64_t minAgeMs = 0;
    // Per poll, reused buffers (sized by the snapshot, never per socket allocations).
    std::vector<std::uint32_t> procGroup;
    std::vector<std::uint32_t> procTotal;
    std::vector<std::uint32_t> nsUnattributed;
    std::vector<GroupAcc> accs;
    std::unordered_map<std::string, std::uint32_t> accByKey;
  };
  std::vector<CloseWaitPass> passes;                              // one per close_wait rule
  std::vector<std::uint64_t> overflowDelta;                       // per namespace index
  std::unordered_map<std::uint64_t, std::uint64_t> lastOverflow;  // netns inode -> counter
  std::vector<std::uint8_t> twPass;

  explicit Impl(const Config& c) { setRules(c); }

  void setRules(const Config& c) {
    std::vector<RuleState> next;
    next.reserve(c.rules.size());
    std::vector<bool> taken(rules.size(), false);
    for (const Rule& r : c.rules) {
      RuleState rs{r, {}};
      for (std::size_t i = 0; i < rules.size(); ++i) {
        if (!taken[i] && rules[i].rule.name == r.name && rules[i].rule.type == r.type) {
          rs.groups = std::move(rules[i].groups);
          taken[i] = true;
          break;
        }
      }
      next.push_back(std::move(rs));
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if (taken[i]) continue;
      for (auto& [key, g] : rules[i].groups) {
        if (!g.firing || !g.alert) continue;
        Alert a = *g.alert;
        a.reasons = g.firedReasons;
        a.since = g.since;
        a.firedAt = g.firedAt;
        if (a.type == RuleType::CloseWait) a.closeWait.peak = g.peak;
        a.at = epoch ? fromMs(lastMs) : TimePoint{};
        // The group keeps its latest values, not a text: say what the alert read as it fired.
        a.state = AlertState::Firing;
        const std::string was = alertMessage(a, rules[i].rule);
        a.state = AlertState::Resolved;
        a.message = "resolved: rule " + rules[i].rule.name +
                    " was removed from the configuration (it was: " + was + ")";
        dropped.push_back(std::move(a));
      }
    }
    rules = std::move(next);
    config = c;
  }

  [[nodiscard]] std::int64_t toMs(TimePoint t) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - *epoch).count();
  }
  [[nodiscard]] TimePoint fromMs(std::int64_t ms) const {
    return *epoch + std::chrono::milliseconds(ms);
  }

  Alert newAlert(const RuleState& rs, const std::string& key) const {
    Alert a;
    a.rule = rs.rule.name;
    a.type = rs.rule.type;
    a.severity = rs.rule.severity;
    a.key = key;
    return a;
  }

  // Emits a transition with the group's latest values.
  void emit(const RuleState& rs, const GroupState& g, AlertState state, TimePoint now,
            std::vector<Alert>& out) const {
    Alert a = *g.alert;
    a.severity = rs.rule.severity;
    a.state = state;
    a.since = g.since;
    a.firedAt = g.firedAt;
    a.at = now;
    if (a.type == RuleType::CloseWait) a.closeWait.peak = g.peak;
    if (state == AlertState::Resolved || a.reasons.empty()) a.reasons = g.firedReasons;
    a.message = alertMessage(a, rs.rule);
    out.push_back(std::move(a));
  }

  // The state machine of one group: pending -> firing (after `for`) -> resolved (after
  // `clear_for` of false), with reminders while firing.
  void step(const RuleState& rs, GroupState& g, bool condition, TimePoint now,
            std::vector<Alert>& out) const {
    const Rule& rule = rs.rule;
    if (condition) {
      g.falseSince.reset();
      if (!g.pendingSince) g.pendingSince = now;
      if (!g.firing) {
        if (now - *g.pendingSince >= rule.forDuration) {
          g.firing = true;
          g.since = *g.pendingSince;
          g.firedAt = now;
          g.lastNotified = now;
          g.peak = peakValue(*g.alert);
          g.firedReasons = g.alert->reasons;
          emit(rs, g, AlertState::Firing, now, out);
        }
        return;
      }
      g.peak = std::max(g.peak, peakValue(*g.alert));
      mergeReasons(g.firedReasons, g.alert->reasons);
      const Duration reminder = config.alerts.reminderInterval;
      if (reminder > Duration::zero() && now - g.lastNotified >= reminder) {
        g.lastNotified = now;
        emit(rs, g, AlertState::StillFiring, now, out);
      }
      return;
    }
    g.pendingSince.reset();
    if (!g.firing) return;
    if (!g.falseSince) g.falseSince = now;
    if (now - *g.falseSince >= rule.clearFor) {
      emit(rs, g, AlertState::Resolved, now, out);
      g.firing = false;
      g.falseSince.reset();
      g.firedReasons.clear();
    }
  }

  // Walks a rule's groups in key order: steps those seen this poll with their verdict, and
  // those not seen as false (zeroing their values), forgetting groups with nothing to remember.
  template <typename Zero>
  void finishRule(RuleState& rs, TimePoint now, bool keepIdle, Zero&& zero,
                  std::vector<Alert>& out) {
    for (auto it = rs.groups.begin(); it != rs.groups.end();) {
      GroupState& g = it->second;
      const bool seen = g.seenGeneration == generation;
      if (!seen) {
        if (g.firing && g.alert) zero(*g.alert);
        step(rs, g, false, now, out);
      } else {
        step(rs, g, g.condition, now, out);
      }
      const bool idle = !g.firing && !g.pendingSince;
      if (idle) g.alert.reset();
      if (idle && (!seen || !keepIdle)) {
        it = rs.groups.erase(it);
      } else {
        ++it;
      }
    }
  }

  // ---- close_wait -------------------------------------------------------------------------

  static std::uint32_t groupForProcess(CloseWaitPass& pass, const Snapshot& snap, std::uint32_t p) {
    std::vector<std::uint32_t>& procGroup = pass.procGroup;
    if (procGroup[p] != kUnassigned) return procGroup[p];
    const RuleState& rs = *pass.rs;
    const ProcessEntry& pe = snap.processes[p];
    if (pass.processDims && !passesProcess(rs.rule.match, &pe.info, std::nullopt)) {
      return procGroup[p] = kExcluded;
    }
    const std::uint32_t ns = pe.netns < snap.namespaces.size() ? pe.netns : kNoIndex;
    const std::string inode = std::to_string(ns == kNoIndex ? 0 : snap.namespaces[ns].ref.inode);
    GroupKind kind = GroupKind::Process;
    std::string key;
    if (rs.rule.closeWait.groupBy == GroupBy::Unit && !pe.info.unit.empty()) {
      kind = GroupKind::Unit;
      key = "unit:" + pe.info.unit + ":" + inode;
    } else if (rs.rule.closeWait.groupBy == GroupBy::Container && !pe.info.container.empty()) {
      kind = GroupKind::Container;
      key = "container:" + pe.info.container.runtime + ":" + pe.info.container.id + ":" + inode;
    } else {
      key = "process:" + std::to_string(pe.info.key.pid) + "@" +
            std::to_string(pe.info.key.startTime) + ":" + inode;
    }
    auto [it, inserted] =
        pass.accByKey.try_emplace(key, static_cast<std::uint32_t>(pass.accs.size()));
    if (inserted) {
      GroupAcc& acc = pass.accs.emplace_back();
      acc.kind = kind;
      acc.key = std::move(key);
      acc.process = p;
      acc.netns = ns;
    }
    return procGroup[p] = it->second;
  }

  static std::uint32_t unattributedGroup(CloseWaitPass& pass, const Snapshot& snap,
                                         std::uint32_t ns) {
    const std::size_t slot = ns == kNoIndex ? snap.namespaces.size() : ns;
    if (pass.nsUnattributed[slot] != kUnassigned) return pass.nsUnattributed[slot];
    const std::uint32_t index = static_cast<std::uint32_t>(pass.accs.size());
    GroupAcc& acc = pass.accs.emplace_back();
    acc.kind = GroupKind::Unattributed;
    acc.key = "unattributed:" + std::to_string(ns == kNoIndex ? 0 : snap.namespaces[ns].ref.inode);
    acc.netns = ns;
    return pass.nsUnattributed[slot] = index;
  }

  static void fillLabels(AlertGroup& g, const Snapshot& snap, const GroupAcc& acc) {
    g = AlertGroup{};
    g.kind = acc.kind;
    if (acc.netns != kNoIndex) {
      g.netns = snap.namespaces[acc.netns].ref.label();
      g.netnsInode = snap.namespaces[acc.netns].ref.inode;
    }
    g.processes = acc.processes;
    const std::uint32_t p = acc.kind == GroupKind::Process ? acc.process : acc.bestProcess;
    if (p == kNoIndex) return;
    const ProcessInfo& info = snap.processes[p].info;
    if (acc.kind == GroupKind::Process) {
      g.pid = info.key.pid;
      g.startTime = info.key.startTime;
    }
    g.comm = info.comm;
    g.user = info.user.empty() ? std::to_string(info.uid) : info.user;
    g.unit = info.unit;
    g.container = info.container.shortName();
  }

  // Starts a close_wait rule's pass over this poll's sockets.
  static void beginCloseWait(CloseWaitPass& pass, RuleState& rs, const Snapshot& snap) {
    pass.rs = &rs;
    pass.processDims = usesProcessDimensions(rs.rule.match);
    pass.endpointDims = usesEndpointDimensions(rs.rule.match);
    pass.minAgeMs = rs.rule.closeWait.minAge.count();
    pass.procGroup.assign(snap.processes.size(), kUnassigned);
    pass.procTotal.assign(snap.processes.size(), 0);
    pass.nsUnattributed.assign(snap.namespaces.size() + 1, kUnassigned);
    pass.accs.clear();
    pass.accByKey.clear();
  }

  // Socket `i` of the snapshot, aged `age`, into every close_wait rule's groups.
  void addCloseWaitSocket(const Snapshot& snap, std::size_t i, const CookieAges::Entry& age,
                          std::int64_t nowMs) {
    const CloseWaitSocket& s = snap.closeWait[i];
    const std::size_t nproc = snap.processes.size();
    const std::uint32_t ns = s.netns < snap.namespaces.size() ? s.netns : kNoIndex;
    const bool settled = age.lowerBound || age.firstSeenMs < nowMs;

    // Owners, ignoring links that point nowhere (bad input never reads out of bounds).
    const std::uint32_t begin = s.ownerBegin;
    std::uint32_t count = s.ownerCount;
    if (begin > snap.ownerLinks.size() || count > snap.ownerLinks.size() - begin) count = 0;
    bool anyOwner = false;
    bool listens = false;
    for (std::uint32_t k = 0; k < count; ++k) {
      const std::uint32_t p = snap.ownerLinks[begin + k];
      if (p >= nproc) continue;
      anyOwner = true;
      const auto& lp = snap.processes[p].listenPorts;
      if (std::binary_search(lp.begin(), lp.end(), s.localPort)) listens = true;
    }
    const EphemeralRange& eph =
        ns == kNoIndex ? defaultEphemeralRange() : snap.namespaces[ns].ephemeral;
    const bool clientSide = !listens && eph.contains(s.localPort);
    // Server side: the peer is a client, its port says nothing; client side: the service.
    const Endpoint remote = snap.remote(s);
    const IpAddress peerAddress = remote.address.unmapped();
    const std::uint16_t peerPort = clientSide ? remote.port : 0;
    const std::uint64_t peerKey = peerFingerprint(peerAddress, peerPort);

    for (CloseWaitPass& pass : passes) {
      const Match& match = pass.rs->rule.match;
      if (pass.endpointDims && !passesEndpoint(match, s.localPort, &remote, eph)) continue;
      const bool old = nowMs - age.firstSeenMs >= pass.minAgeMs;

      auto add = [&](std::uint32_t g) {
        GroupAcc& acc = pass.accs[g];
        if (acc.lastSocket == i) return false;  // a second owner in the same group
        acc.lastSocket = i;
        ++acc.total;
        if (old) ++acc.counted;
        if (settled) ++acc.settled;
        if (clientSide) {
          ++acc.clientSide;
        } else {
          acc.ports.add(s.localPort, [&] { return s.localPort; });
        }
        acc.peers.add(peerKey, [&] { return Endpoint{peerAddress, peerPort}; });
        if (age.firstSeenMs < acc.oldestMs || (age.firstSeenMs == acc.oldestMs && age.lowerBound)) {
          acc.oldestMs = age.firstSeenMs;
          acc.oldestLowerBound = age.lowerBound;
        }
        return true;
      };

      if (anyOwner) {
        for (std::uint32_t k = 0; k < count; ++k) {
          const std::uint32_t p = snap.ownerLinks[begin + k];
          if (p >= nproc) continue;
          const std::uint32_t g = groupForProcess(pass, snap, p);
          if (g == kExcluded) continue;
          add(g);
          ++pass.procTotal[p];
        }
      } else {
        if (pass.processDims && !passesProcess(match, nullptr, s.uid)) continue;
        add(unattributedGroup(pass, snap, ns));
      }
    }
  }

  // Ends a close_wait rule's pass: its groups' verdicts and transitions.
  void finishCloseWait(CloseWaitPass& pass, const Snapshot& snap, TimePoint now, std::int64_t nowMs,
                       std::vector<Alert>& out) {
    RuleState& rs = *pass.rs;
    const CloseWaitRule& cw = rs.rule.closeWait;
    const std::size_t nproc = snap.processes.size();
    const std::vector<std::uint32_t>& procGroup = pass.procGroup;
    const std::vector<std::uint32_t>& procTotal = pass.procTotal;
    std::vector<GroupAcc>& accs = pass.accs;

    // Members of unit and container groups: how many, and the biggest for the labels.
    for (std::uint32_t p = 0; p < nproc; ++p) {
      if (procTotal[p] == 0 || procGroup[p] >= kExcluded) continue;
      GroupAcc& acc = accs[procGroup[p]];
      ++acc.processes;
      if (procTotal[p] > acc.bestCount) {
        acc.bestCount = procTotal[p];
        acc.bestProcess = p;
      }
    }

    const bool keepIdle = cw.growth.has_value();  // growth needs the history of every group
    const std::int64_t windowMs = cw.growthWindow.count();
    for (GroupAcc& acc : accs) {
      if (acc.total == 0) continue;
      auto [it, inserted] = rs.groups.try_emplace(acc.key);
      GroupState& g = it->second;
      g.seenGeneration = generation;

      std::uint64_t growth = 0;
      if (cw.growth) {
        auto& h = g.history;
        // Samples older than the window no longer count.
        const auto stale = std::find_if(h.begin(), h.end(),
                                        [&](const Sample& x) { return x.ms >= nowMs - windowMs; });
        h.erase(h.begin(), stale);
        std::uint64_t lowest = acc.settled;
        for (const Sample& x : h)
          lowest = std::min(lowest, x.count);
        growth = acc.settled - lowest;
        const std::int64_t spacing = std::max<std::int64_t>(1, windowMs / kGrowthSamples);
        if (h.empty() || nowMs - h.back().ms >= spacing) {
          if (h.size() == kGrowthSamples) h.erase(h.begin());
          if (h.capacity() == 0) h.reserve(kGrowthSamples);
          h.push_back(Sample{nowMs, acc.settled});
        }
      }

      std::vector<AlertReason> reasons;
      if (acc.counted >= cw.minSockets) reasons.push_back(AlertReason::OldSockets);
      if (cw.growth && growth >= *cw.growth) reasons.push_back(AlertReason::Growth);
      g.condition = !reasons.empty();
      if (!g.condition && !g.firing && !g.pendingSince) continue;  // nothing to describe

      if (!g.alert) g.alert = std::make_unique<Alert>(newAlert(rs, acc.key));
      Alert& a = *g.alert;
      fillLabels(a.group, snap, acc);
      a.reasons = std::move(reasons);
      a.count = acc.counted;
      a.oldestAge = Duration(nowMs - acc.oldestMs);
      a.oldestAgeIsLowerBound = acc.oldestLowerBound;
      acc.ports.top(a.localPorts, [](std::uint16_t port, std::uint64_t n) {
        return PortCount{port, n};
      });
      acc.peers.top(a.peers, [](const Endpoint& e, std::uint64_t n) { return PeerCount{e, n}; });
      a.closeWait.total = acc.total;
      a.closeWait.growth = growth;
      a.closeWait.clientSide = acc.clientSide;
    }

    finishRule(
        rs, now, keepIdle,
        [](Alert& a) {
          a.count = 0;
          a.closeWait.total = 0;
          a.closeWait.growth = 0;
          a.closeWait.clientSide = 0;
          a.oldestAge = Duration::zero();
          a.oldestAgeIsLowerBound = false;
          a.localPorts.clear();
          a.peers.clear();
        },
        out);
  }

  // ---- time_wait --------------------------------------------------------------------------

  // What a namespace's TIME_WAIT "created" was counted over: the time between its dumps
  // when the collector measured it, else the poll interval.
  [[nodiscard]] double createdSeconds(const Snapshot& snap, std::uint32_t netns) const {
    Duration d = snap.pollInterval > Duration::zero() ? snap.pollInterval : config.pollInterval;
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

  void evaluateTimeWait(RuleState& rs, const Snapshot& snap, TimePoint now,
                        std::vector<Alert>& out) {
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
    twPass.assign(snap.timeWait.size(), 0);
    const bool trackDestinations =
        tw.portUsageRatio.has_value() &&
        std::any_of(rs.groups.begin(), rs.groups.end(),
                    [](const auto& kv) { return kv.first.rfind("destination:", 0) == 0; });

    for (std::size_t t = 0; t < snap.timeWait.size(); ++t) {
      const TimeWaitGroup& tg = snap.timeWait[t];
      if (tg.netns >= nns) continue;
      if (filtered && !passesTimeWait(rule.match, snap, tg, processDims, endpointDims)) continue;
      twPass[t] = 1;
      agg[tg.netns].timeWait += tg.timeWait;
      agg[tg.netns].created += tg.created;
      if (!tw.portUsageRatio || tg.serverSide) continue;
      const bool over = tg.portUsageRatio >= *tw.portUsageRatio;
      if (!over && !trackDestinations) continue;
      std::string key = destinationKey(snap, tg);
      GroupState* g = nullptr;
      if (over) {
        g = &rs.groups[key];
      } else if (auto it = rs.groups.find(key); it != rs.groups.end()) {
        g = &it->second;  // below the threshold now, but pending or firing: refresh its values
      }
      if (g == nullptr) continue;
      g->seenGeneration = generation;
      g->condition = over;
      if (!g->alert) g->alert = std::make_unique<Alert>(newAlert(rs, key));
      fillDestination(*g->alert, snap, tg);
      g->alert->reasons.clear();
      if (over) g->alert->reasons.push_back(AlertReason::PortUsage);
    }

    const bool namespaceRule = tw.minSockets || tw.ratePerSecond || tw.timeWaitOverflow;
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
      if (tw.timeWaitOverflow && overflowDelta[n] > 0) {
        reasons.push_back(AlertReason::TimeWaitOverflow);
      }
      const std::string key = "namespace:" + std::to_string(ns.ref.inode);
      auto it = rs.groups.find(key);
      if (reasons.empty() && it == rs.groups.end()) continue;
      if (it == rs.groups.end()) it = rs.groups.try_emplace(key).first;
      GroupState& g = it->second;
      g.seenGeneration = generation;
      g.condition = !reasons.empty();
      if (!g.alert) g.alert = std::make_unique<Alert>(newAlert(rs, key));
      Alert& a = *g.alert;
      a.group = AlertGroup{};
      a.group.kind = GroupKind::Namespace;
      a.group.netns = ns.ref.label();
      a.group.netnsInode = ns.ref.inode;
      a.reasons = std::move(reasons);
      a.count = count;
      a.timeWait = TimeWaitDetails{};
      a.timeWait.ratePerSecond = rate;
      a.timeWait.maxTimeWaitBuckets = ns.maxTimeWaitBuckets;
      a.timeWait.overflowDelta = overflowDelta[n];
      a.timeWait.overflowTotal = ns.kernel.timeWaitOverflow;
      a.timeWait.usablePorts = ns.ephemeral.usableCount();
      topTimeWaitGroups(snap, static_cast<std::uint32_t>(n), a);
    }

    finishRule(
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

  // The destinations and server ports holding most TIME_WAIT sockets in a namespace: what an
  // operator looks at first.
  void topTimeWaitGroups(const Snapshot& snap, std::uint32_t ns, Alert& a) const {
    std::vector<std::pair<std::uint64_t, std::size_t>> clients;
    std::vector<std::pair<std::uint64_t, std::size_t>> servers;
    const TimeWaitGroup* newest = nullptr;
    for (std::size_t t = 0; t < snap.timeWait.size(); ++t) {
      const TimeWaitGroup& tg = snap.timeWait[t];
      if (tg.netns != ns || twPass[t] == 0 || tg.timeWait == 0) continue;
      (tg.serverSide ? servers : clients).emplace_back(tg.timeWait, t);
      if (tg.created > 0 && (newest == nullptr || tg.created > newest->created)) newest = &tg;
    }
    a.timeWait.newest = newest != nullptr ? newest->created : 0;
    a.timeWait.newestServerSide = newest != nullptr && newest->serverSide;
    a.timeWait.newestAt = newest != nullptr ? newest->destination : Endpoint{};
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

  // ---- a poll -----------------------------------------------------------------------------

  void trackKernelCounters(const Snapshot& snap) {
    overflowDelta.assign(snap.namespaces.size(), 0);
    std::unordered_map<std::uint64_t, std::uint64_t> next;
    next.reserve(snap.namespaces.size());
    for (std::size_t n = 0; n < snap.namespaces.size(); ++n) {
      const NetnsEntry& ns = snap.namespaces[n];
      if (!ns.kernel.valid) continue;
      const std::uint64_t value = ns.kernel.timeWaitOverflow;
      if (auto it = lastOverflow.find(ns.ref.inode); it != lastOverflow.end()) {
        // A counter that went down belongs to a new namespace with a recycled inode.
        if (value > it->second) overflowDelta[n] = value - it->second;
      }
      next[ns.ref.inode] = value;
    }
    lastOverflow = std::move(next);
  }

  std::vector<Alert> evaluate(const Snapshot& snap, TimePoint now) {
    ++generation;
    const bool firstPoll = !epoch.has_value();
    if (firstPoll) epoch = now;
    const std::int64_t nowMs = std::max(lastMs, toMs(now));
    lastMs = nowMs;
    now = fromMs(nowMs);

    std::size_t closeWaitRules = 0;
    for (RuleState& rs : rules) {
      if (rs.rule.type != RuleType::CloseWait) continue;
      if (passes.size() <= closeWaitRules) passes.emplace_back();
      beginCloseWait(passes[closeWaitRules++], rs, snap);
    }
    passes.resize(closeWaitRules);

    // One pass over the sockets: age each by cookie and feed it to every close_wait rule.
    const std::vector<CloseWaitSocket>& sockets = snap.closeWait;
    ages.beginPoll(sockets.size());
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (i + kAgesLookahead < sockets.size()) ages.prefetch(sockets[i + kAgesLookahead].cookie);
      const CookieAges::Entry e = ages.touch(sockets[i].cookie, nowMs, firstPoll);
      if (!passes.empty()) addCloseWaitSocket(snap, i, e, nowMs);
    }
    ages.endPoll();
    trackKernelCounters(snap);

    std::vector<Alert> out;
    std::size_t pass = 0;
    for (RuleState& rs : rules) {
      if (rs.rule.type == RuleType::CloseWait) {
        finishCloseWait(passes[pass++], snap, now, nowMs, out);
      } else {
        evaluateTimeWait(rs, snap, now, out);
      }
    }
    return out;
  }

  std::vector<Alert> firing() const {
    std::vector<Alert> out;
    for (const RuleState& rs : rules) {
      for (const auto& [key, g] : rs.groups) {
        if (!g.firing || !g.alert) continue;
        emit(rs, g, AlertState::Firing, fromMs(lastMs), out);
      }
    }
    return out;
  }
};

Engine::Engine(const Config& config) : impl_(std::make_unique<Impl>(config)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

std::vector<Alert> Engine::evaluate(const Snapshot& snapshot, TimePoint now) {
  return impl_->evaluate(snapshot, now);
}

void Engine::reconfigure(const Config& config) {
  impl_->setRules(config);
}

std::vector<Alert> Engine::takeDroppedOnReconfigure() {
  return std::exchange(impl_->dropped, {});
}

std::vector<Alert> Engine::firing() const {
  return impl_->firing();
}

std::optional<SocketAge> Engine::closeWaitAge(std::uint64_t cookie, TimePoint now) const {
  if (!impl_->epoch) return std::nullopt;
  const auto e = impl_->ages.find(cookie);
  if (!e) return std::nullopt;
  const std::int64_t age = std::max<std::int64_t>(0, impl_->toMs(now) - e->firstSeenMs);
  return SocketAge{Duration(age), e->lowerBound};
}

std::vector<SocketAge> Engine::oldestCloseWaitByProcess(const Snapshot& snapshot,
                                                        TimePoint now) const {
  std::vector<SocketAge> out(snapshot.processes.size());
  if (!impl_->epoch) return out;
  const std::int64_t nowMs = impl_->toMs(now);
  const std::size_t nproc = snapshot.processes.size();
  const std::vector<CloseWaitSocket>& sockets = snapshot.closeWait;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    const CloseWaitSocket& s = sockets[i];
    if (i + kAgesLookahead < sockets.size()) {
      impl_->ages.prefetch(sockets[i + kAgesLookahead].cookie);
    }
    const std::optional<CookieAges::Entry> e = impl_->ages.find(s.cookie);
    if (!e) continue;
    const SocketAge age{Duration(std::max<std::int64_t>(0, nowMs - e->firstSeenMs)), e->lowerBound};
    if (s.ownerBegin > snapshot.ownerLinks.size() ||
        s.ownerCount > snapshot.ownerLinks.size() - s.ownerBegin) {
      continue;
    }
    for (std::uint32_t k = 0; k < s.ownerCount; ++k) {
      const std::uint32_t p = snapshot.ownerLinks[s.ownerBegin + k];
      if (p >= nproc) continue;
      if (age.age > out[p].age || (age.age == out[p].age && age.lowerBound)) out[p] = age;
    }
  }
  return out;
}

std::size_t Engine::trackedSockets() const {
  return impl_->ages.size();
}

std::size_t Engine::trackedBytes() const {
  return impl_->ages.memoryBytes();
}

}  // namespace waitwatch
