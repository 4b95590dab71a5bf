// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shell-style patterns for process names, units and containers: `*`, `?`, `[abc]`, `[a-z]`,
// `[!a-z]` (or `[^a-z]`) and `\` to escape. A pattern matches what fnmatch(p, s, 0) matches in
// the C locale (a test compares them), on bytes whatever the locale (a comm is cut at 15 bytes,
// possibly inside a character). Kept rather than calling fnmatch because it is checked at
// config load: fnmatch takes an unterminated `[` as a literal and a trailing `\` as matching
// nothing, so a typo would silently disable a rule. Matching is pure and allocation-free.
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
