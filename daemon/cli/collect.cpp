#include "cli/collect.hpp"

#include "netlink/sampler.hpp"

namespace waitwatch::cli {
namespace {

Result<StateCounts> countStates(SockDiagSampler& sampler) {
  StateCounts counts;
  auto r = sampler.dump(
      DumpOptions{.states = kAllStatesMask, .ipv4 = true, .ipv6 = true, .wantCgroupId = false},
      [&](const SocketRecord& s) { ++counts[s.state]; }, [&] { counts = StateCounts{}; });
  if (!r) return r.error();
  return counts;
}

Result<std::vector<NetnsHandle>> selectNamespaces(const CliOptions& options,
                                                  const Environment& env) {
  std::vector<NetnsHandle> out;
  switch (options.netns) {
    case NetnsSelection::Own: {
      auto h = currentNetworkNamespace(env.procRoot, env.runNetns);
      if (!h) return h.error();
      out.push_back(std::move(*h));
      break;
    }
    case NetnsSelection::Named: {
      auto h = openNamedNetworkNamespace(options.netnsName, env.runNetns);
      if (!h) return h.error();
      out.push_back(std::move(*h));
      break;
    }
    case NetnsSelection::All: {
      auto all = listNetworkNamespaces(env.procRoot, env.runNetns);
      if (!all) return all.error();
      out = std::move(*all);
      break;
    }
  }
  return out;
}

}  // namespace

Result<Collection> collectStateCounts(const CliOptions& options, const Environment& env) {
  auto handles = selectNamespaces(options, env);
  if (!handles) return handles.error();

  // The namespace waitwatch runs in needs no setns (and so no privilege); the others do.
  std::uint64_t ownInode = 0;
  if (auto own = currentNetworkNamespace(env.procRoot, env.runNetns)) ownInode = own->ref.inode;

  Collection c;
  Error last;
  for (const auto& h : *handles) {
    auto sampler = h.ref.inode == ownInode ? SockDiagSampler::open()
                                           : SockDiagSampler::openInNamespace(h.fd.get());
    Result<StateCounts> counts =
        sampler ? countStates(*sampler) : Result<StateCounts>(sampler.error());
    if (!counts) {
      last = counts.error().wrap(h.ref.label());
      c.warnings.push_back(last.message);
      continue;
    }
    NetnsEntry e;
    e.ref = h.ref;
    e.states = *counts;
    c.snapshot.namespaces.push_back(std::move(e));
  }
  if (c.snapshot.namespaces.empty()) {
    if (c.warnings.empty()) return Error{0, "no network namespace found"};
    return last;
  }
  return c;
}

}  // namespace waitwatch::cli
