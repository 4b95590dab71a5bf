// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared helpers of the engine tests: configs from JSON text, explicit times, short alert
// descriptions to compare whole poll results at once.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "rules/config.hpp"
#include "rules/engine.hpp"

namespace waitwatch::testing {

// What a close_wait alert says to look for when its sockets were not read since the peer
// closed (the builder's default kind).
inline const std::string kAbandonedHint =
    ": look for connections kept and never used again (a pool that does not check idle "
    "connections, a handle dropped without close(), a stuck thread)";

inline Config configFrom(std::string_view json) {
  auto r = compileConfig(json, "test");
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return Config{};
  }
  return *r;
}

// Times as seconds from an arbitrary origin (a steady clock's zero is not special).
inline TimePoint at(double seconds) {
  return TimePoint{} + std::chrono::hours(1000) +
         std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// "firing close-wait-leak process:1234@1000:4026531840"
inline std::string brief(const Alert& a) {
  return std::string(alertStateName(a.state)) + " " + a.rule + " " + a.key;
}

inline std::vector<std::string> briefs(const std::vector<Alert>& alerts) {
  std::vector<std::string> out;
  for (const Alert& a : alerts)
    out.push_back(brief(a));
  return out;
}

}  // namespace waitwatch::testing
