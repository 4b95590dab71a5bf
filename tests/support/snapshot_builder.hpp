// SPDX-License-Identifier: Apache-2.0
#pragma once
// Builds synthetic Snapshots, readably (the engine's tests, the fuzzers' seeds):
//
//   SnapshotBuilder b;
//   auto nginx = b.process({.pid = 1234, .comm = "nginx", .unit = "nginx.service",
//                           .listen = {8080}});
//   b.closeWait(1001, {nginx}, 8080, "10.0.0.7:51000");
//   Snapshot s = b.build();
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/snapshot.hpp"
#include "support/addresses.hpp"

namespace waitwatch::testing {

inline constexpr std::uint64_t kHostNetns = 4026531840;

struct ProcessSpec {
  std::int32_t pid = 0;
  std::uint64_t startTime = 1000;
  std::string comm;
  std::string unit;
  std::string containerRuntime;  // "docker"
  std::string containerId;
  std::string containerName;  // names from the runtime's files
  std::string podUid;
  std::string podName;
  std::string podNamespace;
  std::string user = "www-data";
  std::uint32_t uid = 33;
  std::vector<std::uint16_t> listen;  // sorted
  std::uint32_t netns = 0;

  // Fluent setters: designated initializers that skip members warn with g++ 12.
  ProcessSpec& inUnit(std::string u) {
    unit = std::move(u);
    return *this;
  }
  ProcessSpec& inContainer(std::string runtime, std::string id) {
    containerRuntime = std::move(runtime);
    containerId = std::move(id);
    return *this;
  }
  // A Kubernetes pod's container (containerd), named as the runtime's files name it.
  ProcessSpec& inPod(std::string id, std::string podUidText, std::string podNs, std::string pod,
                     std::string container) {
    containerRuntime = "containerd";
    containerId = std::move(id);
    podUid = std::move(podUidText);
    podNamespace = std::move(podNs);
    podName = std::move(pod);
    containerName = std::move(container);
    return *this;
  }
  ProcessSpec& named(std::string name) {
    containerName = std::move(name);
    return *this;
  }
  ProcessSpec& ownedBy(std::string name, std::uint32_t id) {
    user = std::move(name);
    uid = id;
    return *this;
  }
  ProcessSpec& listening(std::vector<std::uint16_t> ports) {
    listen = std::move(ports);
    return *this;
  }
  ProcessSpec& started(std::uint64_t ticks) {
    startTime = ticks;
    return *this;
  }
};

inline ProcessSpec proc(std::int32_t pid, std::string comm) {
  ProcessSpec p;
  p.pid = pid;
  p.comm = std::move(comm);
  return p;
}

class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(Duration pollInterval = Duration(5000)) {
    s_.pollInterval = pollInterval;
    addNamespace(kHostNetns, "");
  }

  std::uint32_t addNamespace(std::uint64_t inode, std::string name) {
    NetnsEntry ns;
    ns.ref = NetnsRef{inode, std::move(name), {}};
    ns.maxTimeWaitBuckets = 131072;
    ns.kernel.valid = true;
    s_.namespaces.push_back(std::move(ns));
    return static_cast<std::uint32_t>(s_.namespaces.size() - 1);
  }
  NetnsEntry& netns(std::uint32_t index = 0) { return s_.namespaces.at(index); }

  static ProcessInfo info(const ProcessSpec& spec) {
    ProcessInfo i;
    i.key = ProcessKey{spec.pid, spec.startTime};
    i.comm = spec.comm;
    i.unit = spec.unit;
    i.container = ContainerInfo{spec.containerRuntime, spec.containerId, spec.podUid};
    i.container.name = spec.containerName;
    i.container.podName = spec.podName;
    i.container.podNamespace = spec.podNamespace;
    i.user = spec.user;
    i.uid = spec.uid;
    return i;
  }

  std::uint32_t process(const ProcessSpec& spec) {
    ProcessEntry p;
    p.info = info(spec);
    p.netns = spec.netns;
    p.listenPorts = spec.listen;
    s_.processes.push_back(std::move(p));
    return static_cast<std::uint32_t>(s_.processes.size() - 1);
  }

  // A CLOSE_WAIT socket on local 10.0.0.1:<localPort> (or `localAddress`) from `remote`.
  SnapshotBuilder& closeWait(std::uint64_t cookie, const std::vector<std::uint32_t>& owners,
                             std::uint16_t localPort, const std::string& remote,
                             std::uint32_t netns = 0, const std::string& localAddress = "10.0.0.1",
                             std::uint32_t uid = 33,
                             CloseWaitKind kind = CloseWaitKind::Abandoned) {
    CloseWaitSocket c;
    c.cookie = cookie;
    c.inode = static_cast<std::uint32_t>(cookie);
    c.uid = uid;
    c.netns = netns;
    const Endpoint peer = endpoint(remote);
    c.localAddress = addresses_.intern(ip(localAddress), s_.addresses);
    c.remoteAddress = addresses_.intern(peer.address, s_.addresses);
    c.localPort = localPort;
    c.remotePort = peer.port;
    c.ownerBegin = static_cast<std::uint32_t>(s_.ownerLinks.size());
    c.setOwnerCount(static_cast<std::uint32_t>(owners.size()));
    c.setKind(kind);
    for (std::uint32_t o : owners)
      s_.ownerLinks.push_back(o);
    s_.closeWait.push_back(c);
    return *this;
  }

  // `count` server-side sockets with cookies cookie0, cookie0 + 1, ... from distinct clients.
  SnapshotBuilder& closeWaitMany(std::uint64_t cookie0, std::size_t count,
                                 const std::vector<std::uint32_t>& owners, std::uint16_t localPort,
                                 const std::string& clientPrefix = "10.0.2.") {
    for (std::size_t i = 0; i < count; ++i) {
      closeWait(cookie0 + i, owners, localPort,
                clientPrefix + std::to_string(1 + i % 200) + ":" +
                    std::to_string(40000 + (cookie0 + i) % 20000));
    }
    return *this;
  }

  // Client-side TIME_WAIT: `source` -> `destination`, with the usage ratio computed from the
  // namespace's ephemeral range as the attribution adapter does.
  SnapshotBuilder& timeWaitPair(const std::string& source, const std::string& destination,
                                std::uint32_t timeWait, std::uint32_t live, std::uint32_t created,
                                std::uint32_t netns = 0) {
    TimeWaitGroup g;
    g.netns = netns;
    g.serverSide = false;
    g.source = ip(source);
    g.destination = endpoint(destination);
    g.timeWait = timeWait;
    g.live = live;
    g.created = created;
    g.portUsageRatio = static_cast<double>(timeWait + live) /
                       static_cast<double>(s_.namespaces.at(netns).ephemeral.usableCount());
    s_.timeWait.push_back(g);
    return *this;
  }

  SnapshotBuilder& timeWaitServer(const std::string& local, std::uint32_t listener,
                                  std::uint32_t timeWait, std::uint32_t created,
                                  std::uint32_t netns = 0) {
    TimeWaitGroup g;
    g.netns = netns;
    g.serverSide = true;
    g.destination = endpoint(local);
    g.listener = listener;
    g.timeWait = timeWait;
    g.created = created;
    s_.timeWait.push_back(g);
    return *this;
  }

  // A process that closed connections now in TIME_WAIT (it may have exited): an index into
  // Snapshot::closers. Sets the snapshot's closer source to `source`.
  std::uint32_t closer(const ProcessSpec& spec, CloserSource source = CloserSource::KernelProbe) {
    s_.closerSource = source;
    s_.closers.push_back(info(spec));
    return static_cast<std::uint32_t>(s_.closers.size() - 1);
  }

  // Charges `timeWait` sockets (`created` of them new) of TIME_WAIT group `group` to `closer`
  // (kNoIndex: not known). Call in group order.
  SnapshotBuilder& closedBy(std::uint32_t group, std::uint32_t closer, std::uint32_t timeWait,
                            std::uint32_t created = 0) {
    if (s_.closerSource == CloserSource::None) s_.closerSource = CloserSource::KernelProbe;
    s_.timeWaitByCloser.push_back(TimeWaitByCloser{group, closer, timeWait, created});
    return *this;
  }

  // Sockets in other states, counted per namespace only (as the sampler aggregates them).
  SnapshotBuilder& count(TcpState state, std::uint64_t n, std::uint32_t netns = 0) {
    extra_.resize(s_.namespaces.size());
    extra_[netns][state] += n;
    return *this;
  }

  // The snapshot, with namespace counts consistent with the sockets and groups added.
  [[nodiscard]] Snapshot build() const {
    Snapshot out = s_;
    for (std::size_t n = 0; n < out.namespaces.size(); ++n) {
      if (n < extra_.size()) out.namespaces[n].states += extra_[n];
    }
    for (const CloseWaitSocket& c : out.closeWait) {
      if (c.netns < out.namespaces.size()) out.namespaces[c.netns].states[TcpState::CloseWait]++;
    }
    for (const TimeWaitGroup& g : out.timeWait) {
      if (g.netns >= out.namespaces.size()) continue;
      out.namespaces[g.netns].states[TcpState::TimeWait] += g.timeWait;
      out.namespaces[g.netns].timeWaitCreated += g.created;
    }
    for (const CloseWaitSocket& c : out.closeWait) {
      for (std::uint32_t k = 0; k < c.ownerCount; ++k) {
        const std::uint32_t p = out.ownerLinks[c.ownerBegin + k];
        if (p < out.processes.size()) {
          out.processes[p].states[TcpState::CloseWait]++;
          out.processes[p].closeWaitKinds[c.kind()]++;
        }
      }
    }
    return out;
  }

  Snapshot& raw() { return s_; }

 private:
  Snapshot s_;
  std::vector<StateCounts> extra_;
  AddressInterner addresses_;  // for s_.addresses
};

}  // namespace waitwatch::testing
