// SPDX-License-Identifier: Apache-2.0
// close_wait rules: CLOSE_WAIT sockets grouped by process, unit or container (or unattributed,
// per namespace), counted past min_age and watched for growth over growth_window.
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/enum_names.hpp"
#include "rules/config_json.hpp"
#include "rules/match.hpp"
#include "rules/rule_evaluator.hpp"

namespace waitwatch {
namespace {

constexpr std::size_t kSketchSize = 8;      // candidates kept per group for ports and peers
constexpr std::size_t kGrowthSamples = 32;  // bounded history per group for `growth`
constexpr std::uint32_t kUnassigned = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint32_t kExcluded = kUnassigned - 1;

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
  CloseWaitKinds kinds;
  std::int64_t oldestMs = std::numeric_limits<std::int64_t>::max();
  bool oldestLowerBound = false;
  std::size_t lastSocket = std::numeric_limits<std::size_t>::max();  // once per group
  std::uint32_t bestProcess = kNoIndex;
  std::uint64_t bestCount = 0;
  std::uint32_t fdProcess = kNoIndex;  // the member nearest to running out of fds
  std::uint32_t processes = 0;
  TopK<std::uint16_t, std::uint16_t> ports;
  TopK<std::uint64_t, Endpoint> peers;
};

class CloseWaitEvaluator final : public RuleEvaluator {
 public:
  void begin(const Snapshot& snap, std::span<RuleState* const> rules, const Config&) override {
    passes_.resize(rules.size());
    for (std::size_t r = 0; r < rules.size(); ++r)
      beginPass(passes_[r], *rules[r], snap);
  }

  [[nodiscard]] bool wantsCloseWaitSockets() const override { return !passes_.empty(); }

  // Socket `i` of the snapshot, aged `age`, into every close_wait rule's groups.
  void addCloseWaitSocket(const Snapshot& snap, std::size_t i, const CookieAges::Entry& age,
                          std::int64_t nowMs) override {
    const CloseWaitSocket& s = snap.closeWait[i];
    const std::size_t nproc = snap.processes.size();
    const std::uint32_t ns = s.netns < snap.namespaces.size() ? s.netns : kNoIndex;
    const bool settled = age.lowerBound || age.firstSeenMs < nowMs;

    // Owners, ignoring links that point nowhere (bad input never reads out of bounds).
    const std::span<const std::uint32_t> owners = snap.owners(s.ownerBegin, s.ownerCount);
    bool anyOwner = false;
    bool listens = false;
    for (const std::uint32_t p : owners) {
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

    for (CloseWaitPass& pass : passes_) {
      const Match& match = pass.rs->rule.match;
      if (pass.endpointDims && !passesEndpoint(match, s.localPort, &remote, eph)) continue;
      const bool old = nowMs - age.firstSeenMs >= pass.minAgeMs;

      auto add = [&](std::uint32_t g) {
        GroupAcc& acc = pass.accs[g];
        if (acc.lastSocket == i) return false;  // a second owner in the same group
        acc.lastSocket = i;
        ++acc.total;
        ++acc.kinds[s.kind()];
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
        for (const std::uint32_t p : owners) {
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
  void finish(std::size_t index, const Snapshot& snap, TimePoint now, std::int64_t nowMs,
              AlertMachine& machine, std::vector<Alert>& out) override {
    CloseWaitPass& pass = passes_[index];
    RuleState& rs = *pass.rs;
    const CloseWaitRule& cw = rs.rule.closeWait;
    const std::size_t nproc = snap.processes.size();
    const std::vector<std::uint32_t>& procGroup = pass.procGroup;
    const std::vector<std::uint32_t>& procTotal = pass.procTotal;
    std::vector<GroupAcc>& accs = pass.accs;

    // Members of unit and container groups: how many, the biggest for the labels, and the one
    // to run out of file descriptors first (any group).
    for (std::uint32_t p = 0; p < nproc; ++p) {
      if (procTotal[p] == 0 || procGroup[p] >= kExcluded) continue;
      GroupAcc& acc = accs[procGroup[p]];
      ++acc.processes;
      if (procTotal[p] > acc.bestCount) {
        acc.bestCount = procTotal[p];
        acc.bestProcess = p;
      }
      const auto& f = snap.processes[p].fdForecast;
      if (f && (acc.fdProcess == kNoIndex ||
                f->exhaustion < snap.processes[acc.fdProcess].fdForecast->exhaustion)) {
        acc.fdProcess = p;
      }
    }

    const bool keepIdle = cw.growth.has_value();  // growth needs the history of every group
    const std::int64_t windowMs = cw.growthWindow.count();
    for (GroupAcc& acc : accs) {
      if (acc.total == 0) continue;
      auto [it, inserted] = rs.groups.try_emplace(acc.key);
      GroupState& g = it->second;
      g.seenGeneration = machine.generation;

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

      // The process the forecast is of: the soonest to run out, else the group's own process.
      const std::uint32_t fdOf = acc.fdProcess != kNoIndex        ? acc.fdProcess
                                 : acc.kind == GroupKind::Process ? acc.process
                                                                  : kNoIndex;
      const ProcessEntry* fdEntry = fdOf == kNoIndex ? nullptr : &snap.processes[fdOf];
      // A process whose open files grow (a service starting, a traffic peak) is no leak by
      // itself: the group must also hold a CLOSE_WAIT socket older than min_age.
      const bool fdExhausting = cw.fdExhaustionWithin && acc.counted > 0 && fdEntry &&
                                fdEntry->fdForecast &&
                                fdEntry->fdForecast->exhaustion <= *cw.fdExhaustionWithin;

      std::vector<AlertReason> reasons;
      if (acc.counted >= cw.minSockets) reasons.push_back(AlertReason::OldSockets);
      if (cw.growth && growth >= *cw.growth) reasons.push_back(AlertReason::Growth);
      if (fdExhausting) reasons.push_back(AlertReason::FdExhaustion);
      g.condition = !reasons.empty();
      if (!g.condition && !g.firing && !g.pendingSince) continue;  // nothing to describe

      if (!g.alert) g.alert = std::make_unique<Alert>(machine.newAlert(rs, acc.key));
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
      a.closeWait.kinds = acc.kinds;
      a.closeWait.fds = FdDetails{};
      if (fdEntry) {
        a.closeWait.fds.pid = fdEntry->info.key.pid;
        a.closeWait.fds.comm = fdEntry->info.comm;
        a.closeWait.fds.open = fdEntry->openFds;
        a.closeWait.fds.max = fdEntry->maxFds;
        a.closeWait.fds.forecast = fdEntry->fdForecast;
      }
    }

    machine.finishRule(
        rs, now, keepIdle,
        [](Alert& a) {
          a.count = 0;
          a.closeWait.total = 0;
          a.closeWait.growth = 0;
          a.closeWait.clientSide = 0;
          a.closeWait.kinds = {};
          a.closeWait.fds = FdDetails{};
          a.oldestAge = Duration::zero();
          a.oldestAgeIsLowerBound = false;
          a.localPorts.clear();
          a.peers.clear();
        },
        out);
  }

 private:
  // One close_wait rule's accumulation over a poll's sockets. Every close_wait rule is fed in
  // the same pass that ages the sockets, so no per-socket age is kept beside the cookie table
  // (that was 16 bytes a socket).
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
    } else if (rs.rule.closeWait.groupBy == GroupBy::Pod && !pe.info.container.pod.empty()) {
      kind = GroupKind::Pod;
      key = "pod:" + pe.info.container.pod + ":" + inode;
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
    setContainer(g, info.container);
  }

  // Starts a close_wait rule's pass over this poll's sockets.
  static void beginPass(CloseWaitPass& pass, RuleState& rs, const Snapshot& snap) {
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

  std::vector<CloseWaitPass> passes_;  // one per close_wait rule
};

constexpr EnumNames<GroupBy, 4> kGroupBy({{GroupBy::Process, "process"},
                                          {GroupBy::Unit, "unit"},
                                          {GroupBy::Container, "container"},
                                          {GroupBy::Pod, "pod"}});

constexpr std::array<std::string_view, 6> kKeys = {
    "group_by", "min_sockets", "min_age", "growth", "growth_window", "fd_exhaustion_within"};

bool readSection(ConfigReader& in, const nlohmann::json& v, const std::string& path,
                 Duration pollInterval, Rule& out) {
  using config_json::jsonQuote;
  CloseWaitRule& r = out.closeWait;
  if (v.contains("group_by")) {
    std::string g;
    if (!in.string(v["group_by"], in.child(path, "group_by"), g)) return false;
    const std::optional<GroupBy> groupBy = kGroupBy.parse(g);
    if (!groupBy) {
      return in.fail(in.child(path, "group_by"),
                     jsonQuote(g) + " is not a grouping, expected " + kGroupBy.quotedList());
    }
    r.groupBy = *groupBy;
  }
  if (v.contains("min_sockets") &&
      !in.count(v["min_sockets"], in.child(path, "min_sockets"), 1, r.minSockets)) {
    return false;
  }
  if (v.contains("min_age") && !in.duration(v["min_age"], in.child(path, "min_age"), r.minAge)) {
    return false;
  }
  if (v.contains("growth")) {
    std::uint64_t g = 0;
    if (!in.count(v["growth"], in.child(path, "growth"), 1, g)) return false;
    r.growth = g;
  }
  if (v.contains("growth_window")) {
    const std::string p = in.child(path, "growth_window");
    if (!r.growth) return in.fail(p, "has no effect without \"growth\"");
    if (!in.duration(v["growth_window"], p, r.growthWindow)) return false;
    if (r.growthWindow < pollInterval * 2) {
      return in.fail(p, jsonQuote(formatDuration(r.growthWindow)) +
                            " is too short, expected at least two poll intervals (" +
                            formatDuration(pollInterval * 2) + ")");
    }
  }
  if (v.contains("fd_exhaustion_within")) {
    const std::string p = in.child(path, "fd_exhaustion_within");
    Duration within{0};
    if (!in.duration(v["fd_exhaustion_within"], p, within)) return false;
    if (within <= Duration::zero()) {
      return in.fail(p, "\"0s\" never fires, expected a duration such as \"1h\"");
    }
    r.fdExhaustionWithin = within;
  }
  return true;
}

std::unique_ptr<RuleEvaluator> makeEvaluator() {
  return std::make_unique<CloseWaitEvaluator>();
}

}  // namespace

std::string_view groupByName(GroupBy g) {
  return kGroupBy.name(g);
}

std::optional<GroupBy> parseGroupBy(std::string_view name) {
  return kGroupBy.parse(name);
}

std::string groupByNames() {
  return kGroupBy.quotedList();
}

const RuleTypeDefinition& closeWaitRuleType() {
  static const RuleTypeDefinition type{RuleType::CloseWait, kKeys, readSection, makeEvaluator};
  return type;
}

}  // namespace waitwatch
