// SPDX-License-Identifier: Apache-2.0
#include "rules/config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "rules/config_json.hpp"
#include "rules/config_reader.hpp"
#include "rules/rule_evaluator.hpp"

namespace waitwatch {
namespace {

using config_json::describe;
using config_json::jsonQuote;
using config_json::printableMessage;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr Duration kMinPollInterval{100};
// TIME_WAIT sockets live exactly 60 s on Linux: a longer interval would let some be born and
// freed between two polls, and the creation rate would undercount them.
constexpr Duration kMaxPollInterval{60'000};
constexpr std::size_t kMaxRuleNameLength = 64;

// The keys each object accepts: the validator and the JSON Schema test share these.
constexpr std::array<std::string_view, 9> kTopLevelKeys = {"$schema",    "poll_interval", "listen",
                                                           "namespaces", "metrics",       "alerts",
                                                           "forecast",   "containers",    "rules"};
constexpr std::array<std::string_view, 2> kContainersKeys = {"names", "root"};
constexpr std::array<std::string_view, 2> kMetricsKeys = {"include_pid", "max_groups"};
constexpr std::array<std::string_view, 1> kAlertsKeys = {"reminder_interval"};
constexpr std::array<std::string_view, 1> kForecastKeys = {"window"};

constexpr std::array<std::string_view, 2> kMatchKeys = {"include", "exclude"};
constexpr std::array<std::string_view, 10> kSelectorKeys = {
    "comm",      "unit", "container",  "container_name", "pod",
    "namespace", "user", "local_port", "destination",    "destination_port"};

// A rule object's keys: the common ones, then its type's.
std::vector<std::string_view> ruleKeys(const RuleTypeDefinition& type) {
  std::vector<std::string_view> keys(kCommonRuleKeys.begin(), kCommonRuleKeys.end());
  keys.insert(keys.end(), type.keys.begin(), type.keys.end());
  return keys;
}

// The second step: the tree (config_json.hpp) into Config. The first error wins; every error
// names its path.

class Validator : public ConfigReader {
 public:
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
      // (uid_t)-1 is no user: the kernel's "unchanged" in setresuid().
      if (const auto uid = wholeNumber(item); uid && *uid < 0xFFFFFFFFu) {
        out.push_back(std::to_string(*uid));
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
    if (const auto n = wholeNumber(item); n && *n <= 65535) {
      const auto port = static_cast<std::uint16_t>(*n);
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
      if (key == "container_name") good = globs(value, p, out.containerName);
      if (key == "pod") good = globs(value, p, out.pod);
      if (key == "namespace") good = globs(value, p, out.podNamespace);
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
    std::string typeName;
    if (!string(v["type"], child(path, "type"), typeName)) return false;
    const std::optional<RuleType> ruleType = parseRuleType(typeName);
    if (!ruleType) {
      return fail(child(path, "type"),
                  jsonQuote(typeName) + " is not a rule type, expected " + ruleTypeNames());
    }
    out.type = *ruleType;
    const RuleTypeDefinition& type = *ruleTypes()[static_cast<std::size_t>(out.type)];
    const std::vector<std::string_view> keys = ruleKeys(type);
    // A key of another rule type is a likely mix-up: say so rather than "unknown".
    for (const auto& [key, value] : v.items()) {
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
      for (const RuleTypeDefinition* other : ruleTypes()) {
        if (std::find(other->keys.begin(), other->keys.end(), key) == other->keys.end()) continue;
        return fail(child(path, key), "not a key of " + typeName + " rules (only " +
                                          std::string(ruleTypeName(other->type)) +
                                          " rules have it)");
      }
    }
    if (!knownKeys(v, path, keys, "a " + typeName + " rule")) return false;

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
    return type.read(*this, v, path, pollInterval, out);
  }

  bool config(const json& root, std::span<const ConfigSection> sections, Config& out) {
    if (!root.is_object()) {
      return fail("", "expected a JSON object at the top level, got " + describe(root));
    }
    std::vector<std::string_view> keys(kTopLevelKeys.begin(), kTopLevelKeys.end());
    for (const ConfigSection& section : sections)
      keys.push_back(section.key);
    if (!knownKeys(root, "", keys)) return false;
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
    if (root.contains("forecast")) {
      const json& f = root["forecast"];
      if (!object(f, "forecast") || !knownKeys(f, "forecast", kForecastKeys)) return false;
      if (f.contains("window")) {
        Duration& w = out.forecast.window;
        if (!duration(f["window"], "forecast.window", w)) return false;
        // 5 samples over a quarter of it, with room for late polls.
        if (w < 6 * out.pollInterval) {
          return fail("forecast.window",
                      jsonQuote(formatDuration(w)) + " is too short, expected at least 6 " +
                          "poll intervals (" + jsonQuote(formatDuration(6 * out.pollInterval)) +
                          "): a forecast needs 5 samples");
        }
        if (w > Duration(86'400'000)) {
          return fail("forecast.window",
                      jsonQuote(formatDuration(w)) + " is too long, expected at most \"1d\"");
        }
      }
    }
    if (root.contains("containers")) {
      const json& c = root["containers"];
      if (!object(c, "containers") || !knownKeys(c, "containers", kContainersKeys)) return false;
      if (c.contains("names") && !boolean(c["names"], "containers.names", out.containers.names)) {
        return false;
      }
      if (c.contains("root")) {
        if (!string(c["root"], "containers.root", out.containers.root)) return false;
        if (!out.containers.root.starts_with('/')) {
          return fail("containers.root", jsonQuote(config_json::shorten(out.containers.root, 64)) +
                                             " is not an absolute path");
        }
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
    for (const ConfigSection& section : sections) {
      const std::string key(section.key);
      if (root.contains(key) && !section.read(*this, root[key])) return false;
    }
    return true;
  }
};

}  // namespace

std::vector<ConfigKeySet> configKeySets() {
  auto set = [](std::string_view object, const auto& keys) {
    return ConfigKeySet{object, std::vector<std::string_view>(keys.begin(), keys.end())};
  };
  return {set("", kTopLevelKeys),
          set("metrics", kMetricsKeys),
          set("alerts", kAlertsKeys),
          set("forecast", kForecastKeys),
          set("containers", kContainersKeys),
          set("match", kMatchKeys),
          set("selector", kSelectorKeys),
          set("rule(close_wait)", ruleKeys(closeWaitRuleType())),
          set("rule(time_wait)", ruleKeys(timeWaitRuleType()))};
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

Result<Config> compileConfig(std::string_view jsonText, std::string_view origin,
                             std::span<const ConfigSection> sections) {
  auto withOrigin = [&](const std::string& message) {
    return Error{0,
                 printableMessage(origin.empty() ? message : std::string(origin) + ": " + message)};
  };
  auto root = config_json::parse(jsonText);
  if (!root) return withOrigin(root.error().message);
  Config config = defaultConfig();
  Validator v;
  if (!v.config(*root, sections, config)) return withOrigin(v.error());
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
                                 .growthWindow = 10min,
                                 .fdExhaustionWithin = 1h},
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
                               .timeWaitOverflow = true,
                               .groupBy = std::nullopt},
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
  return out;
}

}  // namespace waitwatch
