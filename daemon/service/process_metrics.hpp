// SPDX-License-Identifier: Apache-2.0
#pragma once
// The standard process_* metrics every Prometheus exporter serves (the names and meanings of
// the official client libraries), read from /proc/self at scrape time.
#include <prometheus/collectable.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch {

// The fields of /proc/<pid>/stat the process_* metrics need.
struct SelfStat {
  std::uint64_t utimeTicks = 0;      // field 14
  std::uint64_t stimeTicks = 0;      // field 15
  std::uint64_t startTimeTicks = 0;  // field 22: clock ticks after boot
  std::uint64_t virtualBytes = 0;    // field 23
  std::uint64_t residentPages = 0;   // field 24
};

// Parses a /proc/<pid>/stat line. The comm field may hold spaces and parentheses, so fields are
// counted from the last ')'.
Result<SelfStat> parseSelfStat(std::string_view text);
// The `btime` line of /proc/stat: boot time in seconds since the epoch.
Result<std::uint64_t> parseBootTime(std::string_view procStatText);

class ProcessMetrics : public prometheus::Collectable {
 public:
  // `procSelf` is the directory read at each scrape (/proc/self); boot time comes from
  // `procStat` once.
  explicit ProcessMetrics(std::string procSelf = "/proc/self",
                          const std::string& procStat = "/proc/stat");
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string procSelf_;
  double bootTime_ = 0;
  double ticksPerSecond_ = 100;
  double pageSize_ = 4096;
};

}  // namespace waitwatch
