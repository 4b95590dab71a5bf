// SPDX-License-Identifier: Apache-2.0
#include "rules/config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <utility>

#include "core/enum_names.hpp"
#include "rules/config_json.hpp"

namespace waitwatch {
namespace {

using config_json::describe;
using config_json::editDistance;
using config_json::join;
using config_json::jsonQuote;
using config_json::kMaxQuotedKey;
using config_json::kMaxQuotedValue;
using config_json::printableMessage;
using config_json::shorten;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr Duration kMinPollInterval{100};
// TIME_WAIT sockets live exactly 60 s on Linux: a longer interval would let some be born and
// freed between two polls, and the creation rate would undercount them.
constexpr Duration kMaxPollInterval{60'000};
constexpr std::size_t kMaxRuleNameLength = 64;
constexpr Duration kMaxDuration{365LL * 24 * 3'600'000};

// The keys each object accepts: the validator and the JSON Schema test share these.
constexpr std::array<std::string_view, 8> kTopLevelKeys = {
    "$schema", "poll_interval", "listen", "namespaces", "metrics", "alerts", "rules", "web"};
constexpr std::array<std::string_view, 2> kMetricsKeys = {"include_pid", "max_groups"};
constexpr std::array<std::string_view, 1> kAlertsKeys = {"reminder_interval"};
constexpr std::array<std::string_view, 11> kCloseWaitRuleKeys = {
    "name",     "type",        "severity", "for",    "clear_for",    "match",
    "group_by", "min_sockets", "min_age",  "growth", "growth_window"};
constexpr std::array<std::string_view, 10> kTimeWaitRuleKeys = {"name",
                                                                "type",
                                                                "severity",
                                                                "for",
                                                                "clear_for",
                                                                "match",
                                                                "port_usage_ratio",
                                                                "min_sockets",
                                                                "rate_per_second",
                                                                "time_wait_overflow"};
constexpr std::array<std::string_view, 2> kWebKeys = {"tls_server_config", "basic_auth_users"};
constexpr std::array<std::string_view, 3> kTlsServerKeys = {"cert_file", "key_file", "min_version"};
// exporter-toolkit keys waitwatchd does not implement: said so, rather than "unknown key", to
// an operator who copied a web-config.yml over (client certificates are not offered).
constexpr std::array<std::string_view, 2> kUnsupportedWebKeys = {"http_server_config",
                                                                 "rate_limit"};
constexpr std::array<std::string_view, 9> kUnsupportedTlsKeys = {"cert",
                                                                 "key",
                                                                 "client_auth_type",
                                                                 "client_ca_file",
                                                                 "client_allowed_sans",
                                                                 "cipher_suites",
                                                                 "curve_preferences",
                                                                 "max_version",
                                                                 "prefer_server_cipher_suites"};
// bcrypt costs: each step doubles the time of a login that is not cached (cost 10: ~70 ms
// here). Past 16 (~4.5 s) a first scrape would time out.
constexpr unsigned kMinBcryptCost = 4;
constexpr unsigned kMaxBcryptCost = 16;
constexpr std::size_t kMaxUserNameLength = 64;

constexpr EnumNames<GroupBy, 3> kGroupBy({{GroupBy::Process, "process"},
                                          {GroupBy::Unit, "unit"},
                                          {GroupBy::Container, "container"}});

constexpr std::array<std::string_view, 2> kMatchKeys = {"include", "exclude"};
constexpr std::array<std::string_view, 7> kSelectorKeys = {
    "comm", "unit", "container", "user", "local_port", "destination", "destination_port"};

// The second step: the tree (config_json.hpp) into Config. The first error wins; every error
// names its path.

class Validator {
 public:
  std::string error;

  [[nodiscard]] bool ok() const { return error.empty(); }

  bool fail(const std::string& path, const std::string& reason) {
    if (error.empty()) error = path.empty() ? reason : path + ": " + reason;
    return false;
  }

  static std::string child(const std::string& path, std::string_view key) {
    const std::string k = shorten(key, kMaxQuotedKey);
    return path.empty() ? k : path + "." + k;
  }
  static std::string index(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

  // Every key of `obj` must be in `allowed`.
  bool knownKeys(const json& obj, const std::string& path,
                 std::span<const std::string_view> allowed, std::string_view what = {}) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string reason = "unknown key";
      if (!what.empty()) reason += " for " + std::string(what);
      std::string_view best;
      std::size_t bestDistance = 3;
      for (std::string_view a : allowed) {
        const std::size_t d = editDistance(key, a);
        if (d < bestDistance) {
          bestDistance = d;
          best = a;
        }
      }
      if (!best.empty()) {
        reason += ", did you mean " + jsonQuote(best) + "?";
      } else {
        reason += " (expected one of: " + join(allowed, ", ") + ")";
      }
      return fail(child(path, key), reason);
    }
    return true;
  }

  bool object(const json& v, const std::string& path) {
    if (v.is_object()) return true;
    return fail(path, "expected an object, got " + describe(v));
  }

  bool duration(const json& v, const std::string& path, Duration& out) {
    if (!v.is_string()) {
      return fail(path, "expected a duration such as \"30s\" or \"5m\", got " + describe(v));
    }
    const auto& text = v.get_ref<const std::string&>();
    auto d = parseDuration(text);
    if (!d) return fail(path, jsonQuote(text) + " is not a duration, expected e.g. \"5m\"");
    // The engine adds durations to steady-clock times in nanoseconds (int64: 292 years), so a
    // "106751991167d" would overflow there; no rule needs more than a year.
    if (*d > kMaxDuration) {
      return fail(path, jsonQuote(text) + " is too long, expected at most \"365d\"");
    }
    out = *d;
    return true;
  }

  bool count(const json& v, const std::string& path, std::uint64_t minimum, std::uint64_t& out) {
    // 1e3 and 1000.0 are whole numbers too, as JSON writers and operators write them; a
    // fraction, or a value past 2^53 where a double stops being exact, is not.
    constexpr double kMaxExact = 9007199254740992.0;  // 2^53
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d < 0) {
        return fail(path, v.dump() + " is negative, expected a whole number of at least " +
                              std::to_string(minimum));
      }
      if (d != std::floor(d) || d > kMaxExact) {
        return fail(path, "expected a whole number, got " + describe(v));
      }
      out = static_cast<std::uint64_t>(d);
    } else if (v.is_number_unsigned()) {
      out = v.get<std::uint64_t>();
    } else if (v.is_number_integer()) {
      return fail(path, v.dump() + " is negative, expected a whole number of at least " +
                            std::to_string(minimum));
    } else {
      return fail(path, "expected a whole number, got " + describe(v));
    }
    if (out < minimum) {
      return fail(path, v.dump() + " is too small, expected at least " + std::to_string(minimum));
    }
    return true;
  }

  bool boolean(const json& v, const std::string& path, bool& out) {
    if (!v.is_boolean()) return fail(path, "expected true or false, got " + describe(v));
    out = v.get<bool>();
    return true;
  }

  bool string(const json& v, const std::string& path, std::string& out) {
    if (!v.is_string()) return fail(path, "expected a string, got " + describe(v));
    out = v.get<std::string>();
    return true;
  }

  bool positiveNumber(const json& v, const std::string& path, double& out) {
    if (!v.is_number()) return fail(path, "expected a number, got " + describe(v));
    out = v.get<double>();
    if (!std::isfinite(out) || out <= 0) {
      return fail(path, v.dump() + " is not positive, expected a number above 0");
    }
    return true;
  }

  bool ratio(const json& v, const std::string& path, double& out) {
    if (!v.is_number()) {
      return fail(path, "expected a ratio between 0 and 1 such as 0.8, got " + describe(v));
    }
    out = v.get<double>();
    if (!(out > 0 && out <= 1)) {
      return fail(path, v.dump() + " is not a ratio, expected a number above 0 and at most 1");
    }
    return true;
  }

  // A value or a list of values: "comm": "nginx" or "comm": ["nginx", "php-fpm*"].
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

  bool globs(const json& v, const std::string& path, std::vector<Glob>& out) {
    return list(v, path, [&](const json& item, const std::string& p) {
      if (!item.is_string()) return fail(p, "expected a pattern string, got " + describe(item));
      const auto& text = item.get_ref<const std::string&>();
      std::string why;
      auto g = Glob::compile(text, &why);
      if (!g) return fail(p, jsonQuote(text) + " is not a valid pattern: " + why);
      out.push_back(std::move(*g));
      return true;
    });
  }

  bool users(const json& v, const std::string& path, std::vector<std::string>& out) {
    return list(v, path, [&](const json& item, const std::string& p) {
      if (item.is_number_unsigned() && item.get<std::uint64_t>() <= 0xFFFFFFFFu) {
        out.push_back(std::to_string(item.get<std::uint64_t>()));
        return true;
      }
      if (item.is_string() && !item.get_ref<const std::string&>().empty()) {
        out.push_back(item.get<std::string>());
        return true;
      }
      return fail(p, "expected a user name or uid, got " + describe(item));
    });
  }

  static std::optional<std::uint16_t> portNumber(std::string_view s) {
    unsigned v = 0;
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, v);
    if (s.empty() || ec != std::errc() || ptr != end || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
  }

  // 8080, "8080", "8000-8099".
  std::optional<PortRange> portRange(const json& item, const std::string& p,
                                     std::string_view expected) {
    if (item.is_number_unsigned() && item.get<std::uint64_t>() <= 65535) {
      const auto port = static_cast<std::uint16_t>(item.get<std::uint64_t>());
      return PortRange{port, port};
    }
    if (item.is_string()) {
      const std::string_view s = item.get_ref<const std::string&>();
      const auto dash = s.find('-');
      auto low = portNumber(s.substr(0, dash));
      auto high = dash == std::string_view::npos ? low : portNumber(s.substr(dash + 1));
      if (low && high && *low <= *high) return PortRange{*low, *high};
    }
    fail(p, (item.is_string()   ? jsonQuote(item.get_ref<const std::string&>())
             : item.is_number() ? item.dump()
                                : describe(item)) +
                " is not a port, expected " + std::string(expected));
    return std::nullopt;
  }

  bool localPorts(const json& v, const std::string& path, std::vector<LocalPortSelector>& out) {
    return list(v, path, [&](const json& item, const std::string& p) {
      if (item.is_string()) {
        if (auto c = parsePortClass(item.get_ref<const std::string&>())) {
          out.push_back(LocalPortSelector{.portClass = c, .range = {}});
          return true;
        }
      }
      auto r = portRange(item, p,
                         "a port 0-65535, a range such as \"8000-8099\", or \"well-known\", "
                         "\"registered\", \"ephemeral\"");
      if (!r) return false;
      out.push_back(LocalPortSelector{.portClass = std::nullopt, .range = *r});
      return true;
    });
  }

  bool destinationPorts(const json& v, const std::string& path, std::vector<PortRange>& out) {
    return list(v, path, [&](const json& item, const std::string& p) {
      auto r = portRange(item, p, "a port 0-65535 or a range such as \"8000-8099\"");
      if (!r) return false;
      out.push_back(*r);
      return true;
    });
  }

  bool cidrs(const json& v, const std::string& path, std::vector<Cidr>& out) {
    return list(v, path, [&](const json& item, const std::string& p) {
      if (!item.is_string()) {
        return fail(p, "expected an address or CIDR string, got " + describe(item));
      }
      const auto& text = item.get_ref<const std::string&>();
      auto c = Cidr::parse(text);
      if (!c) {
        return fail(p,
                    jsonQuote(text) + " is not an address or CIDR, expected e.g. \"10.0.0.0/8\"");
      }
      out.push_back(*c);
      return true;
    });
  }

  bool selector(const json& v, const std::string& path, Selector& out) {
    if (!object(v, path)) return false;
    if (!knownKeys(v, path, kSelectorKeys)) {
      return false;
    }
    for (const auto& [key, value] : v.items()) {
      const std::string p = child(path, key);
      bool good = true;
      if (key == "comm") good = globs(value, p, out.comm);
      if (key == "unit") good = globs(value, p, out.unit);
      if (key == "container") good = globs(value, p, out.container);
      if (key == "user") good = users(value, p, out.user);
      if (key == "local_port") good = localPorts(value, p, out.localPort);
      if (key == "destination") good = cidrs(value, p, out.destination);
      if (key == "destination_port") good = destinationPorts(value, p, out.destinationPort);
      if (!good) return false;
    }
    return true;
  }

  bool match(const json& v, const std::string& path, Match& out) {
    if (!object(v, path) || !knownKeys(v, path, kMatchKeys)) return false;
    if (v.contains("include") && !selector(v["include"], child(path, "include"), out.include)) {
      return false;
    }
    if (v.contains("exclude") && !selector(v["exclude"], child(path, "exclude"), out.exclude)) {
      return false;
    }
    return true;
  }

  static bool validRuleName(std::string_view n) {
    if (n.empty() || n.size() > kMaxRuleNameLength) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    });
  }

  bool rule(const json& v, const std::string& path, Duration pollInterval, Rule& out) {
    if (!object(v, path)) return false;
    for (std::string_view required : {"name", "type"}) {
      if (!v.contains(required)) return fail(path, "missing key " + jsonQuote(required));
    }
    if (!string(v["name"], child(path, "name"), out.name)) return false;
    if (!validRuleName(out.name)) {
      return fail(child(path, "name"), jsonQuote(out.name) +
                                           " is not a valid rule name, expected 1-64 characters of "
                                           "letters, digits, '-', '_' and '.'");
    }
    std::string type;
    if (!string(v["type"], child(path, "type"), type)) return false;
    // A key of the other rule type is a likely mix-up: say so rather than "unknown".
    const bool closeWait = type == "close_wait";
    if (closeWait || type == "time_wait") {
      const std::span<const std::string_view> mine =
          closeWait ? std::span<const std::string_view>(kCloseWaitRuleKeys) : kTimeWaitRuleKeys;
      const std::span<const std::string_view> other =
          closeWait ? std::span<const std::string_view>(kTimeWaitRuleKeys) : kCloseWaitRuleKeys;
      for (const auto& [key, value] : v.items()) {
        const bool inMine = std::find(mine.begin(), mine.end(), key) != mine.end();
        const bool inOther = std::find(other.begin(), other.end(), key) != other.end();
        if (!inMine && inOther) {
          return fail(child(path, key), "not a key of " + type + " rules (only " +
                                            (closeWait ? "time_wait" : "close_wait") +
                                            " rules have it)");
        }
      }
    }
    const std::optional<RuleType> ruleType = parseRuleType(type);
    if (!ruleType) {
      return fail(child(path, "type"),
                  jsonQuote(type) + " is not a rule type, expected " + ruleTypeNames());
    }
    out.type = *ruleType;
    const std::span<const std::string_view> ruleKeys =
        out.type == RuleType::CloseWait ? std::span<const std::string_view>(kCloseWaitRuleKeys)
                                        : std::span<const std::string_view>(kTimeWaitRuleKeys);
    if (!knownKeys(v, path, ruleKeys, "a " + std::string(ruleTypeName(out.type)) + " rule")) {
      return false;
    }

    if (v.contains("severity")) {
      std::string s;
      if (!string(v["severity"], child(path, "severity"), s)) return false;
      const std::optional<Severity> severity = parseSeverity(s);
      if (!severity) {
        return fail(child(path, "severity"),
                    jsonQuote(s) + " is not a severity, expected " + severityNames());
      }
      out.severity = *severity;
    }
    if (v.contains("for") && !duration(v["for"], child(path, "for"), out.forDuration)) {
      return false;
    }
    if (v.contains("clear_for") &&
        !duration(v["clear_for"], child(path, "clear_for"), out.clearFor)) {
      return false;
    }
    if (v.contains("match") && !match(v["match"], child(path, "match"), out.match)) return false;

    if (out.type == RuleType::CloseWait) return closeWaitRule(v, path, pollInterval, out);
    return timeWaitRule(v, path, out);
  }

  bool closeWaitRule(const json& v, const std::string& path, Duration pollInterval, Rule& out) {
    CloseWaitRule& r = out.closeWait;
    if (v.contains("group_by")) {
      std::string g;
      if (!string(v["group_by"], child(path, "group_by"), g)) return false;
      const std::optional<GroupBy> groupBy = kGroupBy.parse(g);
      if (!groupBy) {
        return fail(child(path, "group_by"),
                    jsonQuote(g) + " is not a grouping, expected " + kGroupBy.quotedList());
      }
      r.groupBy = *groupBy;
    }
    if (v.contains("min_sockets") &&
        !count(v["min_sockets"], child(path, "min_sockets"), 1, r.minSockets)) {
      return false;
    }
    if (v.contains("min_age") && !duration(v["min_age"], child(path, "min_age"), r.minAge)) {
      return false;
    }
    if (v.contains("growth")) {
      std::uint64_t g = 0;
      if (!count(v["growth"], child(path, "growth"), 1, g)) return false;
      r.growth = g;
    }
    if (v.contains("growth_window")) {
      if (!r.growth) {
        return fail(child(path, "growth_window"), "has no effect without \"growth\"");
      }
      if (!duration(v["growth_window"], child(path, "growth_window"), r.growthWindow)) {
        return false;
      }
      if (r.growthWindow < pollInterval * 2) {
        return fail(child(path, "growth_window"),
                    jsonQuote(formatDuration(r.growthWindow)) +
                        " is too short, expected at least two poll intervals (" +
                        formatDuration(pollInterval * 2) + ")");
      }
    }
    return true;
  }

  bool timeWaitRule(const json& v, const std::string& path, Rule& out) {
    TimeWaitRule& r = out.timeWait;
    if (v.contains("port_usage_ratio")) {
      double x = 0;
      if (!ratio(v["port_usage_ratio"], child(path, "port_usage_ratio"), x)) return false;
      r.portUsageRatio = x;
    }
    if (v.contains("min_sockets")) {
      std::uint64_t n = 0;
      if (!count(v["min_sockets"], child(path, "min_sockets"), 1, n)) return false;
      r.minSockets = n;
    }
    if (v.contains("rate_per_second")) {
      double x = 0;
      if (!positiveNumber(v["rate_per_second"], child(path, "rate_per_second"), x)) return false;
      r.ratePerSecond = x;
    }
    if (v.contains("time_wait_overflow") &&
        !boolean(v["time_wait_overflow"], child(path, "time_wait_overflow"), r.timeWaitOverflow)) {
      return false;
    }
    if (!r.portUsageRatio && !r.minSockets && !r.ratePerSecond && !r.timeWaitOverflow) {
      return fail(path,
                  "a time_wait rule needs at least one of port_usage_ratio, min_sockets, "
                  "rate_per_second, time_wait_overflow");
    }
    return true;
  }

  // A key of exporter-toolkit's web configuration that waitwatchd does not implement.
  bool unsupportedKeys(const json& obj, const std::string& path,
                       std::span<const std::string_view> unsupported,
                       std::span<const std::string_view> supported) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(unsupported.begin(), unsupported.end(), key) == unsupported.end()) continue;
      return fail(child(path, key),
                  "an exporter-toolkit key waitwatchd does not support (it reads " +
                      join(supported, ", ") + ")");
    }
    return true;
  }

  static bool absolutePath(std::string_view p) {
    return p.size() > 1 && p.front() == '/' && p.find('\0') == std::string_view::npos;
  }

  // "$2a$", "$2b$" or "$2y$", a two-digit cost, 22 characters of salt and 31 of hash in
  // bcrypt's base64 alphabet: what libxcrypt's crypt_rn verifies.
  static std::optional<unsigned> bcryptCost(std::string_view h) {
    if (h.size() != 60 || h.substr(0, 2) != "$2" || h[3] != '$' || h[6] != '$') return {};
    if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return {};
    if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9') return {};
    const bool alphabet = std::all_of(h.begin() + 7, h.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '/';
    });
    if (!alphabet) return {};
    return static_cast<unsigned>((h[4] - '0') * 10 + (h[5] - '0'));
  }

  static bool validUserName(std::string_view n) {
    if (n.empty() || n.size() > kMaxUserNameLength) return false;
    // A colon ends the user name in an Authorization header (RFC 7617).
    return std::none_of(n.begin(), n.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return c == ':' || u < 0x20 || u == 0x7F;
    });
  }

  bool tlsServer(const json& v, const std::string& path, TlsServerConfig& out) {
    if (!object(v, path) || !unsupportedKeys(v, path, kUnsupportedTlsKeys, kTlsServerKeys) ||
        !knownKeys(v, path, kTlsServerKeys)) {
      return false;
    }
    const bool cert = v.contains("cert_file");
    const bool key = v.contains("key_file");
    if (!cert || !key) {
      return fail(path, std::string("cert_file and key_file go together: ") +
                            (cert  ? "key_file"
                             : key ? "cert_file"
                                   : "both are") +
                            " missing");
    }
    for (auto [name, field] : {std::pair{"cert_file", &TlsServerConfig::certFile},
                               std::pair{"key_file", &TlsServerConfig::keyFile}}) {
      const std::string p = child(path, name);
      if (!string(v[name], p, out.*field)) return false;
      if (!absolutePath(out.*field)) {
        return fail(p, jsonQuote(out.*field) +
                           " is not an absolute path, expected e.g. \"/etc/waitwatch/tls.crt\"");
      }
    }
    if (v.contains("min_version")) {
      std::string version;
      const std::string p = child(path, "min_version");
      if (!string(v["min_version"], p, version)) return false;
      if (version == "TLS12") {
        out.minVersion = TlsVersion::Tls12;
      } else if (version == "TLS13") {
        out.minVersion = TlsVersion::Tls13;
      } else if (version == "TLS10" || version == "TLS11") {
        return fail(p, jsonQuote(version) +
                           " is not offered (deprecated by RFC 8996), expected \"TLS12\" or "
                           "\"TLS13\"");
      } else {
        return fail(p,
                    jsonQuote(version) + " is not a TLS version, expected \"TLS12\" or \"TLS13\"");
      }
    }
    return true;
  }

  bool basicAuthUsers(const json& v, const std::string& path, std::vector<BasicAuthUser>& out) {
    if (!object(v, path)) return false;
    if (v.empty()) {
      return fail(path, "no users: remove the key to serve without authentication");
    }
    for (const auto& [name, value] : v.items()) {
      const std::string p = child(path, name);
      if (!validUserName(name)) {
        return fail(p,
                    "not a valid user name, expected 1-64 characters without ':' or control "
                    "characters");
      }
      // The value is never quoted in an error: a plain password put here by mistake must not
      // end up in the journal.
      if (!value.is_string()) {
        return fail(p, "expected a bcrypt hash string, got " +
                           (value.is_number() ? std::string("a number") : describe(value)));
      }
      const auto cost = bcryptCost(value.get_ref<const std::string&>());
      if (!cost) {
        return fail(p,
                    "not a bcrypt hash (expected \"$2y$10$\" and 53 more characters, as "
                    "`htpasswd -nBC 10 " +
                        shorten(name, kMaxQuotedKey) +
                        "` prints after the colon); the value is not shown");
      }
      if (*cost < kMinBcryptCost || *cost > kMaxBcryptCost) {
        return fail(p, "bcrypt cost " + std::to_string(*cost) + " is out of range, expected " +
                           std::to_string(kMinBcryptCost) + " to " +
                           std::to_string(kMaxBcryptCost) +
                           " (each step doubles the time of a login; 10 takes ~70 ms)");
      }
      out.push_back(BasicAuthUser{.name = name, .bcryptHash = value.get<std::string>()});
    }
    // nlohmann::json objects iterate in key order already; sorted by name either way.
    std::sort(out.begin(), out.end(),
              [](const BasicAuthUser& a, const BasicAuthUser& b) { return a.name < b.name; });
    return true;
  }

  bool web(const json& v, WebConfig& out) {
    if (!object(v, "web") || !unsupportedKeys(v, "web", kUnsupportedWebKeys, kWebKeys) ||
        !knownKeys(v, "web", kWebKeys)) {
      return false;
    }
    if (v.contains("tls_server_config")) {
      TlsServerConfig tls;
      if (!tlsServer(v["tls_server_config"], "web.tls_server_config", tls)) return false;
      out.tls = std::move(tls);
    }
    if (v.contains("basic_auth_users") &&
        !basicAuthUsers(v["basic_auth_users"], "web.basic_auth_users", out.basicAuthUsers)) {
      return false;
    }
    return true;
  }

  bool config(const json& root, Config& out) {
    if (!root.is_object()) {
      return fail("", "expected a JSON object at the top level, got " + describe(root));
    }
    if (!knownKeys(root, "", kTopLevelKeys)) {
      return false;
    }
    if (root.contains("$schema")) {
      std::string ignored;
      if (!string(root["$schema"], "$schema", ignored)) return false;
    }
    if (root.contains("poll_interval")) {
      if (!duration(root["poll_interval"], "poll_interval", out.pollInterval)) return false;
      if (out.pollInterval < kMinPollInterval) {
        return fail("poll_interval", jsonQuote(formatDuration(out.pollInterval)) +
                                         " is too short, expected at least \"100ms\"");
      }
      if (out.pollInterval > kMaxPollInterval) {
        return fail("poll_interval",
                    jsonQuote(formatDuration(out.pollInterval)) +
                        " is too long, expected at most \"1m\" (TIME_WAIT sockets live 60s; "
                        "a longer interval misses some)");
      }
    }
    if (root.contains("listen")) {
      if (!string(root["listen"], "listen", out.listen)) return false;
      if (!parseListenAddress(out.listen)) {
        return fail("listen", jsonQuote(out.listen) +
                                  " is not an address and port, expected e.g. \"0.0.0.0:9929\" "
                                  "or \"[::]:9929\"");
      }
    }
    if (root.contains("namespaces")) {
      std::string ns;
      if (!string(root["namespaces"], "namespaces", ns)) return false;
      if (ns == "host") {
        out.namespaces = NamespaceSelection::Host;
      } else if (ns == "all") {
        out.namespaces = NamespaceSelection::All;
      } else {
        return fail("namespaces", jsonQuote(ns) + " is not a scope, expected \"host\" or \"all\"");
      }
    }
    if (root.contains("metrics")) {
      const json& m = root["metrics"];
      if (!object(m, "metrics") || !knownKeys(m, "metrics", kMetricsKeys)) {
        return false;
      }
      if (m.contains("include_pid") &&
          !boolean(m["include_pid"], "metrics.include_pid", out.metrics.includePid)) {
        return false;
      }
      if (m.contains("max_groups")) {
        std::uint64_t n = 0;
        if (!count(m["max_groups"], "metrics.max_groups", 1, n)) return false;
        if (n > 100'000) {
          return fail("metrics.max_groups",
                      std::to_string(n) + " is too large, expected at most 100000");
        }
        out.metrics.maxGroups = static_cast<std::uint32_t>(n);
      }
    }
    if (root.contains("alerts")) {
      const json& a = root["alerts"];
      if (!object(a, "alerts") || !knownKeys(a, "alerts", kAlertsKeys)) return false;
      if (a.contains("reminder_interval") &&
          !duration(a["reminder_interval"], "alerts.reminder_interval",
                    out.alerts.reminderInterval)) {
        return false;
      }
    }
    if (root.contains("rules")) {
      const json& rules = root["rules"];
      if (!rules.is_array()) {
        return fail("rules", "expected an array of rules, got " + describe(rules));
      }
      out.rules.clear();
      for (std::size_t i = 0; i < rules.size(); ++i) {
        Rule r;
        const std::string path = index("rules", i);
        if (!rule(rules[i], path, out.pollInterval, r)) return false;
        for (std::size_t j = 0; j < out.rules.size(); ++j) {
          if (out.rules[j].name == r.name) {
            return fail(child(path, "name"),
                        jsonQuote(r.name) + " is already the name of " + index("rules", j));
          }
        }
        out.rules.push_back(std::move(r));
      }
    }
    if (root.contains("web") && !web(root["web"], out.web)) return false;
    return true;
  }
};

}  // namespace

std::vector<ConfigKeySet> configKeySets() {
  auto set = [](std::string_view object, std::span<const std::string_view> keys) {
    return ConfigKeySet{object, std::vector<std::string_view>(keys.begin(), keys.end())};
  };
  return {set("", kTopLevelKeys),
          set("metrics", kMetricsKeys),
          set("alerts", kAlertsKeys),
          set("rule(close_wait)", kCloseWaitRuleKeys),
          set("rule(time_wait)", kTimeWaitRuleKeys),
          set("match", kMatchKeys),
          set("selector", kSelectorKeys),
          set("web", kWebKeys),
          set("web.tls_server_config", kTlsServerKeys)};
}

std::string_view tlsVersionName(TlsVersion v) {
  return v == TlsVersion::Tls13 ? "TLS13" : "TLS12";
}

std::string_view groupByName(GroupBy g) {
  return kGroupBy.name(g);
}

std::optional<Endpoint> parseListenAddress(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view portText = text.substr(colon + 1);
  std::optional<IpAddress> address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    address = IpAddress::parse(host.substr(1, host.size() - 2));
    if (address && address->family != AddressFamily::V6) return std::nullopt;
  } else {
    address = IpAddress::parse(host);
    if (address && address->family != AddressFamily::V4) return std::nullopt;
  }
  unsigned port = 0;
  const char* end = portText.data() + portText.size();
  auto [ptr, ec] = std::from_chars(portText.data(), end, port);
  if (!address || portText.empty() || ec != std::errc() || ptr != end || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return Endpoint{*address, static_cast<std::uint16_t>(port)};
}

Result<Config> compileConfig(std::string_view jsonText, std::string_view origin) {
  auto withOrigin = [&](const std::string& message) {
    return Error{0,
                 printableMessage(origin.empty() ? message : std::string(origin) + ": " + message)};
  };
  auto root = config_json::parse(jsonText);
  if (!root) return withOrigin(root.error().message);
  Config config = defaultConfig();
  Validator v;
  if (!v.config(*root, config)) return withOrigin(v.error);
  return config;
}

Config defaultConfig() {
  Config c;
  c.pollInterval = 5s;
  c.listen = std::string(kDefaultListen);
  c.namespaces = NamespaceSelection::Host;
  c.metrics = MetricsOptions{.includePid = false, .maxGroups = 50};
  c.alerts = AlertOptions{.reminderInterval = 1h};
  c.rules.push_back(Rule{
      .name = "close-wait-leak",
      .type = RuleType::CloseWait,
      .severity = Severity::Warning,
      .forDuration = 1min,
      .clearFor = 5min,
      .match = {},
      .closeWait = CloseWaitRule{.groupBy = GroupBy::Process,
                                 .minSockets = 10,
                                 .minAge = 5min,
                                 .growth = 50,
                                 .growthWindow = 10min},
      .timeWait = {},
  });
  c.rules.push_back(Rule{
      .name = "ephemeral-port-exhaustion",
      .type = RuleType::TimeWait,
      .severity = Severity::Critical,
      .forDuration = 0s,
      .clearFor = 2min,
      .match = {},
      .closeWait = {},
      .timeWait = TimeWaitRule{.portUsageRatio = 0.8,
                               .minSockets = std::nullopt,
                               .ratePerSecond = std::nullopt,
                               .timeWaitOverflow = true},
  });
  return c;
}

std::string Config::summary() const {
  std::string out = "poll every " + formatDuration(pollInterval) + ", listen on " + listen + ", " +
                    (namespaces == NamespaceSelection::All ? "all namespaces" : "host namespace") +
                    ", " + std::to_string(rules.size()) + (rules.size() == 1 ? " rule" : " rules");
  for (std::size_t i = 0; i < rules.size(); ++i) {
    out += i == 0 ? ": " : ", ";
    out += rules[i].name + " (" + std::string(ruleTypeName(rules[i].type)) + ")";
  }
  // Said only when set, so that the summary of an unprotected daemon stays as it was.
  if (web.tls) out += "; TLS (" + std::string(tlsVersionName(web.tls->minVersion)) + "+)";
  if (!web.basicAuthUsers.empty()) {
    out += std::string(web.tls ? ", " : "; ") + "basic auth (" +
           std::to_string(web.basicAuthUsers.size()) +
           (web.basicAuthUsers.size() == 1 ? " user)" : " users)");
  }
  return out;
}

}  // namespace waitwatch
