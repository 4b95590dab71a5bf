// SPDX-License-Identifier: Apache-2.0
#pragma once
// Reading a configuration tree (config_json.hpp's parse) into values, one checked key at a
// time. Every check names the JSON path of the value and why it is refused, and the first
// error wins, so that each section of the file (the core's in config.cpp, each rule type's in
// its own file, the daemon's "web") reads its keys the same way and its errors read alike.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/duration.hpp"

namespace waitwatch {

class ConfigReader {
 public:
  using json = nlohmann::json;

  [[nodiscard]] bool ok() const { return error_.empty(); }
  // "rules[1].for: \"5 minutes\" is not a duration, expected e.g. \"5m\"".
  [[nodiscard]] const std::string& error() const { return error_; }

  // Records the error (unless one is recorded already) and returns false.
  bool fail(const std::string& path, const std::string& reason);

  // "rules[1]" + "match" -> "rules[1].match"; a key from the file is shortened.
  static std::string child(const std::string& path, std::string_view key);
  static std::string index(const std::string& path, std::size_t i);

  // Every key of `obj` is in `allowed`; otherwise "unknown key", with "did you mean" for a
  // near miss. `what` ("a close_wait rule") says whose keys they are.
  bool knownKeys(const json& obj, const std::string& path,
                 std::span<const std::string_view> allowed, std::string_view what = {});

  bool object(const json& v, const std::string& path);
  bool string(const json& v, const std::string& path, std::string& out);
  bool boolean(const json& v, const std::string& path, bool& out);
  // "30s", "5m": at most a year.
  bool duration(const json& v, const std::string& path, Duration& out);
  // The value of a whole number in JSON: 1000, and also 1e3 and 1000.0 as JSON writers and
  // operators write them; nullopt for anything else (a fraction, a negative, past 2^53 where a
  // double stops being exact, not a number).
  static std::optional<std::uint64_t> wholeNumber(const json& v);
  // A whole number >= minimum.
  bool count(const json& v, const std::string& path, std::uint64_t minimum, std::uint64_t& out);
  bool positiveNumber(const json& v, const std::string& path, double& out);
  // Above 0 and at most 1.
  bool ratio(const json& v, const std::string& path, double& out);

  // A value or a list of values: "comm": "nginx" or "comm": ["nginx", "php-fpm*"]. `each`
  // reads one value: bool(const json&, const std::string& path).
  template <typename F>
  bool list(const json& v, const std::string& path, F&& each) {
    if (v.is_array()) {
      if (v.empty()) {
        return fail(path, "an empty list matches nothing; remove the key to match everything");
      }
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!each(v[i], index(path, i))) return false;
      }
      return true;
    }
    return each(v, path);
  }

 private:
  std::string error_;
};

}  // namespace waitwatch
