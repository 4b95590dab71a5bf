// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the leaking test tools (fdleak, portleak) share: their clock, their fatal errors and
// their option values. Each defines kTool, its name in messages.
#include <time.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace leak_tool {

// CLOCK_MONOTONIC milliseconds: the clock of std::chrono::steady_clock, which tests compare with.
inline std::int64_t monotonicMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

[[noreturn]] inline void die(const char* tool, const std::string& what) {
  std::fprintf(stderr, "%s: %s: %s\n", tool, what.c_str(), std::strerror(errno));
  std::exit(1);
}

// A positive number given to `flag`, or exit 2 with a message.
inline unsigned long number(const char* tool, const char* flag, const char* text) {
  unsigned long v = 0;
  const std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0) {
    std::fprintf(stderr, "%s: %s: \"%s\" is not a positive number\n", tool, flag, text);
    std::exit(2);
  }
  return v;
}

}  // namespace leak_tool
