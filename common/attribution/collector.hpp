// SPDX-License-Identifier: Apache-2.0
#pragma once
// One poll, end to end: every selected network namespace dumped through its own long-lived
// sock_diag socket, every socket aggregated while the dump streams, owners found through /proc,
// and one Snapshot out.
//
// Per namespace and poll: one dump of every state, the same request as a bare `ss -tan`; the
// work beside it is a hash probe per socket and, for unknown inodes only, /proc reads.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "attribution/process_resolver.hpp"
#include "core/duration.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "netlink/sampler.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch {

enum class NamespaceSelection : std::uint8_t {
  Host,   // the namespace waitwatch runs in
  All,    // every namespace on the host (/proc/*/ns/net and /run/netns)
  Named,  // the `ip netns` names in CollectorOptions::names
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
};

struct CollectStats {
  std::uint64_t sockets = 0;      // records aggregated
  std::uint32_t dumpRetries = 0;  // dumps restarted after NLM_F_DUMP_INTR
  std::uint32_t namespaces = 0;   // in the snapshot
  // Namespaces left out of this poll (deleted while being polled, or not dumpable), one each.
  std::vector<Error> namespaceErrors;
  // Namespace facts that could not be read (counters, sysctls), one line each.
  std::vector<std::string> kernelInfoProblems;
  // NamespaceSelection::All: processes whose namespace could not be opened.
  NetnsListingGaps netnsGaps;
  ResolverStats resolver;
};

class Collector {
 public:
  explicit Collector(CollectorOptions options = {});

  // `now` is when the poll starts (the caller's clock); `pollInterval` dates TIME_WAIT sockets
  // (created since the last poll). An Error means no snapshot could be built at all: /proc
  // unreadable, the host namespace not dumpable, or a named namespace that does not exist.
  Result<Snapshot> collect(TimePoint now, Duration pollInterval);
  // The same into `out`, reusing its vectors (pass the snapshot of two polls ago).
  Result<void> collect(TimePoint now, Duration pollInterval, Snapshot& out);

  // Every socket of the last poll with its owners (keepAllSockets), indices into that snapshot.
  [[nodiscard]] const std::vector<SocketLine>& sockets() const { return aggregator_.sockets(); }
  // Once: which sockets could not be attributed for lack of privilege, and what would help.
  std::optional<std::string> takeWarning();
  [[nodiscard]] const CollectStats& stats() const { return stats_; }

 private:
  struct Namespace {
    SockDiagSampler sampler;
    std::uint64_t lastPoll = 0;
  };
  Result<std::vector<NetnsHandle>> selectNamespaces();
  Result<void> pollNamespace(NetnsHandle& handle, bool isCurrent);

  CollectorOptions options_;
  ProcessResolver resolver_;
  SnapshotAggregator aggregator_;
  std::unordered_map<std::uint64_t, Namespace> samplers_;  // by namespace inode
  NetnsAliasCache netnsAliases_;
  std::uint64_t poll_ = 0;
  std::uint64_t lastNoPermission_ = 0;
  CollectStats stats_;
};

}  // namespace waitwatch
