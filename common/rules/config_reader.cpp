// SPDX-License-Identifier: Apache-2.0
#include "rules/config_reader.hpp"

#include <algorithm>
#include <cmath>

#include "rules/config_json.hpp"

namespace waitwatch {
namespace {

using config_json::describe;
using config_json::jsonQuote;

// The engine adds durations to steady-clock times in nanoseconds (int64: 292 years), so a
// "106751991167d" would overflow there; no setting needs more than a year.
constexpr Duration kMaxDuration{365LL * 24 * 3'600'000};
constexpr double kMaxExact = 9007199254740992.0;  // 2^53

}  // namespace

bool ConfigReader::fail(const std::string& path, const std::string& reason) {
  if (error_.empty()) error_ = path.empty() ? reason : path + ": " + reason;
  return false;
}

std::string ConfigReader::child(const std::string& path, std::string_view key) {
  const std::string k = config_json::shorten(key, config_json::kMaxQuotedKey);
  return path.empty() ? k : path + "." + k;
}

std::string ConfigReader::index(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

bool ConfigReader::knownKeys(const json& obj, const std::string& path,
                             std::span<const std::string_view> allowed, std::string_view what) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string reason = "unknown key";
    if (!what.empty()) reason += " for " + std::string(what);
    std::string_view best;
    std::size_t bestDistance = 3;
    for (std::string_view a : allowed) {
      const std::size_t d = config_json::editDistance(key, a);
      if (d < bestDistance) {
        bestDistance = d;
        best = a;
      }
    }
    if (!best.empty()) {
      reason += ", did you mean " + jsonQuote(best) + "?";
    } else {
      reason += " (expected one of: " + config_json::join(allowed, ", ") + ")";
    }
    return fail(child(path, key), reason);
  }
  return true;
}

bool ConfigReader::object(const json& v, const std::string& path) {
  if (v.is_object()) return true;
  return fail(path, "expected an object, got " + describe(v));
}

bool ConfigReader::string(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) return fail(path, "expected a string, got " + describe(v));
  out = v.get<std::string>();
  return true;
}

bool ConfigReader::boolean(const json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) return fail(path, "expected true or false, got " + describe(v));
  out = v.get<bool>();
  return true;
}

bool ConfigReader::duration(const json& v, const std::string& path, Duration& out) {
  if (!v.is_string()) {
    return fail(path, "expected a duration such as \"30s\" or \"5m\", got " + describe(v));
  }
  const auto& text = v.get_ref<const std::string&>();
  auto d = parseDuration(text);
  if (!d) return fail(path, jsonQuote(text) + " is not a duration, expected e.g. \"5m\"");
  if (*d > kMaxDuration) {
    return fail(path, jsonQuote(text) + " is too long, expected at most \"365d\"");
  }
  out = *d;
  return true;
}

std::optional<std::uint64_t> ConfigReader::wholeNumber(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) {  // "-0" is read as a signed 0
    const auto i = v.get<std::int64_t>();
    return i >= 0 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(i)) : std::nullopt;
  }
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.get<double>();
  // 2^53 itself may be a rounded 2^53 + 1.
  if (d < 0 || d != std::floor(d) || d >= kMaxExact) return std::nullopt;
  return static_cast<std::uint64_t>(d);
}

bool ConfigReader::count(const json& v, const std::string& path, std::uint64_t minimum,
                         std::uint64_t& out) {
  if (const auto n = wholeNumber(v)) {
    out = *n;
  } else if ((v.is_number_integer() && !v.is_number_unsigned()) ||
             (v.is_number_float() && v.get<double>() < 0)) {
    return fail(path, v.dump() + " is negative, expected a whole number of at least " +
                          std::to_string(minimum));
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             v.get<double>() == std::floor(v.get<double>())) {
    return fail(path, v.dump() + " is too large to be exact, expected a whole number below 2^53");
  } else {
    return fail(path, "expected a whole number, got " + describe(v));
  }
  if (out < minimum) {
    return fail(path, v.dump() + " is too small, expected at least " + std::to_string(minimum));
  }
  return true;
}

bool ConfigReader::positiveNumber(const json& v, const std::string& path, double& out) {
  if (!v.is_number()) return fail(path, "expected a number, got " + describe(v));
  out = v.get<double>();
  if (!std::isfinite(out) || out <= 0) {
    return fail(path, v.dump() + " is not positive, expected a number above 0");
  }
  return true;
}

bool ConfigReader::ratio(const json& v, const std::string& path, double& out) {
  if (!v.is_number()) {
    return fail(path, "expected a ratio between 0 and 1 such as 0.8, got " + describe(v));
  }
  out = v.get<double>();
  if (!(out > 0 && out <= 1)) {
    return fail(path, v.dump() + " is not a ratio, expected a number above 0 and at most 1");
  }
  return true;
}

}  // namespace waitwatch
