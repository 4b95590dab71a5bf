// SPDX-License-Identifier: Apache-2.0
#include "attribution/collector.hpp"

#include <algorithm>

#include "netlink/netns_info.hpp"

namespace waitwatch {

Collector::Collector(CollectorOptions options)
    : options_(std::move(options)),
      resolver_(ProcessResolverOptions{.procRoot = options_.procRoot,
                                       .cgroupRoot = options_.cgroupRoot,
                                       .fullWalkInterval = options_.fullWalkInterval,
                                       .processDetails = options_.processDetails}),
      aggregator_(AggregatorOptions{.perSocketStates = options_.perSocketStates,
                                    .keepAllSockets = options_.keepAllSockets}) {}

Result<std::vector<NetnsHandle>> Collector::selectNamespaces() {
  std::vector<NetnsHandle> handles;
  switch (options_.namespaces) {
    case NamespaceSelection::Host: {
      auto h = currentNetworkNamespace(options_.procRoot);
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
        if (!h) return h.error().wrap("network namespace '" + name + "'");
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

Result<void> Collector::pollNamespace(NetnsHandle& handle, bool isCurrent) {
  auto it = samplers_.find(handle.ref.inode);
  if (it == samplers_.end()) {
    auto sampler =
        isCurrent ? SockDiagSampler::open() : SockDiagSampler::openInNamespace(handle.fd.get());
    if (!sampler) return sampler.error();
    it = samplers_.emplace(handle.ref.inode, Namespace{std::move(*sampler), 0}).first;
  }
  it->second.lastPoll = poll_;

  NetnsKernelInfo info;
  if (isCurrent) {
    info = readCurrentNetnsKernelInfo(options_.procRoot);
  } else {
    auto r = readNetnsKernelInfo(handle.fd.get());
    if (!r) return r.error();
    info = std::move(*r);
  }
  if (!info.problems.empty())
    stats_.kernelInfoProblems.push_back(handle.ref.label() + ": " + info.problems);

  NetnsEntry entry;
  entry.ref = handle.ref;
  entry.kernel = info.counters;
  entry.maxTimeWaitBuckets = info.maxTimeWaitBuckets;
  if (info.ephemeral) entry.ephemeral = *info.ephemeral;
  aggregator_.beginNamespace(std::move(entry));

  auto visit = [this](const SocketRecord& s) { aggregator_.add(s); };
  auto restart = [this] { aggregator_.restartDump(); };
  // One dump of every state. Within each family the kernel sends the listening sockets before
  // the established hash, and a TIME_WAIT socket's listener is of its own family, so its
  // listening port is known by the time it streams past.
  aggregator_.beginDump();
  auto dumped = it->second.sampler.dump(DumpOptions{}, visit, restart);
  if (!dumped) {
    aggregator_.abortNamespace();
    samplers_.erase(it);  // a fresh socket next time, should the namespace still exist
    return dumped.error();
  }
  stats_.sockets += dumped->sockets;
  stats_.dumpRetries += dumped->retries;
  aggregator_.endNamespace();
  ++stats_.namespaces;
  return {};
}

Result<void> Collector::collect(TimePoint now, Duration pollInterval, Snapshot& out) {
  ++poll_;
  stats_ = CollectStats{};
  if (auto r = resolver_.beginPoll(now); !r) return r.error();

  auto handles = selectNamespaces();
  if (!handles) return handles.error();
  std::uint64_t currentInode = 0;
  if (options_.namespaces == NamespaceSelection::Host) {
    currentInode = handles->front().ref.inode;
  } else if (auto current = currentNetworkNamespace(options_.procRoot)) {
    currentInode = current->ref.inode;
  }

  aggregator_.begin(now, pollInterval, resolver_);
  for (NetnsHandle& handle : *handles) {
    auto r = pollNamespace(handle, handle.ref.inode == currentInode);
    if (r) continue;
    // The host namespace or a namespace asked for by name must be there; in "all" mode a
    // namespace deleted between the listing and its dump simply drops out of this poll.
    if (options_.namespaces != NamespaceSelection::All) {
      return r.error().wrap("network namespace " + handle.ref.label());
    }
    stats_.namespaceErrors.push_back(r.error().wrap("network namespace " + handle.ref.label()));
  }
  // Namespaces that are gone: close their sockets.
  std::erase_if(samplers_, [&](const auto& kv) { return kv.second.lastPoll != poll_; });

  resolver_.resolve(aggregator_.pendingHints(), now);
  aggregator_.finish(out);
  resolver_.endPoll();
  stats_.resolver = resolver_.stats();
  lastNoPermission_ = out.unattributedNoPermission;
  return {};
}

Result<Snapshot> Collector::collect(TimePoint now, Duration pollInterval) {
  Snapshot snapshot;
  if (auto r = collect(now, pollInterval, snapshot); !r) return r.error();
  return snapshot;
}

std::optional<std::string> Collector::takeWarning() {
  if (lastNoPermission_ == 0) return std::nullopt;
  auto warning = resolver_.takePermissionWarning();
  if (!warning) return std::nullopt;
  return std::to_string(lastNoPermission_) + " socket(s) could not be attributed: " + *warning;
}

}  // namespace waitwatch
