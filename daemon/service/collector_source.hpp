// SPDX-License-Identifier: Apache-2.0
#pragma once
// The real SnapshotSource: the netlink sampler and /proc attribution (waitwatch::attribution's
// Collector), over the namespaces the configuration names.
#include <cstdint>
#include <string>

#include "service/daemon.hpp"

namespace waitwatch {

// A factory of collector sources. The first source it makes loads the BPF close recorder (the
// daemon opens its source before it drops privileges), and every later one, after a reload that
// changed the namespaces, shares it; the BPF TCP socket iterator likewise. WAITWATCH_NO_BPF=1
// loads neither: TIME_WAIT closers then come from socket ownership, sockets from netlink dumps.
// `verifySampler`: every namespace read both ways and compared at each poll.
SnapshotSourceFactory collectorSourceFactory(bool verifySampler = false);

// The log line about `sharing` of the `polled` namespaces sharing the host's TCP hash table of
// `buckets` buckets (CollectStats::sharingHostTcpHash).
std::string sharedTcpHashNote(std::uint32_t sharing, std::uint32_t polled, std::uint32_t buckets);

}  // namespace waitwatch
