// SPDX-License-Identifier: Apache-2.0
#include "service/collector_source.hpp"

#include "attribution/collector.hpp"

namespace waitwatch {
namespace {

class CollectorSource final : public SnapshotSource {
 public:
  explicit CollectorSource(const CollectorOptions& options) : collector_(options) {}

  Result<Snapshot> collect(TimePoint now, Duration pollInterval) override {
    return collector_.collect(now, pollInterval);
  }

  Problems takeProblems() override {
    Problems p;
    for (const auto& e : collector_.stats().namespaceErrors)
      p.namespaceErrors.push_back(e.message);
    for (const auto& k : collector_.stats().kernelInfoProblems)
      p.warnings.push_back(k);
    if (auto w = collector_.takeWarning()) p.warnings.push_back(std::move(*w));
    return p;
  }

 private:
  Collector collector_;
};

}  // namespace

Result<std::unique_ptr<SnapshotSource>> makeCollectorSource(const Config& config) {
  CollectorOptions options;
  options.namespaces = config.namespaces;
  // The daemon shows no command line, executable or cgroup path (metrics, API and alerts name
  // comm, user, unit and container): not reading them saves memory per process.
  options.processDetails = false;
  return std::unique_ptr<SnapshotSource>(std::make_unique<CollectorSource>(options));
}

}  // namespace waitwatch
