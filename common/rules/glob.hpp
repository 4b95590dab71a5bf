// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shell-style patterns for process names, units and containers: `*`, `?`, `[abc]`, `[a-z]`,
// `[!a-z]` (or `[^a-z]`) and `\` to escape. Compiled once (and validated) at config load;
// matching is pure and allocation-free.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace waitwatch {

class Glob {
 public:
  // nullopt with a reason in *why when the pattern is malformed (an unterminated `[`, a
  // trailing `\`, an empty pattern).
  static std::optional<Glob> compile(std::string_view pattern, std::string* why = nullptr);

  [[nodiscard]] bool matches(std::string_view text) const;
  [[nodiscard]] const std::string& pattern() const { return pattern_; }
  bool operator==(const Glob&) const = default;

 private:
  explicit Glob(std::string pattern) : pattern_(std::move(pattern)) {}
  std::string pattern_;
};

}  // namespace waitwatch
