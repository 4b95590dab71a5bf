// SPDX-License-Identifier: Apache-2.0
#pragma once
// Time as values. The core never reads a clock: callers pass TimePoints in.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace waitwatch {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;

// "500ms", "30s", "5m", "1h", "1h30m", "2d"; nullopt when the text is not a duration.
std::optional<Duration> parseDuration(std::string_view text);
// Canonical text that parseDuration reads back: "1h30m", "500ms", "0s".
std::string formatDuration(Duration d);
// Short human form for messages: "3h12m", "45s", "2d4h" (two most significant units).
std::string humanDuration(Duration d);

}  // namespace waitwatch
