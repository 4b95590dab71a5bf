// SPDX-License-Identifier: Apache-2.0
#pragma once
// One poll, end to end, for the daemon and the CLI alike: every selected network namespace
// dumped through its own long-lived sock_diag socket, every socket aggregated while the dump
// streams, owners found by the strategy the Collector is given (owner_finder.hpp), and one
// Snapshot out (and one of UDP sockets, when asked).
//
// Per namespace and poll: one dump of every state, the same request as a bare `ss -tan`; the
// work beside it is a hash probe per socket and, for unknown inodes only, /proc reads.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "attribution/fd_usage.hpp"
#include "attribution/owner_finder.hpp"
#include "attribution/process_resolver.hpp"
#include "bpf/close_recorder.hpp"
#include "bpf/tcp_sockets.hpp"
#include "containers/container_names.hpp"
#include "core/duration.hpp"
#include "core/netns_selection.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "netlink/sampler.hpp"
#include "proc/aggregator.hpp"
#include "proc/closer_ledger.hpp"
#include "proc/flat_index.hpp"
#include "proc/sampler_check.hpp"

namespace waitwatch {

// How TIME_WAIT sockets are charged to the processes that closed their connections.
enum class CloserTracking : std::uint8_t {
  Off,        // not at all: Snapshot::timeWaitByCloser stays empty
  Ownership,  // each connection's sole owner at the last poll that saw it alive
  Auto,       // every active close recorded in the kernel (BPF), else Ownership
};

// How each namespace's TCP sockets are read.
enum class SamplerMode : std::uint8_t {
  Netlink,  // an inet_diag dump
  Auto,     // the kernel's own walk (BPF iter/tcp) where it loads and may enter the namespace
};

struct CollectorOptions {
  NamespaceSelection namespaces = NamespaceSelection::Host;
  std::vector<std::string> names{};  // for Named
  std::string procRoot = "/proc";
  std::string runNetns = "/run/netns";
  std::string cgroupRoot{};  // see ProcessResolverOptions::cgroupRoot
  // States kept one by one in Snapshot::closeWait (see AggregatorOptions).
  TcpStateMask perSocketStates = stateBit(TcpState::CloseWait);
  // Also keep every socket with its owners, for Collector::sockets() (the CLI's --sockets).
  bool keepAllSockets = false;
  Duration fullWalkInterval = std::chrono::seconds(30);
  // See ProcessResolverOptions::processDetails.
  bool processDetails = true;
  // UDP sockets too, into a snapshot of their own (Collector::takeUdp()) so that TCP counts stay
  // TCP: an unconnected UDP socket counts as CLOSE, a connected one as ESTABLISHED. Every UDP
  // socket is kept with its owners.
  bool udp = false;
  // Open fds and RLIMIT_NOFILE of every process holding CLOSE_WAIT sockets (fd_usage.hpp).
  bool fdUsage = true;
  // The host's TCP memory and net.ipv4.tcp_mem (Snapshot::tcpMemory), which the daemon forecasts.
  bool tcpMemory = false;
  // The BPF program, where wanted, is loaded by the constructor: build the Collector before
  // dropping the privileges it needs.
  CloserTracking closers = CloserTracking::Off;
  // A recorder loaded earlier (with the privileges it needs), shared with this collector; with
  // Auto and none given, the constructor loads one.
  std::shared_ptr<bpf::CloseRecorder> closeRecorder{};
  // Why a recorder could not be loaded, when one was tried earlier and failed.
  std::string closeRecorderError{};
  // Name the containers from the runtimes' files under `containerRoot` (the host's "/"; where
  // a DaemonSet mounts the host otherwise): ContainerInfo::name, podName, ...
  bool containerNames = true;
  std::string containerRoot = "/";
  SamplerMode sampler = SamplerMode::Netlink;
  // An iterator loaded earlier (with the privileges it needs); with Auto and none given, the
  // constructor loads one.
  std::shared_ptr<bpf::TcpSocketIterator> tcpIterator{};
  // Why an iterator could not be loaded, when one was tried earlier and failed.
  std::string tcpIteratorError{};
  // With Auto and no iterator given: the one a running waitwatchd pinned, where there is one of
  // this build, before loading one (a one-shot run then loads nothing).
  bool reusePinnedIterator = false;
  // Each namespace read both ways, walk between two dumps, and compared
  // (CollectStats::samplerCheck); the snapshot is built from the walk.
  bool verifySampler = false;
};

struct CollectStats {
  std::uint64_t sockets = 0;      // records aggregated
  std::uint32_t dumpRetries = 0;  // dumps restarted after NLM_F_DUMP_INTR
  std::uint32_t namespaces = 0;   // in the snapshot
  // Namespaces left out of this poll (deleted while being polled, or not dumpable), and UDP
  // dumps that failed, one each.
  std::vector<Error> namespaceErrors;
  // Of the owner search, besides the sockets (OwnerFinder::problems).
  std::vector<std::string> ownerProblems;
  // Namespace facts that could not be read (counters, sysctls), one line each.
  std::vector<std::string> kernelInfoProblems;
  // NamespaceSelection::All: processes whose namespace could not be opened.
  NetnsListingGaps netnsGaps;
  ResolverStats resolver;
  std::uint64_t closersLost = 0;  // active closes the kernel program could not record, in all
  std::size_t closerLedgerSockets = 0;
  // Container names: ids looked up in the runtimes' files, and of those none named, in all;
  // why the last miss was one.
  ContainerNameCache::Stats containerNames;
  std::string containerNameMiss;
  // Namespaces read by the BPF walk; the rest by a dump. Why the walk could not be used for one
  // (the first such namespace of the poll).
  std::uint32_t walkedNamespaces = 0;
  std::string walkProblem;
  // CollectorOptions::verifySampler: the comparison, over every namespace, and why a namespace
  // could not be compared (a check dump failed; its walk still counts).
  SamplerCheck samplerCheck;
  std::string samplerCheckProblem;
  // Namespaces without a TCP hash table of their own (NetnsEntry::tcpHash), and the
  // buckets of the host's that they share.
  std::uint32_t sharingHostTcpHash = 0;
  std::uint32_t hostTcpHashBuckets = 0;
};

// Loads the BPF TCP socket iterator (needs CAP_BPF and CAP_PERFMON); with `reusePinned`, the one
// a running waitwatchd pinned, where there is one.
Result<std::shared_ptr<bpf::TcpSocketIterator>> loadTcpIterator(bool reusePinned = false);

// Loads the BPF close recorder sized for this host (needs CAP_BPF and CAP_PERFMON).
Result<std::shared_ptr<bpf::CloseRecorder>> loadCloseRecorder(
    const std::string& procRoot = "/proc");

class Collector {
 public:
  // Owners are found by `owners`; by default a ProcessResolver made from `options`.
  explicit Collector(CollectorOptions options = {}, std::unique_ptr<OwnerFinder> owners = nullptr);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // `now` is when the poll starts (the caller's clock); `pollInterval` dates TIME_WAIT sockets
  // on a namespace's first dump (created since the last poll; later, the time between its
  // dumps does). An Error means no snapshot could be built at all: /proc unreadable, the host
  // namespace not dumpable, a named namespace that does not exist, or, of every namespace,
  // not one could be read.
  Result<Snapshot> collect(TimePoint now, Duration pollInterval);
  // The same into `out`, reusing its vectors (pass the snapshot of two polls ago).
  Result<void> collect(TimePoint now, Duration pollInterval, Snapshot& out);

  // Every socket of the last poll with its owners (keepAllSockets), indices into that snapshot.
  [[nodiscard]] const std::vector<SocketLine>& sockets() const { return aggregator_.sockets(); }
  // The UDP sockets of the last poll (CollectorOptions::udp), every one in udpSockets(), whose
  // indices are into the snapshot taken.
  [[nodiscard]] Snapshot takeUdp() { return std::move(udp_); }
  [[nodiscard]] const std::vector<SocketLine>& udpSockets() const {
    return udpAggregator_.sockets();
  }
  // Once: which sockets could not be attributed for lack of privilege, and what would help.
  std::optional<std::string> takeWarning();
  [[nodiscard]] const CollectStats& stats() const { return stats_; }
  // Where TIME_WAIT closers come from, and why not from the kernel program when it could not be
  // loaded (empty otherwise).
  [[nodiscard]] CloserSource closerSource() const { return closerSource_; }
  [[nodiscard]] const std::string& closerFallbackReason() const { return closerFallback_; }
  // Whether the BPF walk is used where it can enter a namespace, and why not when it could not
  // be loaded (empty otherwise).
  [[nodiscard]] bool walksSockets() const { return iterator_ != nullptr; }
  // Whether that walk's program was one a running waitwatchd pinned.
  [[nodiscard]] bool walkReusedPinned() const;
  [[nodiscard]] const std::string& samplerFallbackReason() const { return samplerFallback_; }

 private:
  struct Namespace {
    SockDiagSampler sampler;
    std::uint64_t lastPoll = 0;
  };
  // TIME_WAIT "created" is measured dump to dump, not by the configured interval, which a late
  // poll would make count some sockets twice. Kept apart from the sampler, which a failed dump
  // drops: the window of a namespace lives as long as the namespace.
  struct DumpTimes {
    std::optional<TimePoint> last;     // start of the last dump of a delivered poll
    std::optional<TimePoint> pending;  // this poll's, which becomes `last` if it is delivered
    Duration lastLength{};             // how long the `last` dump took
    Duration pendingLength{};
    std::uint64_t seenPoll = 0;
  };
  Result<std::vector<NetnsHandle>> selectNamespaces();
  Result<void> pollNamespace(NetnsHandle& handle, bool isCurrent);
  Result<SockDiagSampler*> samplerFor(const NetnsHandle& handle, bool isCurrent);
  // A walk of the namespace, or none (why in CollectStats::walkProblem) when it cannot be
  // started there; an Error only when the thread could not return from the namespace.
  Result<std::optional<UniqueFd>> startWalk(const NetnsHandle& handle, bool isCurrent);
  // verifySampler: one dump into `out`.
  Result<void> dumpForCheck(const NetnsHandle& handle, bool isCurrent,
                            std::vector<SocketRecord>& out);
  void chargeClosers(Snapshot& out);
  void nameContainers(Snapshot& out, TimePoint now);
  std::uint32_t closerOf(const bpf::Closer& c);

  CollectorOptions options_;
  std::unique_ptr<OwnerFinder> owners_;
  SnapshotAggregator aggregator_;
  SnapshotAggregator udpAggregator_;
  Snapshot udp_;
  FdUsageReader fdUsage_;
  ContainerNameCache containerNames_;
  CloserSource closerSource_ = CloserSource::None;
  std::string closerFallback_;
  std::shared_ptr<bpf::CloseRecorder> recorder_;
  std::shared_ptr<bpf::TcpSocketIterator> iterator_;
  std::string samplerFallback_;
  std::vector<SocketRecord> checkRecords_[3];  // verifySampler: before, walk, after
  std::uint64_t checkedSockets_ = 0;           // verifySampler, since construction
  std::uint64_t checkFaults_ = 0;
  CloserLedger ledger_;
  bpf::CloseBatch closes_;
  std::vector<std::uint32_t> batchCloser_;    // per closer of closes_: its ledger id
  std::vector<std::uint32_t> processCloser_;  // per snapshot process: its closer id
  std::vector<std::uint32_t> closerIndex_;    // per closer id: its index in Snapshot::closers
  FlatIndex<std::uint64_t, std::hash<std::uint64_t>> closerGroups_;
  PendingHints hints_;                                      // of both aggregators
  std::unordered_map<std::uint64_t, Namespace> samplers_;   // by namespace inode
  std::unordered_map<std::uint64_t, DumpTimes> dumpTimes_;  // by namespace inode
  NetnsAliasCache netnsAliases_;
  std::uint64_t poll_ = 0;
  std::uint64_t lastNoPermission_ = 0;
  CollectStats stats_;
};

}  // namespace waitwatch
