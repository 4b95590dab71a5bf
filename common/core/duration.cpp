// SPDX-License-Identifier: Apache-2.0
#include "core/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <utility>

namespace waitwatch {
namespace {
struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};
// Longest suffix first so that "ms" is not read as "m".
constexpr std::array<Unit, 5> kUnits = {
    {{"ms", 1}, {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}}};
}  // namespace

std::optional<Duration> parseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  while (!text.empty()) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr == text.data() || n < 0) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.substr(0, u.suffix.size()) == u.suffix) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    text.remove_prefix(unit->suffix.size());
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / unit->ms) return std::nullopt;
    total += n * unit->ms;
  }
  return Duration(total);
}

std::string formatDuration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (const Unit& u : {kUnits[1], kUnits[2], kUnits[3], kUnits[4], kUnits[0]}) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms);
      out += u.suffix;
      ms %= u.ms;
    }
  }
  return out;
}

std::string humanDuration(Duration d) {
  std::int64_t ms = d.count() < 0 ? 0 : d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::int64_t s = ms / 1000;
  const std::array<std::pair<std::int64_t, std::string_view>, 4> parts = {
      {{s / 86400, "d"}, {(s / 3600) % 24, "h"}, {(s / 60) % 60, "m"}, {s % 60, "s"}}};
  std::string out;
  int shown = 0;
  for (const auto& [n, suffix] : parts) {
    if (shown == 0 && n == 0) continue;
    if (shown == 2) break;
    out += std::to_string(n);
    out += suffix;
    ++shown;
  }
  return out;
}

}  // namespace waitwatch
