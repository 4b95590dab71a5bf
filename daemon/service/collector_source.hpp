// SPDX-License-Identifier: Apache-2.0
#pragma once
// The real SnapshotSource: the netlink sampler and /proc attribution (waitwatch::attribution's
// Collector), over the namespaces the configuration names.
#include <memory>

#include "service/daemon.hpp"

namespace waitwatch {

Result<std::unique_ptr<SnapshotSource>> makeCollectorSource(const Config& config);

}  // namespace waitwatch
