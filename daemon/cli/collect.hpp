// SPDX-License-Identifier: Apache-2.0
#pragma once
// Collection: what `waitwatch` asks for, mapped onto the Collector (common/attribution) that
// the daemon uses too. Rendering (render.hpp) only reads the Snapshots, so new views add a
// renderer, not a collection step.
//
// A one-shot run has no cache to lean on: its owners come from OneShotOwners (the BPF socket-fd
// scan where it loads, else a parallel /proc walk beside the dumps; WAITWATCH_NO_BPF=1 in the
// environment forces the walk). --watch over TCP keeps the Collector with the daemon's cached
// resolver across refreshes instead, which makes every later refresh cheap.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "core/duration.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch {
class Collector;
class OneShotOwners;
}  // namespace waitwatch

namespace waitwatch::cli {

// Where the host is looked at; tests point these at their own trees.
struct Environment {
  std::string procRoot = "/proc";
  // Where the container runtimes' files are (the host's "/"), for container names.
  std::string containerRoot = "/";
  std::string runNetns = "/run/netns";
  // fd-walking threads of a one-shot run; 0: one per core (at most 4).
  unsigned walkerThreads = 0;
  // One-shot runs: find owners with the BPF scan where it loads (also needs procRoot to be this
  // pid namespace's /proc, and no WAITWATCH_NO_BPF=1 in the environment).
  bool bpf = true;
  // --watch clears the screen before each refresh only on a terminal.
  bool stdoutIsTerminal = false;
};

struct CollectRequest {
  NamespaceSelection netns = NamespaceSelection::Host;
  std::string netnsName{};   // NamespaceSelection::Named
  bool keepSockets = false;  // every TCP socket with its owners (filters, --sockets)
  bool udp = false;          // UDP sockets too, aggregated apart
  bool reuseCache = false;   // --watch over TCP only: owners from a cache kept across calls
};

struct Collection {
  Snapshot snapshot;                // TCP
  std::vector<SocketLine> sockets;  // keepSockets: every TCP socket, indices into `snapshot`
  // UDP (when asked), in a snapshot of its own so that TCP counts stay TCP: an unconnected UDP
  // socket counts as CLOSE, a connected one as ESTABLISHED. Every UDP socket is kept.
  bool hasUdp = false;
  Snapshot udp;
  std::vector<SocketLine> udpSockets;  // indices into `udp`
  // Namespaces that could not be read and facts that could not be (one line each); the rest is
  // still reported.
  std::vector<std::string> warnings;
  // Once per LocalCollector: which sockets could not be attributed for lack of privilege.
  std::optional<std::string> privilegeWarning;
  // A one-shot run found the owners with the BPF scan (else by walking /proc).
  bool ownersFromBpf = false;
  // The BPF programs this run used that a running waitwatchd had pinned ("tcp_sockets",
  // "socket_fds"), instead of loading them.
  std::vector<std::string> reusedPrograms;
};

class LocalCollector {
 public:
  LocalCollector(CollectRequest request, Environment env);
  ~LocalCollector();
  LocalCollector(const LocalCollector&) = delete;
  LocalCollector& operator=(const LocalCollector&) = delete;

  // One look at the host. Fails when the selection itself fails (no such name) or when not one
  // namespace could be read.
  Result<Collection> collect(TimePoint now);

 private:
  CollectRequest request_;
  Environment env_;
  std::unique_ptr<Collector> collector_;
  OneShotOwners* oneShot_ = nullptr;  // the collector's owner finder, unless reuseCache
  bool netnsWarned_ = false;          // namespaces hidden from --netns all: said once
};

}  // namespace waitwatch::cli
