// SPDX-License-Identifier: Apache-2.0
#include "service/exporter.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "core/utf8.hpp"
#include "service/decisions.hpp"

namespace waitwatch {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

double seconds(Duration d) {
  return static_cast<double>(d.count()) / 1000.0;
}

// Series keyed by their label values: two groups that end up with the same labels (two nginx
// workers without the pid label, a namespace literally named "other") add up instead of
// producing a duplicate series, which Prometheus would reject.
class SeriesSet {
 public:
  SeriesSet(std::string name, std::string help, MetricType type)
      : name_(std::move(name)), help_(std::move(help)), type_(type) {}

  void add(Labels labels, double value) { values_[std::move(labels)] += value; }
  void set(Labels labels, double value) {
    auto [it, inserted] = values_.try_emplace(std::move(labels), value);
    if (!inserted) it->second = std::max(it->second, value);
  }

  MetricFamily finish() && {
    MetricFamily family{
        .name = std::move(name_), .help = std::move(help_), .type = type_, .metric = {}};
    family.metric.reserve(values_.size());
    for (auto& [labels, value] : values_) {
      ClientMetric m;
      m.label = labels;
      if (type_ == MetricType::Counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      family.metric.push_back(std::move(m));
    }
    return family;
  }

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::map<Labels, double> values_;
};

// Label values must be valid UTF-8 or Prometheus rejects the whole scrape; process names and
// unit names are arbitrary bytes, so invalid sequences become '?'.
void makeValidUtf8(std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = utf8SequenceLength(std::string_view(s).substr(i));
    if (len == 0) {
      s[i] = '?';
      len = 1;
    }
    i += len;
  }
}

ClientMetric::Label label(std::string name, std::string value) {
  makeValidUtf8(value);
  return ClientMetric::Label{std::move(name), std::move(value)};
}

// ----- namespaces

struct NamespaceChoice {
  std::vector<std::uint32_t> kept;  // indices into snapshot.namespaces, in snapshot order
  std::vector<bool> isKept;         // per namespace
  std::size_t folded = 0;
};

// The namespaces with the most sockets keep their own series.
NamespaceChoice chooseNamespaces(const Snapshot& s, std::uint32_t maxGroups) {
  NamespaceChoice c;
  std::vector<std::uint32_t> order(s.namespaces.size());
  for (std::uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return s.namespaces[a].states.total() > s.namespaces[b].states.total();
  });
  c.isKept.assign(s.namespaces.size(), false);
  for (std::size_t i = 0; i < order.size() && i < maxGroups; ++i)
    c.isKept[order[i]] = true;
  for (std::uint32_t i = 0; i < s.namespaces.size(); ++i) {
    if (c.isKept[i]) {
      c.kept.push_back(i);
    } else {
      ++c.folded;
    }
  }
  return c;
}

std::string netnsLabel(const Snapshot& s, std::uint32_t index) {
  if (index >= s.namespaces.size()) return {};
  return s.namespaces[index].ref.label();
}

void addSocketsByNamespace(const Snapshot& s, const NamespaceChoice& choice,
                           std::vector<MetricFamily>& out) {
  SeriesSet set("waitwatch_sockets",
                "TCP sockets by state and network namespace, counted from the kernel's "
                "sock_diag dump.",
                MetricType::Gauge);
  for (std::uint32_t i = 0; i < s.namespaces.size(); ++i) {
    const auto& ns = s.namespaces[i];
    const std::string nsLabel = choice.isKept[i] ? ns.ref.label() : std::string(kFoldedLabel);
    for (TcpState st : kAllTcpStates) {
      set.add({label("netns", nsLabel), label("state", std::string(stateName(st)))},
              static_cast<double>(ns.states[st]));
    }
  }
  out.push_back(std::move(set).finish());
}

// ----- process groups

// A process group's labels. `container` is ContainerInfo::labelName(): two containers of one
// name (a pod's container restarted) are one series. `unit` is unitLabel()'s. `pod` and
// `namespace` (a Kubernetes pod's) are labels only where they apply.
struct GroupKey {
  std::string comm, unit, container, netns, pid, pod{}, podNamespace{};
  auto operator<=>(const GroupKey&) const = default;
};

struct GroupValue {
  StateCounts states;
  CloseWaitKinds kinds;
  Duration oldest{0};
  // File descriptors of one member (EMFILE is per process: a sum over a group's processes
  // would say nothing): the one forecast to run out first, else the one nearest its limit.
  std::uint64_t openFds = 0;
  std::uint64_t maxFds = 0;
  std::optional<Duration> fdExhaustion;

  void addFds(std::uint64_t open, std::uint64_t max, std::optional<Duration> exhaustion) {
    if (open == 0) return;
    const auto share = [](std::uint64_t o, std::uint64_t m) {
      return m == 0 ? 0.0 : static_cast<double>(o) / static_cast<double>(m);
    };
    const bool sooner =
        exhaustion ? !fdExhaustion || *exhaustion < *fdExhaustion
                   : !fdExhaustion && (openFds == 0 || share(open, max) > share(openFds, maxFds));
    if (!sooner) return;
    openFds = open;
    maxFds = max;
    fdExhaustion = exhaustion;
  }
};

// The labels kube-state-metrics and cAdvisor name a pod's container by, where they apply.
void addPodLabels(Labels& l, const std::string& pod, const std::string& podNamespace) {
  if (!podNamespace.empty()) l.push_back(label("namespace", podNamespace));
  if (!pod.empty()) l.push_back(label("pod", pod));
}

Labels groupLabels(const GroupKey& k, bool includePid) {
  Labels l{label("comm", k.comm), label("container", k.container), label("netns", k.netns),
           label("unit", k.unit)};
  if (includePid) l.push_back(label("pid", k.pid));
  addPodLabels(l, k.pod, k.podNamespace);
  return l;
}

std::size_t addProcessFamilies(const PollView& view, const MetricsOptions& options,
                               std::vector<MetricFamily>& out) {
  const Snapshot& s = *view.snapshot;
  std::map<GroupKey, GroupValue> groups;
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    const auto& p = s.processes[i];
    const ContainerInfo& c = p.info.container;
    GroupKey key{p.info.comm,
                 unitLabel(p.info.unit, !c.empty()),
                 c.labelName(),
                 netnsLabel(s, p.netns),
                 options.includePid ? std::to_string(p.info.key.pid) : std::string(),
                 c.podName,
                 c.podNamespace};
    auto& g = groups[key];
    g.states += p.states;
    g.kinds += p.closeWaitKinds;
    if (i < view.processOldestCloseWait.size()) {
      g.oldest = std::max(g.oldest, view.processOldestCloseWait[i].age);
    }
    g.addFds(
        p.openFds, p.maxFds,
        p.fdForecast && p.maxFds != 0 ? std::optional(p.fdForecast->exhaustion) : std::nullopt);
  }

  using Entry = std::pair<const GroupKey, GroupValue>;
  std::vector<const Entry*> order;
  order.reserve(groups.size());
  for (const auto& e : groups)
    order.push_back(&e);
  // Most CLOSE_WAIT first, then most sockets; ties keep the map's label order (stable).
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    const auto cwA = a->second.states[TcpState::CloseWait];
    const auto cwB = b->second.states[TcpState::CloseWait];
    if (cwA != cwB) return cwA > cwB;
    return a->second.states.total() > b->second.states.total();
  });

  const std::string other(kFoldedLabel);
  const GroupKey foldedKey{other, other, other, other, options.includePid ? other : ""};
  std::vector<std::pair<const GroupKey*, GroupValue>> kept;
  GroupValue folded;
  std::size_t foldedCount = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i < options.maxGroups) {
      kept.emplace_back(&order[i]->first, order[i]->second);
    } else {
      folded.states += order[i]->second.states;
      folded.kinds += order[i]->second.kinds;
      folded.oldest = std::max(folded.oldest, order[i]->second.oldest);
      const GroupValue& v = order[i]->second;
      folded.addFds(v.openFds, v.maxFds, v.fdExhaustion);
      ++foldedCount;
    }
  }
  if (foldedCount > 0) kept.emplace_back(&foldedKey, folded);

  SeriesSet sockets("waitwatch_process_sockets",
                    "TCP sockets held by processes, by state and process group (a socket shared "
                    "by several processes counts for each).",
                    MetricType::Gauge);
  SeriesSet kinds("waitwatch_process_close_wait_sockets",
                  "CLOSE_WAIT sockets of a process group by kind, from their Recv-Q: abandoned "
                  "(not read since the peer closed), eof_not_closed (end-of-stream read, never "
                  "closed), unread_data (data left unread).",
                  MetricType::Gauge);
  SeriesSet ages("waitwatch_close_wait_oldest_age_seconds",
                 "Age of the oldest CLOSE_WAIT socket of a process group, since the daemon first "
                 "saw it.",
                 MetricType::Gauge);
  SeriesSet openFds("waitwatch_process_open_fds",
                    "Open file descriptors of a process group holding CLOSE_WAIT sockets (of its "
                    "process forecast to run out first, else the one nearest its limit).",
                    MetricType::Gauge);
  SeriesSet maxFds("waitwatch_process_max_fds",
                   "RLIMIT_NOFILE soft limit of that process: at it, accept() and socket() fail "
                   "with EMFILE.",
                   MetricType::Gauge);
  SeriesSet exhaustion("waitwatch_process_fd_exhaustion_seconds",
                       "Forecast time until that process runs out of file descriptors, "
                       "from the growth of its open fds over forecast.window; absent while not "
                       "growing.",
                       MetricType::Gauge);
  for (const auto& [key, value] : kept) {
    const Labels base = groupLabels(*key, options.includePid);
    if (value.openFds != 0) {
      openFds.set(base, static_cast<double>(value.openFds));
      if (value.maxFds != 0) maxFds.set(base, static_cast<double>(value.maxFds));
    }
    if (value.fdExhaustion) exhaustion.set(base, seconds(*value.fdExhaustion));
    for (TcpState st : kAllTcpStates) {
      // CLOSE_WAIT always (the series alerts and dashboards follow, 0 included); other states
      // only when present, to keep the series count down.
      if (st != TcpState::CloseWait && value.states[st] == 0) continue;
      Labels l = base;
      l.push_back(label("state", std::string(stateName(st))));
      sockets.add(std::move(l), static_cast<double>(value.states[st]));
    }
    if (value.states[TcpState::CloseWait] > 0) {
      ages.set(base, seconds(value.oldest));
      // Every kind of a group that has CLOSE_WAIT sockets, 0 included, so that a panel's
      // stacked kinds add up to its CLOSE_WAIT count.
      for (CloseWaitKind k : kCloseWaitKinds) {
        Labels l = base;
        l.push_back(label("kind", std::string(closeWaitKindName(k))));
        kinds.add(std::move(l), static_cast<double>(value.kinds[k]));
      }
    }
  }
  out.push_back(std::move(sockets).finish());
  out.push_back(std::move(kinds).finish());
  out.push_back(std::move(ages).finish());
  out.push_back(std::move(openFds).finish());
  out.push_back(std::move(maxFds).finish());
  out.push_back(std::move(exhaustion).finish());
  return foldedCount;
}

// ----- TIME_WAIT closers

std::size_t addCloserFamilies(const PollView& view, const NamespaceChoice& choice,
                              const MetricsOptions& options, std::vector<MetricFamily>& out) {
  const Snapshot& s = *view.snapshot;
  if (s.closerSource == CloserSource::None) return 0;
  const auto keyOf = [&](const CloserGroup& g) {
    return GroupKey{g.comm,
                    g.unit,
                    g.container,
                    g.netns,
                    options.includePid ? std::to_string(g.pid) : std::string(),
                    g.pod,
                    g.podNamespace};
  };
  std::map<GroupKey, double> sockets;
  std::vector<double> unknown(s.namespaces.size(), 0.0);
  for (const TimeWaitByCloser& t : s.timeWaitByCloser) {
    if (t.closer == kNoIndex) {
      if (t.group < s.timeWait.size() && s.timeWait[t.group].netns < unknown.size()) {
        unknown[s.timeWait[t.group].netns] += t.timeWait;
      }
      continue;
    }
    sockets[keyOf(closerGroup(s, t, options.includePid))] += t.timeWait;
  }
  using Entry = std::pair<const GroupKey, double>;
  std::vector<const Entry*> order;
  for (const auto& e : sockets)
    order.push_back(&e);
  std::stable_sort(order.begin(), order.end(),
                   [](const Entry* a, const Entry* b) { return a->second > b->second; });
  SeriesSet timeWait("waitwatch_time_wait_sockets",
                     "TIME_WAIT sockets by the process group that closed their connections first "
                     "(the side that closes first holds the TIME_WAIT); sockets whose closer is "
                     "not known are in waitwatch_time_wait_closer_unknown.",
                     MetricType::Gauge);
  const std::string other(kFoldedLabel);
  std::size_t folded = 0;
  double foldedSockets = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i < options.maxGroups) {
      timeWait.add(groupLabels(order[i]->first, options.includePid), order[i]->second);
    } else {
      ++folded;
      foldedSockets += order[i]->second;
    }
  }
  if (folded > 0) {
    timeWait.add(groupLabels(GroupKey{other, other, other, other, options.includePid ? other : ""},
                             options.includePid),
                 foldedSockets);
  }
  out.push_back(std::move(timeWait).finish());

  // A counter cannot be folded (the set of folded groups changes, the sum would go back):
  // the groups that closed the most keep their series.
  std::vector<std::pair<const CloserGroup*, std::uint64_t>> closed;
  for (const auto& [group, total] : view.timeWaitClosedTotal)
    closed.emplace_back(&group, total);
  std::stable_sort(closed.begin(), closed.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  SeriesSet closedSet("waitwatch_time_wait_closed_total",
                      "Connections a process group closed first that entered TIME_WAIT, since "
                      "the daemon started (the groups that closed most, up to "
                      "metrics.max_groups).",
                      MetricType::Counter);
  for (std::size_t i = 0; i < closed.size() && i < options.maxGroups; ++i) {
    closedSet.add(groupLabels(keyOf(*closed[i].first), options.includePid),
                  static_cast<double>(closed[i].second));
  }
  out.push_back(std::move(closedSet).finish());

  SeriesSet unknownSet("waitwatch_time_wait_closer_unknown",
                       "TIME_WAIT sockets whose closer is not known: closed before the daemon "
                       "watched, lost by the BPF program, or (without it) connections that did "
                       "not live through a poll or had several holders.",
                       MetricType::Gauge);
  for (std::uint32_t i : choice.kept) {
    unknownSet.add({label("netns", s.namespaces[i].ref.label())}, unknown[i]);
  }
  out.push_back(std::move(unknownSet).finish());

  SeriesSet source("waitwatch_time_wait_closer_source",
                   "Where TIME_WAIT closers come from, 1 for the one in use: bpf (every active "
                   "close, recorded in the kernel) or ownership (the sole owner of a connection "
                   "seen alive at a poll).",
                   MetricType::Gauge);
  source.add({label("source", std::string(closerSourceName(s.closerSource)))}, 1.0);
  out.push_back(std::move(source).finish());
  if (s.closerSource == CloserSource::KernelProbe) {
    SeriesSet lost("waitwatch_time_wait_closes_lost_total",
                   "Active closes the BPF program could not record (its ring or the daemon's "
                   "queue was full); their TIME_WAIT sockets count as closer unknown.",
                   MetricType::Counter);
    lost.add({}, static_cast<double>(s.closesLost));
    out.push_back(std::move(lost).finish());
  }
  return folded;
}

// ----- TIME_WAIT destinations

std::size_t addDestinationFamilies(const Snapshot& s, const MetricsOptions& options,
                                   std::vector<MetricFamily>& out) {
  std::vector<const TimeWaitGroup*> clients;
  for (const auto& g : s.timeWait) {
    if (!g.serverSide) clients.push_back(&g);
  }
  // Pairs forecast to run out first (soonest first): a leak still low in the range is what
  // that forecast is for, and must never be folded away by busier pairs.
  std::stable_sort(clients.begin(), clients.end(), [](const auto* a, const auto* b) {
    if (a->portExhaustion.has_value() != b->portExhaustion.has_value()) {
      return a->portExhaustion.has_value();
    }
    if (a->portExhaustion && a->portExhaustion->exhaustion != b->portExhaustion->exhaustion) {
      return a->portExhaustion->exhaustion < b->portExhaustion->exhaustion;
    }
    if (a->portUsageRatio != b->portUsageRatio) return a->portUsageRatio > b->portUsageRatio;
    return a->timeWait > b->timeWait;
  });
  SeriesSet ratio("waitwatch_ephemeral_port_usage_ratio",
                  "Share of the usable ephemeral port range one (source, destination) pair uses "
                  "in TIME_WAIT plus live connections; at 1 connect() fails with EADDRNOTAVAIL.",
                  MetricType::Gauge);
  SeriesSet count("waitwatch_time_wait_destination_sockets",
                  "Client-side TIME_WAIT sockets by (source, destination) pair.",
                  MetricType::Gauge);
  SeriesSet closeWait("waitwatch_ephemeral_port_close_wait_sockets",
                      "Client-side CLOSE_WAIT sockets with a source port of the ephemeral range "
                      "by (source, destination) pair: each holds its port until the program "
                      "closes it.",
                      MetricType::Gauge);
  SeriesSet exhaustion("waitwatch_ephemeral_port_exhaustion_seconds",
                       "When a (source, destination) pair runs out of ephemeral ports at the "
                       "growth of its CLOSE_WAIT sockets over forecast.window (toward what its "
                       "other connections leave); 0: out now. Absent while they do not grow.",
                       MetricType::Gauge);
  const std::string other(kFoldedLabel);
  std::size_t folded = 0;
  double foldedTw = 0;
  double foldedCloseWait = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const auto& g = *clients[i];
    if (i >= options.maxGroups) {
      ++folded;
      foldedTw += g.timeWait;
      foldedCloseWait += g.closeWait;
      continue;
    }
    Labels l{label("destination", g.destination.toString()), label("netns", netnsLabel(s, g.netns)),
             label("source", g.source.toString())};
    ratio.set(l, g.portUsageRatio);
    if (g.closeWait > 0) closeWait.add(l, g.closeWait);
    if (g.portExhaustion) exhaustion.set(l, seconds(g.portExhaustion->exhaustion));
    if (g.timeWait > 0) count.add(std::move(l), g.timeWait);
  }
  if (folded > 0) {
    // A ratio cannot be summed: the folded pairs only show in the counts.
    Labels o{label("destination", other), label("netns", other), label("source", other)};
    count.add(o, foldedTw);
    if (foldedCloseWait > 0) closeWait.add(std::move(o), foldedCloseWait);
  }
  out.push_back(std::move(ratio).finish());
  out.push_back(std::move(count).finish());
  out.push_back(std::move(closeWait).finish());
  out.push_back(std::move(exhaustion).finish());
  return folded;
}

// ----- per-namespace counters and limits

void addNamespaceCounters(const PollView& view, const NamespaceChoice& choice,
                          std::vector<MetricFamily>& out) {
  const Snapshot& s = *view.snapshot;
  // Counters are only exported for namespaces that keep their own series: a sum over a
  // changing set of folded namespaces would go backwards, which a counter must never do.
  SeriesSet created(
      "waitwatch_time_wait_created_total",
      "TIME_WAIT sockets created since the daemon started (seen younger than one poll "
      "interval).",
      MetricType::Counter);
  SeriesSet buckets("waitwatch_kernel_tcp_max_tw_buckets",
                    "net.ipv4.tcp_max_tw_buckets: past it the kernel drops new TIME_WAIT sockets.",
                    MetricType::Gauge);
  SeriesSet hashBuckets("waitwatch_kernel_tcp_hash_buckets",
                        "net.ipv4.tcp_ehash_entries: buckets of the TCP hash table the "
                        "namespace's sockets are in, which every poll of it scans.",
                        MetricType::Gauge);
  SeriesSet hashShared("waitwatch_kernel_tcp_hash_shared",
                       "1 when the namespace is not the host's and has no TCP hash table of its "
                       "own: every poll of it also passes over the sockets of every namespace "
                       "that shares the host's (net.ipv4.tcp_child_ehash_entries gives new "
                       "namespaces their own); \"other\" counts the folded namespaces that do.",
                       MetricType::Gauge);
  SeriesSet usable("waitwatch_ephemeral_ports_usable",
                   "Usable ephemeral ports: net.ipv4.ip_local_port_range minus "
                   "ip_local_reserved_ports.",
                   MetricType::Gauge);
  struct KernelFamily {
    const char* name;
    const char* help;
    std::uint64_t KernelTcpCounters::*field;
  };
  static constexpr KernelFamily kKernel[] = {
      {"waitwatch_kernel_tcp_time_wait_overflow_total",
       "TcpExt TCPTimeWaitOverflow: TIME_WAIT buckets ran out, connections closed without "
       "TIME_WAIT.",
       &KernelTcpCounters::timeWaitOverflow},
      {"waitwatch_kernel_tcp_time_wait_entered_total",
       "TcpExt TW: sockets that entered TIME_WAIT (counted by the kernel as it arms the 60 s "
       "timer).",
       &KernelTcpCounters::timeWaitEntered},
      {"waitwatch_kernel_tcp_abort_on_close_total",
       "TcpExt TCPAbortOnClose: connections reset because the application closed with unread "
       "data.",
       &KernelTcpCounters::abortOnClose},
      {"waitwatch_kernel_tcp_abort_on_timeout_total",
       "TcpExt TCPAbortOnTimeout: connections aborted after retransmission or keepalive "
       "timeouts.",
       &KernelTcpCounters::abortOnTimeout},
      {"waitwatch_kernel_tcp_listen_overflows_total",
       "TcpExt ListenOverflows: connections dropped because a listener's accept queue was full.",
       &KernelTcpCounters::listenOverflows},
      {"waitwatch_kernel_tcp_listen_drops_total",
       "TcpExt ListenDrops: SYNs dropped at a listening socket, for any reason.",
       &KernelTcpCounters::listenDrops},
      {"waitwatch_kernel_tcp_active_opens_total",
       "Tcp ActiveOpens: connections this namespace opened (connect()).",
       &KernelTcpCounters::activeOpens},
      {"waitwatch_kernel_tcp_passive_opens_total",
       "Tcp PassiveOpens: connections this namespace accepted.", &KernelTcpCounters::passiveOpens},
  };
  std::vector<SeriesSet> kernel;
  kernel.reserve(std::size(kKernel));
  for (const auto& k : kKernel)
    kernel.emplace_back(k.name, k.help, MetricType::Counter);

  for (std::uint32_t i : choice.kept) {
    const auto& ns = s.namespaces[i];
    const Labels l{label("netns", ns.ref.label())};
    const std::uint64_t createdTotal =
        i < view.timeWaitCreatedTotal.size() ? view.timeWaitCreatedTotal[i] : 0;
    created.add(l, static_cast<double>(createdTotal));
    if (ns.maxTimeWaitBuckets > 0) buckets.add(l, ns.maxTimeWaitBuckets);
    if (ns.tcpHash) hashBuckets.add(l, ns.tcpHash->buckets);
    usable.add(l, ns.ephemeral.usableCount());
    if (!ns.kernel.valid) continue;
    for (std::size_t k = 0; k < std::size(kKernel); ++k) {
      kernel[k].add(l, static_cast<double>(ns.kernel.*(kKernel[k].field)));
    }
  }
  // The namespaces that share the host's table cost most where there are many, exactly where
  // they fold: the folded ones add up under "other", so the sum over all series counts them all.
  for (std::uint32_t i = 0; i < s.namespaces.size(); ++i) {
    const auto& ns = s.namespaces[i];
    if (!ns.tcpHash) continue;
    hashShared.add({label("netns", choice.isKept[i] ? ns.ref.label() : std::string(kFoldedLabel))},
                   ns.tcpHash->sharedWithHost ? 1 : 0);
  }
  out.push_back(std::move(created).finish());
  out.push_back(std::move(buckets).finish());
  out.push_back(std::move(hashBuckets).finish());
  out.push_back(std::move(hashShared).finish());
  out.push_back(std::move(usable).finish());
  for (auto& k : kernel)
    out.push_back(std::move(k).finish());
}

// ----- alerts

std::size_t addAlerts(const PollView& view, const MetricsOptions& options,
                      std::vector<MetricFamily>& out) {
  SeriesSet firing(
      "waitwatch_alert_firing",
      "Alerts firing, by rule and group: 1 per firing alert (groups that share labels, "
      "or were folded, add up).",
      MetricType::Gauge);
  std::vector<const Alert*> order;
  for (const auto& a : view.firing)
    order.push_back(&a);
  std::stable_sort(order.begin(), order.end(), [](const Alert* a, const Alert* b) {
    if (a->severity != b->severity) return a->severity > b->severity;  // critical first
    return a->count > b->count;
  });
  const std::string other(kFoldedLabel);
  std::size_t folded = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Alert& a = *order[i];
    const bool keep = i < options.maxGroups;
    if (!keep) ++folded;
    const auto& g = a.group;
    const bool isDestination = g.kind == GroupKind::Destination;
    // A destination's or namespace's alert names its top closer, which may change from poll to
    // poll: not a label, or the alert's series would change with it.
    const bool closerNamed = isDestination || g.kind == GroupKind::Namespace;
    auto text = [&](std::string v) { return keep ? std::move(v) : other; };
    // A pod's alert: its busiest container may change from poll to poll, the pod does not.
    const std::string container = g.kind == GroupKind::Pod  ? std::string()
                                  : g.containerName.empty() ? g.container
                                                            : g.containerName;
    Labels l{label("comm", text(closerNamed ? "" : g.comm)),
             label("container", text(closerNamed ? "" : container)),
             label("destination", text(isDestination ? a.timeWait.destination.toString() : "")),
             label("netns", text(g.netns)),
             label("rule", a.rule),
             label("severity", std::string(severityName(a.severity))),
             label("source", text(isDestination ? a.timeWait.source.toString() : "")),
             label("unit", text(closerNamed ? "" : unitLabel(g.unit, !g.container.empty())))};
    if (options.includePid) {
      l.push_back(label("pid", text(g.pid && !closerNamed ? std::to_string(g.pid) : "")));
    }
    if (keep && !closerNamed) addPodLabels(l, g.pod, g.podNamespace);
    firing.add(std::move(l), 1.0);
  }
  out.push_back(std::move(firing).finish());
  return folded;
}

}  // namespace

// ----- TCP memory (host-wide)

void addTcpMemory(const TcpMemory& m, std::vector<MetricFamily>& out) {
  if (!m.valid) return;
  SeriesSet pages("waitwatch_tcp_memory_pages",
                  "Pages of TCP socket memory in use on the host (all namespaces; "
                  "/proc/net/sockstat TCP mem).",
                  MetricType::Gauge);
  pages.add({}, static_cast<double>(m.pages));
  out.push_back(std::move(pages).finish());
  SeriesSet closeWait("waitwatch_tcp_memory_close_wait_min_pages",
                      "Of waitwatch_tcp_memory_pages, what CLOSE_WAIT sockets hold at least (each "
                      "unread buffer takes whole pages; the FIN alone takes one), in the "
                      "namespaces polled.",
                      MetricType::Gauge);
  closeWait.add({}, static_cast<double>(m.closeWaitMinPages));
  out.push_back(std::move(closeWait).finish());
  // net.ipv4.tcp_mem is readable only in the host's namespace: absent elsewhere.
  SeriesSet limits("waitwatch_tcp_memory_limit_pages",
                   "net.ipv4.tcp_mem in pages: min (no pressure below), pressure (every TCP "
                   "socket of the host held to small buffers above), max (allocations fail).",
                   MetricType::Gauge);
  SeriesSet left("waitwatch_tcp_memory_exhaustion_seconds",
                 "When TCP memory reaches the threshold at its growth over forecast.window; 0: "
                 "there now. Absent while it does not grow.",
                 MetricType::Gauge);
  for (auto [name, value, forecast] :
       {std::tuple{"min", m.min, std::optional<FdForecast>{}},
        std::tuple{"pressure", m.pressure, m.toPressure}, std::tuple{"max", m.max, m.toMax}}) {
    if (value == 0) continue;
    limits.add({label("threshold", name)}, static_cast<double>(value));
    if (forecast) left.add({label("threshold", name)}, seconds(forecast->exhaustion));
  }
  out.push_back(std::move(limits).finish());
  out.push_back(std::move(left).finish());
}

std::vector<MetricFamily> buildPollFamilies(const PollView& view, const MetricsOptions& options) {
  std::vector<MetricFamily> out;
  if (!view.snapshot) return out;
  const Snapshot& s = *view.snapshot;
  const NamespaceChoice namespaces = chooseNamespaces(s, options.maxGroups);

  addSocketsByNamespace(s, namespaces, out);
  const std::size_t foldedProcesses = addProcessFamilies(view, options, out);
  const std::size_t foldedDestinations = addDestinationFamilies(s, options, out);
  const std::size_t foldedClosers = addCloserFamilies(view, namespaces, options, out);
  addNamespaceCounters(view, namespaces, out);
  addTcpMemory(s.tcpMemory, out);
  const std::size_t foldedAlerts = addAlerts(view, options, out);

  SeriesSet unattributed("waitwatch_unattributed_sockets",
                         "Sockets with an inode that no visible process holds, by reason "
                         "(no_permission: other users' /proc/<pid>/fd unreadable; vanished: the "
                         "owner exited during the poll).",
                         MetricType::Gauge);
  unattributed.add({label("reason", "no_permission")},
                   static_cast<double>(s.unattributedNoPermission));
  unattributed.add({label("reason", "vanished")}, static_cast<double>(s.unattributedVanished));
  out.push_back(std::move(unattributed).finish());

  SeriesSet lookups("waitwatch_container_name_lookups_total",
                    "Container ids looked up in the container runtimes' files (once per new "
                    "container; again after a minute for one not named).",
                    MetricType::Counter);
  lookups.add({}, static_cast<double>(s.containerNameLookups));
  out.push_back(std::move(lookups).finish());
  SeriesSet misses("waitwatch_container_name_misses_total",
                   "Of those lookups, the ones no runtime file named (the container shows by "
                   "id; the daemon's log says why).",
                   MetricType::Counter);
  misses.add({}, static_cast<double>(s.containerNameMisses));
  out.push_back(std::move(misses).finish());

  SeriesSet sampler("waitwatch_sampler_info",
                    "How the last poll read the TCP sockets, 1 for the mode in use: bpf_iter (the "
                    "kernel's own walk, a BPF iter/tcp program), netlink (an inet_diag dump of "
                    "each namespace), mixed (the walk where the daemon could enter the namespace).",
                    MetricType::Gauge);
  sampler.add({label("mode", std::string(socketSourceName(s.socketSource)))}, 1.0);
  out.push_back(std::move(sampler).finish());
  if (s.samplerChecked) {
    SeriesSet checked("waitwatch_sampler_check_sockets_total",
                      "--verify-sampler: sockets the two netlink dumps around each walk reported "
                      "alike, which the walk must report alike too.",
                      MetricType::Counter);
    checked.add({}, static_cast<double>(s.samplerCheckSockets));
    out.push_back(std::move(checked).finish());
    SeriesSet faults("waitwatch_sampler_check_faults_total",
                     "--verify-sampler: of those, the sockets the walk missed or reported "
                     "otherwise (the log names the first ones).",
                     MetricType::Counter);
    faults.add({}, static_cast<double>(s.samplerCheckFaults));
    out.push_back(std::move(faults).finish());
  }

  SeriesSet folded("waitwatch_series_folded",
                   "Groups summed under the \"other\" series at the last poll because of "
                   "metrics.max_groups, by family.",
                   MetricType::Gauge);
  folded.add({label("family", "waitwatch_alert_firing")}, static_cast<double>(foldedAlerts));
  folded.add({label("family", "waitwatch_ephemeral_port_usage_ratio")},
             static_cast<double>(foldedDestinations));
  folded.add({label("family", "waitwatch_process_sockets")}, static_cast<double>(foldedProcesses));
  folded.add({label("family", "waitwatch_sockets")}, static_cast<double>(namespaces.folded));
  folded.add({label("family", "waitwatch_time_wait_sockets")}, static_cast<double>(foldedClosers));
  out.push_back(std::move(folded).finish());

  // Families with no series (no alert firing, no TIME_WAIT destination) are dropped: the
  // text format would print a HELP and TYPE with nothing under them.
  std::erase_if(out, [](const MetricFamily& f) { return f.metric.empty(); });
  return out;
}

void PollMetrics::publish(std::shared_ptr<const PollView> view, const MetricsOptions& options) {
  auto published = std::make_shared<Published>();
  published->families = buildPollFamilies(*view, options);
  published->view = std::move(view);
  latest_.publish(std::move(published));
}

std::vector<MetricFamily> PollMetrics::Collect() const {
  auto published = latest_.get();
  if (!published) return {};
  return published->families;
}

std::shared_ptr<const PollView> PollMetrics::view() const {
  auto published = latest_.get();
  if (!published) return {};
  return published->view;
}

}  // namespace waitwatch
