// SPDX-License-Identifier: Apache-2.0
#include "rules/match.hpp"

#include <algorithm>
#include <string>
#include <tuple>

namespace waitwatch {
namespace {

// One dimension: include (if set) must match, exclude (if set) must not. `matches(value)` is
// only called when the subject has the dimension.
template <typename Pattern, typename Test>
bool dimension(const std::vector<Pattern>& include, const std::vector<Pattern>& exclude,
               bool present, Test&& matches) {
  auto any = [&](const std::vector<Pattern>& list) {
    return std::any_of(list.begin(), list.end(), matches);
  };
  if (!include.empty() && !(present && any(include))) return false;
  if (!exclude.empty() && present && any(exclude)) return false;
  return true;
}

}  // namespace

bool usesProcessDimensions(const Match& m) {
  for (const Selector* s : {&m.include, &m.exclude}) {
    if (!s->comm.empty() || !s->unit.empty() || !s->container.empty() ||
        !s->containerName.empty() || !s->pod.empty() || !s->podNamespace.empty() ||
        !s->user.empty()) {
      return true;
    }
  }
  return false;
}

bool usesEndpointDimensions(const Match& m) {
  for (const Selector* s : {&m.include, &m.exclude}) {
    if (!s->localPort.empty() || !s->destination.empty() || !s->destinationPort.empty()) {
      return true;
    }
  }
  return false;
}

bool passesProcess(const Match& m, const ProcessInfo* process, std::optional<std::uint32_t> uid) {
  const Selector& in = m.include;
  const Selector& ex = m.exclude;
  const bool hasProcess = process != nullptr;
  if (!dimension(in.comm, ex.comm, hasProcess,
                 [&](const Glob& g) { return g.matches(process->comm); })) {
    return false;
  }
  if (!dimension(in.unit, ex.unit, hasProcess && !process->unit.empty(),
                 [&](const Glob& g) { return g.matches(process->unit); })) {
    return false;
  }
  if (!in.container.empty() || !ex.container.empty()) {
    const bool inContainer = hasProcess && !process->container.empty();
    std::string shortName;
    std::string fullName;
    if (inContainer) {
      shortName = process->container.shortName();
      fullName = process->container.runtime + ":" + process->container.id;
    }
    if (!dimension(in.container, ex.container, inContainer, [&](const Glob& g) {
          return g.matches(shortName) || g.matches(fullName) || g.matches(process->container.id);
        })) {
      return false;
    }
  }
  // Names the runtime's files gave: a container whose name was not found has none to match.
  for (auto [includes, excludes, member] :
       {std::tuple{&in.containerName, &ex.containerName, &ContainerInfo::name},
        std::tuple{&in.pod, &ex.pod, &ContainerInfo::podName},
        std::tuple{&in.podNamespace, &ex.podNamespace, &ContainerInfo::podNamespace}}) {
    const bool present = hasProcess && !(process->container.*member).empty();
    // A copy: clang before 16 cannot capture a structured binding (the sanitizer builds use
    // Debian's clang 14).
    const auto field = member;
    if (!dimension(*includes, *excludes, present,
                   [&](const Glob& g) { return g.matches(process->container.*field); })) {
      return false;
    }
  }
  if (!in.user.empty() || !ex.user.empty()) {
    std::optional<std::uint32_t> id = hasProcess ? std::optional(process->uid) : uid;
    const std::string idText = id ? std::to_string(*id) : std::string();
    if (!dimension(in.user, ex.user, id.has_value(), [&](const std::string& u) {
          return u == idText || (hasProcess && !process->user.empty() && u == process->user);
        })) {
      return false;
    }
  }
  return true;
}

bool passesEndpoint(const Match& m, std::optional<std::uint16_t> localPort,
                    const Endpoint* destination, const EphemeralRange& ephemeral) {
  const Selector& in = m.include;
  const Selector& ex = m.exclude;
  if (!dimension(in.localPort, ex.localPort, localPort.has_value(),
                 [&](const LocalPortSelector& s) { return s.matches(*localPort, ephemeral); })) {
    return false;
  }
  if (!dimension(in.destination, ex.destination, destination != nullptr,
                 [&](const Cidr& c) { return c.contains(destination->address); })) {
    return false;
  }
  if (!dimension(in.destinationPort, ex.destinationPort, destination != nullptr,
                 [&](const PortRange& r) { return r.contains(destination->port); })) {
    return false;
  }
  return true;
}

}  // namespace waitwatch
