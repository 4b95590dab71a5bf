// SPDX-License-Identifier: Apache-2.0
#include "cli/collect.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "attribution/collector.hpp"
#include "attribution/one_shot_owners.hpp"
#include "bpf/disabled.hpp"

namespace waitwatch::cli {
namespace {

// The scan numbers processes as the caller's pid namespace does: usable only when procRoot is
// that namespace's /proc (not a test tree, not another namespace's mount).
bool procRootIsOurs(const std::string& procRoot) {
  char self[32];
  const ssize_t n = ::readlink((procRoot + "/self").c_str(), self, sizeof(self));
  if (n <= 0) return false;
  return std::string_view(self, static_cast<std::size_t>(n)) == std::to_string(::getpid());
}

unsigned walkerThreads(const Environment& env) {
  if (env.walkerThreads > 0) return env.walkerThreads;
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

}  // namespace

LocalCollector::LocalCollector(CollectRequest request, Environment env)
    : request_(std::move(request)), env_(std::move(env)) {}

LocalCollector::~LocalCollector() = default;

Result<Collection> LocalCollector::collect(TimePoint now) {
  if (!collector_) {
    CollectorOptions o{.namespaces = request_.netns,
                       .names = {},
                       .procRoot = env_.procRoot,
                       .runNetns = env_.runNetns,
                       .keepAllSockets = request_.keepSockets,
                       .udp = request_.udp,
                       .containerRoot = env_.containerRoot};
    if (request_.netns == NamespaceSelection::Named) o.names = {request_.netnsName};
    // The kernel's walk of each namespace's sockets in place of a dump, where it loads.
    if (env_.bpf && !bpf::disabledByEnvironment()) {
      o.sampler = SamplerMode::Auto;
      // Where waitwatchd runs, its programs are already loaded: a run that takes them loads
      // nothing (measured at 100k sockets: ~21 ms of ~100 on the critical path, ~40 ms of CPU).
      o.reusePinnedIterator = true;
    }
    std::unique_ptr<OneShotOwners> oneShot;
    // UDP sockets come and go by the thousand (DNS): in the cache every one that closed would
    // send its holder to a re-walk, so a look at UDP is always a fresh one.
    if (!request_.reuseCache || request_.udp) {
      const bool tryBpf =
          env_.bpf && !bpf::disabledByEnvironment() && procRootIsOurs(env_.procRoot);
      oneShot =
          std::make_unique<OneShotOwners>(OneShotOwnersOptions{.procRoot = env_.procRoot,
                                                               .bpf = tryBpf,
                                                               .reusePinned = true,
                                                               .threads = walkerThreads(env_)});
      oneShot_ = oneShot.get();
    }
    collector_ = std::make_unique<Collector>(std::move(o), std::move(oneShot));
  }
  Collection c;
  if (auto r = collector_->collect(now, Duration{0}, c.snapshot); !r) return r.error();
  const CollectStats& stats = collector_->stats();
  for (const Error& e : stats.namespaceErrors)
    c.warnings.push_back(e.message);
  for (const std::string& p : stats.kernelInfoProblems)
    c.warnings.push_back(p);
  for (const std::string& p : stats.ownerProblems)
    c.warnings.push_back(p);
  if (stats.netnsGaps.hiddenProcesses > 0 && !netnsWarned_) {
    netnsWarned_ = true;
    c.warnings.push_back(describeNetnsGaps(stats.netnsGaps));
  }
  if (request_.keepSockets) c.sockets = collector_->sockets();
  if (request_.udp) {
    c.udp = collector_->takeUdp();
    c.udpSockets = collector_->udpSockets();
    c.hasUdp = true;
  }
  c.ownersFromBpf = oneShot_ != nullptr && oneShot_->usedBpf();
  if (stats.walkedNamespaces > 0 && collector_->walkReusedPinned()) {
    c.reusedPrograms.emplace_back("tcp_sockets");
  }
  if (c.ownersFromBpf && oneShot_->reusedPinned()) c.reusedPrograms.emplace_back("socket_fds");
  if (auto w = collector_->takeWarning()) c.privilegeWarning = std::move(w);
  return c;
}

}  // namespace waitwatch::cli
