// SPDX-License-Identifier: Apache-2.0
#pragma once
// The configuration's first step: strict JSON text in, a tree out. Duplicate keys and NUL
// bytes, which a DOM parser would silently accept, are refused; syntax errors say "line L,
// column C" and the path they are in. Also the helpers every error message of the second step
// (config.cpp: tree in, Config out) quotes the file's text with. Internal to waitwatch::rules.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch::config_json {

using json = nlohmann::json;

inline constexpr std::size_t kMaxQuotedKey = 64;
inline constexpr std::size_t kMaxQuotedValue = 80;

// `text` as a JSON tree (// and /* */ comments allowed); the Error names where it is wrong.
Result<json> parse(std::string_view text);

// Text from the file quoted in an error is cut to `max` bytes (at a character boundary, so it
// stays valid UTF-8) with "..." marking the cut: an error stays one readable line whatever the
// file holds (a 5000-character key, a value of a megabyte).
std::string shorten(std::string_view s, std::size_t max);
// A value as an error names it: "string \"5 minutes\"", "number 3", "an object".
std::string describe(const json& v);
// `s` shortened, as a JSON string: "\"abc\"".
std::string jsonQuote(std::string_view s);
std::string join(std::span<const std::string_view> items, std::string_view sep);
// Levenshtein distance, for "did you mean" on unknown keys.
std::size_t editDistance(std::string_view a, std::string_view b);
// Errors are one line an operator reads in a terminal or the journal, but they quote the
// file's own text (keys, syntax-error context), which may hold control characters (a key
// "a\u000ab") or bytes that are not UTF-8: those are written as \uXXXX and \xNN.
std::string printableMessage(std::string_view text);

}  // namespace waitwatch::config_json
