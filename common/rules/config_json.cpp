// SPDX-License-Identifier: Apache-2.0
#include "rules/config_json.hpp"

#include <algorithm>
#include <set>
#include <vector>

#include "core/utf8.hpp"

namespace waitwatch::config_json {
namespace {

// A SAX walk that rejects what the DOM parser would silently accept (duplicate keys) and
// turns syntax errors into "line L, column C: reason".

class StrictnessChecker : public json::json_sax_t {
 public:
  std::string error;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    if (!value()) return false;
    frames_.emplace_back().array = false;
    return true;
  }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      error = pathText() + (frames_.size() > 1 ? ": duplicate key \"" : "duplicate key \"") +
              shorten(k, kMaxQuotedKey) + "\"";
      // the path above names the object; say which key
      return false;
    }
    f.key = k;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (!value()) return false;
    frames_.emplace_back().array = true;
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const json::exception& ex) override {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..."
    static constexpr std::string_view kAt = "parse error at ";
    if (const auto at = what.find(kAt); at != std::string::npos) {
      what.erase(0, at + kAt.size());
    } else if (const auto bracket = what.find("] "); bracket != std::string::npos) {
      what.erase(0, bracket + 2);
    }
    // "...; last read: '<the token so far>'": an unterminated string or comment makes that
    // token the rest of the file. The end of it is what shows where the parser stopped.
    static constexpr std::string_view kLastRead = "; last read: '";
    if (const auto at = what.find(kLastRead); at != std::string::npos) {
      const std::size_t begin = at + kLastRead.size();
      const std::size_t end =
          what.size() > begin && what.back() == '\'' ? what.size() - 1 : what.size();
      constexpr std::size_t kTail = 40;
      if (end - begin > kTail) {
        std::size_t from = end - kTail;
        while (from < end && (static_cast<unsigned char>(what[from]) & 0xC0) == 0x80)
          ++from;
        what = what.substr(0, begin) + "..." + what.substr(from);
      }
    }
    // A number too large for a double ("1e309") is no syntax error: name where it is, as every
    // other error of a value does.
    if (ex.id == 406) what = valuePath() + ": " + what;
    error = what;
    return false;
  }

 private:
  struct Frame {
    bool array = false;
    long index = -1;  // arrays: index of the current element
    std::string key;  // objects: the current key
    std::set<std::string> keys;
  };

  // Every value advances its parent array's index.
  bool value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }

  // The path of the innermost object, as in validation errors: "rules[1].match".
  std::string pathText() const {
    std::string out;
    // frames_[0] is the top-level object; each later frame is the value of its parent's
    // current key or index.
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        out += "[" + std::to_string(f.index) + "]";
      } else {
        if (!out.empty()) out += '.';
        out += shorten(f.key, kMaxQuotedKey);
      }
    }
    return out;
  }

  // The path of the value being read: "rules[0].min_sockets".
  std::string valuePath() const {
    std::string out = pathText();
    if (frames_.empty()) return out;
    const Frame& f = frames_.back();
    if (f.array) return out + "[" + std::to_string(f.index + 1) + "]";
    return out + (out.empty() ? "" : ".") + shorten(f.key, kMaxQuotedKey);
  }

  std::vector<Frame> frames_;
};

}  // namespace

Result<json> parse(std::string_view jsonText) {
  auto fail = [](std::string message) { return Error{0, std::move(message)}; };
  // The JSON parser reads the text as a C string: whatever follows a NUL byte would be
  // silently ignored ("{}\0garbage" would give the defaults).
  if (const auto nul = jsonText.find('\0'); nul != std::string_view::npos) {
    const std::string_view before = jsonText.substr(0, nul);
    const auto lastNewline = before.rfind('\n');
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const std::size_t column = lastNewline == std::string_view::npos ? nul + 1 : nul - lastNewline;
    return fail("line " + std::to_string(line) + ", column " + std::to_string(column) +
                ": a NUL byte, expected JSON text");
  }
  StrictnessChecker checker;
  const bool syntaxOk = json::sax_parse(jsonText, &checker, json::input_format_t::json,
                                        /*strict=*/true, /*ignore_comments=*/true);
  if (!syntaxOk) {
    return fail(checker.error.empty() ? std::string("not valid JSON") : checker.error);
  }
  json root = json::parse(jsonText, nullptr, /*allow_exceptions=*/false,
                          /*ignore_comments=*/true);
  if (root.is_discarded()) return fail("not valid JSON");
  return root;
}

std::string shorten(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80)
    --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case json::value_t::string:
      return "string " + json(shorten(v.get_ref<const std::string&>(), kMaxQuotedValue)).dump();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "number " + v.dump();
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

std::string jsonQuote(std::string_view s) {
  std::string out = json(shorten(s, kMaxQuotedValue)).dump();
  // JSON escapes only U+0000-U+001F; DEL is a control character as well, and errors go to logs.
  for (std::size_t at = out.find('\x7f'); at != std::string::npos; at = out.find('\x7f', at))
    out.replace(at, 1, "\\u007f");
  return out;
}

std::string join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (auto it = items.begin(); it != items.end(); ++it) {
    if (it != items.begin()) out += sep;
    out += *it;
  }
  return out;
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string printableMessage(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, surrogates or C1 controls) is kept.
    const std::string_view rest = text.substr(i);
    const std::size_t len = utf8SequenceLength(rest);
    const bool valid = len > 0 && !isC1Control(rest);
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    }
  }
  return out;
}

}  // namespace waitwatch::config_json
