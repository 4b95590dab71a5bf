// SPDX-License-Identifier: Apache-2.0
#include "attribution/collector.hpp"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "bpf/pins.hpp"
#include "core/kernel_counters.hpp"
#include "netlink/netns.hpp"
#include "netlink/netns_info.hpp"
#include "proc/proc_text.hpp"

namespace waitwatch {
namespace {

// TCP memory is counted in pages of this size (tcp_mem, sockstat's mem).
std::uint32_t pageSize() {
  const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::uint32_t>(size) : 4096;
}

}  // namespace

Result<std::shared_ptr<bpf::CloseRecorder>> loadCloseRecorder(const std::string& procRoot) {
  // As many closes may wait for a poll as the host can hold TIME_WAIT sockets: a storm beyond
  // that overflows tcp_max_tw_buckets anyway.
  const std::uint32_t buckets = readCurrentNetnsKernelInfo(procRoot).maxTimeWaitBuckets;
  // An administrator may set the sysctl far higher than any host holds: at most 1M closes
  // (16 MiB) wait.
  auto recorder =
      bpf::CloseRecorder::load(buckets > 0 ? std::min<std::uint32_t>(buckets, 1u << 20) : 262'144);
  if (!recorder) return recorder.error();
  return std::make_shared<bpf::CloseRecorder>(std::move(*recorder));
}

Result<std::shared_ptr<bpf::TcpSocketIterator>> loadTcpIterator(bool reusePinned) {
  auto iterator = reusePinned ? bpf::reusePinnedOrLoad<bpf::TcpSocketIterator>()
                              : bpf::TcpSocketIterator::load();
  if (!iterator) return iterator.error();
  return std::make_shared<bpf::TcpSocketIterator>(std::move(*iterator));
}

Collector::Collector(CollectorOptions options, std::unique_ptr<OwnerFinder> owners)
    : options_(std::move(options)),
      owners_(std::move(owners)),
      aggregator_(AggregatorOptions{.perSocketStates = options_.perSocketStates,
                                    .keepAllSockets = options_.keepAllSockets,
                                    .pageSize = pageSize()}),
      udpAggregator_(AggregatorOptions{.perSocketStates = 0, .keepAllSockets = true}),
      fdUsage_(options_.procRoot),
      containerNames_(options_.containerRoot) {
  if (!owners_) {
    owners_ = std::make_unique<ProcessResolver>(
        ProcessResolverOptions{.procRoot = options_.procRoot,
                               .cgroupRoot = options_.cgroupRoot,
                               .fullWalkInterval = options_.fullWalkInterval,
                               .processDetails = options_.processDetails});
  }
  if (options_.sampler == SamplerMode::Auto) {
    if (options_.tcpIterator) {
      iterator_ = options_.tcpIterator;
    } else if (!options_.tcpIteratorError.empty()) {
      samplerFallback_ = options_.tcpIteratorError;
    } else if (auto loaded = loadTcpIterator(options_.reusePinnedIterator)) {
      iterator_ = std::move(*loaded);
    } else {
      samplerFallback_ = loaded.error().message;
    }
  }
  if (options_.closers == CloserTracking::Off) return;
  closerSource_ = CloserSource::Ownership;
  if (options_.closers == CloserTracking::Auto) {
    if (options_.closeRecorder) {
      recorder_ = options_.closeRecorder;
    } else if (!options_.closeRecorderError.empty()) {
      closerFallback_ = options_.closeRecorderError;
    } else {
      auto loaded = loadCloseRecorder(options_.procRoot);
      if (loaded) {
        recorder_ = std::move(*loaded);
      } else {
        closerFallback_ = loaded.error().message;
      }
    }
    if (recorder_) closerSource_ = CloserSource::KernelProbe;
  }
  aggregator_.setOptions(AggregatorOptions{.perSocketStates = options_.perSocketStates,
                                           .keepAllSockets = options_.keepAllSockets,
                                           .keepClosing = true,
                                           .keepOwned = closerSource_ == CloserSource::Ownership,
                                           .pageSize = pageSize()});
}

Collector::~Collector() = default;

namespace {
template <typename T>
void mergeSorted(std::vector<T>& into, const std::vector<T>& from) {
  const auto middle = static_cast<std::ptrdiff_t>(into.size());
  into.insert(into.end(), from.begin(), from.end());
  std::inplace_merge(into.begin(), into.begin() + middle, into.end());
  into.erase(std::unique(into.begin(), into.end()), into.end());
}
}  // namespace

Result<std::vector<NetnsHandle>> Collector::selectNamespaces() {
  std::vector<NetnsHandle> handles;
  switch (options_.namespaces) {
    case NamespaceSelection::Host: {
      auto h = currentNetworkNamespace(options_.procRoot, options_.runNetns);
      if (!h) return h.error().wrap("the current network namespace");
      handles.push_back(std::move(*h));
      break;
    }
    case NamespaceSelection::All: {
      auto all = listNetworkNamespaces(options_.procRoot, options_.runNetns, &stats_.netnsGaps,
                                       &netnsAliases_);
      if (!all) return all.error().wrap("listing network namespaces");
      handles = std::move(*all);
      break;
    }
    case NamespaceSelection::Named:
      for (const std::string& name : options_.names) {
        auto h = openNamedNetworkNamespace(name, options_.runNetns);
        if (!h) return h.error();  // it names the namespace and where it was looked for
        // Two names for one namespace: dump it once, or every socket would count twice.
        const bool seen = std::any_of(handles.begin(), handles.end(), [&](const NetnsHandle& o) {
          return o.ref.inode == h->ref.inode;
        });
        if (!seen) handles.push_back(std::move(*h));
      }
      break;
  }
  return handles;
}

Result<SockDiagSampler*> Collector::samplerFor(const NetnsHandle& handle, bool isCurrent) {
  auto it = samplers_.find(handle.ref.inode);
  if (it == samplers_.end()) {
    auto sampler =
        isCurrent ? SockDiagSampler::open() : SockDiagSampler::openInNamespace(handle.fd.get());
    if (!sampler) return sampler.error();
    it = samplers_.emplace(handle.ref.inode, Namespace{std::move(*sampler), 0}).first;
  }
  it->second.lastPoll = poll_;
  return &it->second.sampler;
}

Result<std::optional<UniqueFd>> Collector::startWalk(const NetnsHandle& handle, bool isCurrent) {
  auto fallBack = [&](const Error& e) -> std::optional<UniqueFd> {
    if (stats_.walkProblem.empty()) stats_.walkProblem = handle.ref.label() + ": " + e.message;
    return std::nullopt;
  };
  // The kernel binds a walk to the namespace its creator is in; reading it needs none.
  std::optional<NetnsGuard> guard;
  if (!isCurrent) {
    auto entered = NetnsGuard::enter(handle.fd.get());
    if (!entered) return fallBack(entered.error());
    guard.emplace(std::move(*entered));
  }
  auto walk = iterator_->start();
  // A thread that cannot come back would read every later namespace in this one.
  if (guard) {
    if (auto r = guard->restore(); !r) return r.error();
  }
  if (!walk) return fallBack(walk.error());
  return std::optional<UniqueFd>(std::move(*walk));
}

Result<void> Collector::dumpForCheck(const NetnsHandle& handle, bool isCurrent,
                                     std::vector<SocketRecord>& out) {
  out.clear();
  auto sampler = samplerFor(handle, isCurrent);
  if (!sampler) return sampler.error();
  auto r = (*sampler)->dump(
      DumpOptions{}, [&](const SocketRecord& s) { out.push_back(s); }, [&] { out.clear(); });
  if (!r) return r.error();
  return {};
}

Result<void> Collector::pollNamespace(NetnsHandle& handle, bool isCurrent) {
  // The kernel's walk where it can enter the namespace, else (and for UDP) a dump.
  std::optional<UniqueFd> walk;
  if (iterator_) {
    auto w = startWalk(handle, isCurrent);
    if (!w) return w.error();
    walk = std::move(*w);
  }
  SockDiagSampler* sampler = nullptr;
  if (!walk || options_.udp) {
    auto s = samplerFor(handle, isCurrent);
    if (!s) return s.error();
    sampler = *s;
  }
  // verifySampler: a dump before the walk and one after it. A failed check dump costs only the
  // comparison, not the namespace.
  std::vector<SocketRecord>& checkBefore = checkRecords_[0];
  std::vector<SocketRecord>& checkWalk = checkRecords_[1];  // clang 14 cannot capture a binding
  std::vector<SocketRecord>& checkAfter = checkRecords_[2];
  bool checking = walk && options_.verifySampler;
  if (checking) {
    checkWalk.clear();
    if (auto r = dumpForCheck(handle, isCurrent, checkBefore); !r) {
      checking = false;
      stats_.samplerCheckProblem = handle.ref.label() + ": " + r.error().message;
    }
  }
  DumpTimes& times = dumpTimes_[handle.ref.inode];
  times.seenPoll = poll_;
  times.pending.reset();

  NetnsKernelInfo info;
  if (isCurrent) {
    info = readCurrentNetnsKernelInfo(options_.procRoot);
  } else {
    // Facts that cannot be read leave the namespace's sockets to count all the same.
    if (auto r = readNetnsKernelInfo(handle.fd.get())) {
      info = std::move(*r);
    } else {
      info.problems = r.error().message;
    }
  }
  if (!info.problems.empty())
    stats_.kernelInfoProblems.push_back(handle.ref.label() + ": " + info.problems);

  NetnsEntry entry;
  entry.ref = handle.ref;
  entry.kernel = info.counters;
  entry.maxTimeWaitBuckets = info.maxTimeWaitBuckets;
  if (info.ephemeral) entry.ephemeral = *info.ephemeral;
  if (info.tcpHashEntries) entry.tcpHash = tcpHashTable(*info.tcpHashEntries);
  const std::optional<TcpHashTable> hash = entry.tcpHash;  // entry is moved below
  NetnsEntry udpEntry;
  if (options_.udp) udpEntry = entry;
  aggregator_.beginNamespace(std::move(entry));

  TimePoint dumpStart = Clock::now();
  auto sinceLastDump = [&]() -> std::optional<Duration> {
    if (!times.last) return std::nullopt;
    return std::chrono::duration_cast<Duration>(dumpStart - *times.last);
  };
  // A TIME_WAIT socket is new when it is younger than the time between the two dumps' starts,
  // which holds when each dump reaches its hash bucket equally far in. A dump that takes
  // longer than the previous one (a burst of new sockets) reaches later buckets later: a socket
  // read there further in than the whole previous dump lasted is judged by a window widened by
  // the difference, or the ones that entered meanwhile would be counted by neither dump.
  const std::optional<Duration> previousLength =
      times.last ? std::optional<Duration>(times.lastLength) : std::nullopt;
  // The clock is read once per 64 TIME_WAIT records, not for each: a dump streams about a
  // thousand sockets a millisecond, so the lateness is off by well under one.
  constexpr std::uint32_t kClockEvery = 64;
  std::uint32_t timeWaitSeen = 0;
  auto visit = [&](const SocketRecord& s) {
    if (checking) checkWalk.push_back(s);
    if (s.state == TcpState::TimeWait && previousLength && timeWaitSeen++ % kClockEvery == 0) {
      const auto in = std::chrono::duration_cast<Duration>(Clock::now() - dumpStart);
      if (in > *previousLength) {
        aggregator_.widenCreatedWindow(static_cast<std::uint32_t>((in - *previousLength).count()));
      }
    }
    aggregator_.add(s);
  };
  auto restart = [&] {
    timeWaitSeen = 0;
    dumpStart = Clock::now();
    aggregator_.restartDump(sinceLastDump());
  };
  // Every listening socket streams before the established hash (the dump: within each family,
  // and a TIME_WAIT socket's listener is of its own family; the walk: all of them first), so a
  // TIME_WAIT socket's listening port is known by the time it streams past.
  aggregator_.beginDump(sinceLastDump());
  Result<void> outcome{};
  if (walk) {
    auto walked = iterator_->read(std::move(*walk), true, visit);
    if (walked) {
      stats_.sockets += walked->sockets;
    } else {
      outcome = walked.error();
    }
  } else {
    auto dumped = sampler->dump(DumpOptions{}, visit, restart);
    if (dumped) {
      stats_.sockets += dumped->sockets;
      stats_.dumpRetries += dumped->retries;
    } else {
      outcome = dumped.error();
    }
  }
  if (!outcome) {
    aggregator_.abortNamespace();
    // A fresh socket next time, should the namespace still exist.
    samplers_.erase(handle.ref.inode);
    return outcome.error();
  }
  if (walk) ++stats_.walkedNamespaces;
  times.pending = dumpStart;
  times.pendingLength = std::chrono::duration_cast<Duration>(Clock::now() - dumpStart);
  if (checking) {
    if (auto r = dumpForCheck(handle, isCurrent, checkAfter); r) {
      stats_.samplerCheck.add(checkSampler(checkBefore, checkWalk, checkAfter));
    } else {
      stats_.samplerCheckProblem = handle.ref.label() + ": " + r.error().message;
    }
  }
  aggregator_.endNamespace();
  ++stats_.namespaces;
  if (hash && hash->sharedWithHost) {
    ++stats_.sharingHostTcpHash;
    stats_.hostTcpHashBuckets = hash->buckets;
  }
  if (!options_.udp) return {};

  // UDP in a second dump on the same socket. Its failure costs only the namespace's UDP view.
  udpAggregator_.beginNamespace(std::move(udpEntry));
  udpAggregator_.beginDump();
  auto udpDumped = sampler->dump(
      DumpOptions{.wantCgroupId = false, .protocol = DumpProtocol::Udp},
      [this](const SocketRecord& s) { udpAggregator_.add(s); },
      [this] { udpAggregator_.restartDump(); });
  if (!udpDumped) {
    udpAggregator_.abortNamespace();
    stats_.namespaceErrors.push_back(
        udpDumped.error().wrap("network namespace " + handle.ref.label() + ", UDP"));
    return {};
  }
  udpAggregator_.endNamespace();
  return {};
}

bool Collector::walkReusedPinned() const {
  return iterator_ != nullptr && iterator_->reused();
}

Result<void> Collector::collect(TimePoint now, Duration pollInterval, Snapshot& out) {
  ++poll_;
  stats_ = CollectStats{};
  // The selection first: a name that does not exist must not cost a walk of /proc.
  auto handles = selectNamespaces();
  if (!handles) return handles.error();
  if (handles->empty()) return Error{0, "no network namespace found"};
  if (auto r = owners_->beginPoll(now); !r) return r.error();
  std::uint64_t currentInode = 0;
  if (options_.namespaces == NamespaceSelection::Host) {
    currentInode = handles->front().ref.inode;
  } else if (auto current = currentNetworkNamespace(options_.procRoot, options_.runNetns)) {
    currentInode = current->ref.inode;
  }

  aggregator_.begin(now, pollInterval, *owners_);
  if (options_.udp) udpAggregator_.begin(now, pollInterval, *owners_);
  std::optional<Error> last;
  for (NetnsHandle& handle : *handles) {
    auto r = pollNamespace(handle, handle.ref.inode == currentInode);
    if (r) continue;
    Error e = r.error().wrap("network namespace " + handle.ref.label());
    // The host namespace or a namespace asked for by name must be there; in "all" mode a
    // namespace deleted between the listing and its dump simply drops out of this poll.
    if (options_.namespaces != NamespaceSelection::All) return e;
    stats_.namespaceErrors.push_back(e);
    last = std::move(e);
  }
  if (stats_.namespaces == 0 && last) {
    const std::size_t others = stats_.namespaceErrors.size() - 1;
    if (others > 0) {
      last->message +=
          " (" + std::to_string(others) + " other namespace(s) could not be read either)";
    }
    return *last;
  }
  // Namespaces that are gone: close their sockets, forget their windows.
  std::erase_if(samplers_, [&](const auto& kv) { return kv.second.lastPoll != poll_; });
  std::erase_if(dumpTimes_, [&](const auto& kv) { return kv.second.seenPoll != poll_; });
  // Only a poll that is delivered moves the window on: a failed one counts nothing, so the
  // sockets it saw are counted by the next.
  for (auto& [inode, times] : dumpTimes_) {
    if (times.pending) {
      times.last = std::exchange(times.pending, std::nullopt);
      times.lastLength = times.pendingLength;
    }
  }

  const PendingHints* hints = &aggregator_.pendingHints();
  if (options_.udp) {
    hints_ = *hints;
    const PendingHints& udp = udpAggregator_.pendingHints();
    hints_.sockets += udp.sockets;
    mergeSorted(hints_.uids, udp.uids);
    mergeSorted(hints_.cgroupIds, udp.cgroupIds);
    hints = &hints_;
  }
  owners_->resolve(*hints, now);
  aggregator_.finish(out);
  out.socketSource = stats_.walkedNamespaces == 0                   ? SocketSource::Netlink
                     : stats_.walkedNamespaces == stats_.namespaces ? SocketSource::BpfIterator
                                                                    : SocketSource::Mixed;
  if (options_.verifySampler && iterator_) {
    // Three readings of the largest namespace: given back between polls.
    for (std::vector<SocketRecord>& records : checkRecords_)
      std::vector<SocketRecord>().swap(records);
    checkedSockets_ += stats_.samplerCheck.compared;
    checkFaults_ += stats_.samplerCheck.faults();
    out.samplerChecked = true;
    out.samplerCheckSockets = checkedSockets_;
    out.samplerCheckFaults = checkFaults_;
  }
  if (options_.tcpMemory) {
    std::string memoryProblems;
    out.tcpMemory = readTcpMemory(options_.procRoot, memoryProblems);
    if (!memoryProblems.empty()) stats_.kernelInfoProblems.push_back(std::move(memoryProblems));
    for (const NetnsEntry& ns : out.namespaces)
      out.tcpMemory.closeWaitMinPages += ns.closeWaitMinPages;
  }
  chargeClosers(out);
  if (options_.fdUsage) fdUsage_.read(out);
  if (options_.udp) udpAggregator_.finish(udp_);
  if (options_.containerNames) {
    nameContainers(out, now);
    if (options_.udp) nameContainers(udp_, now);
    containerNames_.sweep(now);
    stats_.containerNames = containerNames_.stats();
    stats_.containerNameMiss = containerNames_.lastMiss();
    out.containerNameLookups = stats_.containerNames.reads;
    out.containerNameMisses = stats_.containerNames.misses;
  }
  owners_->endPoll();
  stats_.resolver = owners_->stats();
  stats_.ownerProblems = owners_->problems();
  lastNoPermission_ = out.unattributedNoPermission;
  if (options_.udp) lastNoPermission_ += udp_.unattributedNoPermission;
  return {};
}

void Collector::nameContainers(Snapshot& out, TimePoint now) {
  auto name = [&](ContainerInfo& c) {
    if (c.empty()) return;
    const ContainerNames& n = containerNames_.lookup(c, now);
    c.name = n.name;
    c.podName = n.podName;
    c.podNamespace = n.podNamespace;
    c.composeProject = n.composeProject;
    c.composeService = n.composeService;
    if (c.pod.empty()) c.pod = n.podUid;
  };
  for (ProcessEntry& p : out.processes)
    name(p.info.container);
  for (ProcessInfo& c : out.closers)
    name(c.container);
}

std::uint32_t Collector::closerOf(const bpf::Closer& c) {
  const std::string comm = printable(std::string_view(c.comm.data()), c.comm.size());
  const auto [id, fresh] = ledger_.intern(ProcessKey{c.pid, c.startTicks}, comm);
  if (fresh) {
    ProcessInfo& info = ledger_.closer(id);
    info.uid = c.uid;
    owners_->describe(info.key, c.cgroupId, info);
    info.comm = comm;  // the kernel's, which the ledger is keyed by
  }
  return id;
}

void Collector::chargeClosers(Snapshot& out) {
  out.timeWaitByCloser.clear();
  out.closers.clear();
  out.closerSource = closerSource_;
  if (closerSource_ == CloserSource::None) return;
  // Closes first: a TIME_WAIT socket of this dump may have been closed since the last poll.
  if (recorder_) recorder_->take(closes_);
  // Sized once for this poll's sockets and closes: a storm's closes would otherwise grow the
  // table by doubling, each step holding the old table and the new one at once.
  ledger_.beginPoll(ledger_.sockets() + closes_.closes.size() +
                    (closerSource_ == CloserSource::Ownership ? aggregator_.owned().size() : 0));
  if (recorder_) {
    stats_.closersLost = recorder_->lost();
    out.closesLost = stats_.closersLost;
    batchCloser_.clear();
    for (const bpf::Closer& c : closes_.closers)
      batchCloser_.push_back(closerOf(c));
    for (const bpf::CloseEvent& e : closes_.closes) {
      if (e.closer < batchCloser_.size()) ledger_.recordClose(e.cookie, batchCloser_[e.closer]);
    }
    // A storm's batch (16 bytes a close) is not kept through the quiet polls after it.
    if (closes_.closes.capacity() > 65'536 &&
        closes_.closes.size() * 4 < closes_.closes.capacity()) {
      std::vector<bpf::CloseEvent>().swap(closes_.closes);
    }
  }
  if (closerSource_ == CloserSource::Ownership) {
    processCloser_.assign(out.processes.size(), kUnknownCloser);
    for (const OwnedSocket& o : aggregator_.owned()) {
      std::uint32_t& id = processCloser_[o.process];
      if (id == kUnknownCloser) {
        const ProcessInfo& info = out.processes[o.process].info;
        const auto interned = ledger_.intern(info.key, info.comm);
        id = interned.first;
        if (interned.second) ledger_.closer(id) = info;
      }
      ledger_.rememberOwner(o.cookie, id);
    }
  }
  // Per (group, closer): the TIME_WAIT sockets of this dump.
  closerGroups_.clear();
  closerIndex_.assign(ledger_.closerSlots(), kNoIndex);
  for (const ClosingSocket& c : aggregator_.closing()) {
    const std::uint32_t id = ledger_.closerOf(c.cookie);
    if (c.group == kNoIndex) continue;
    std::uint32_t closer = kNoIndex;
    if (id != kUnknownCloser) {
      if (closerIndex_[id] == kNoIndex) {
        closerIndex_[id] = static_cast<std::uint32_t>(out.closers.size());
        out.closers.push_back(ledger_.closer(id));
      }
      closer = closerIndex_[id];
    }
    const std::uint64_t key = (std::uint64_t{c.group} << 32) | closer;
    const auto next = static_cast<std::uint32_t>(out.timeWaitByCloser.size());
    const auto [index, inserted] = closerGroups_.findOrInsert(key, next);
    if (inserted) out.timeWaitByCloser.push_back(TimeWaitByCloser{c.group, closer, 0, 0});
    TimeWaitByCloser& t = out.timeWaitByCloser[index];
    ++t.timeWait;
    if (c.created) ++t.created;
  }
  ledger_.endPoll();
  stats_.closerLedgerSockets = ledger_.sockets();
  // By group, the most sockets first, the unknown last.
  std::sort(out.timeWaitByCloser.begin(), out.timeWaitByCloser.end(),
            [](const TimeWaitByCloser& a, const TimeWaitByCloser& b) {
              if (a.group != b.group) return a.group < b.group;
              if ((a.closer == kNoIndex) != (b.closer == kNoIndex)) return b.closer == kNoIndex;
              if (a.timeWait != b.timeWait) return a.timeWait > b.timeWait;
              return a.closer < b.closer;
            });
}

Result<Snapshot> Collector::collect(TimePoint now, Duration pollInterval) {
  Snapshot snapshot;
  if (auto r = collect(now, pollInterval, snapshot); !r) return r.error();
  return snapshot;
}

std::optional<std::string> Collector::takeWarning() {
  if (lastNoPermission_ == 0) return std::nullopt;
  auto warning = owners_->takePermissionWarning();
  if (!warning) return std::nullopt;
  return std::to_string(lastNoPermission_) + " socket(s) could not be attributed: " + *warning;
}

}  // namespace waitwatch
