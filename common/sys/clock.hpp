// SPDX-License-Identifier: Apache-2.0
#pragma once
// The wall clock, for what is shown to people and other programs (timestamps in metrics, JSON,
// journal fields). Durations and schedules use the monotonic Clock (core/duration.hpp).
#include <time.h>

#include <cstdint>

namespace waitwatch {

// Milliseconds since the epoch.
inline std::int64_t realtimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace waitwatch
