// SPDX-License-Identifier: Apache-2.0
#include "service/service_config.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

#include "rules/config_json.hpp"
#include "rules/config_reader.hpp"

namespace waitwatch {
namespace {

using config_json::describe;
using config_json::join;
using config_json::jsonQuote;
using config_json::kMaxQuotedKey;
using config_json::shorten;
using json = nlohmann::json;

constexpr std::array<std::string_view, 2> kWebKeys = {"tls_server_config", "basic_auth_users"};
constexpr std::array<std::string_view, 2> kStateKeys = {"directory", "save_interval"};
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

class DaemonSectionReader {
 public:
  explicit DaemonSectionReader(ConfigReader& in) : in_(in) {}

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

  bool state(const json& v, StateConfig& out) {
    if (!object(v, "state") || !knownKeys(v, "state", kStateKeys)) return false;
    if (v.contains("directory")) {
      if (!string(v["directory"], "state.directory", out.directory)) return false;
      if (!out.directory.starts_with('/')) {
        return fail("state.directory",
                    jsonQuote(shorten(out.directory, kMaxQuotedKey)) + " is not an absolute path");
      }
    }
    if (v.contains("save_interval")) {
      if (!in_.duration(v["save_interval"], "state.save_interval", out.saveInterval)) return false;
      if (out.saveInterval < Duration(1'000) || out.saveInterval > Duration(3'600'000)) {
        return fail("state.save_interval", jsonQuote(formatDuration(out.saveInterval)) +
                                               " is out of range, expected \"1s\" to \"1h\"");
      }
    }
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

 private:
  bool fail(const std::string& path, const std::string& reason) { return in_.fail(path, reason); }
  static std::string child(const std::string& path, std::string_view key) {
    return ConfigReader::child(path, key);
  }
  bool object(const json& v, const std::string& path) { return in_.object(v, path); }
  bool string(const json& v, const std::string& path, std::string& out) {
    return in_.string(v, path, out);
  }
  bool knownKeys(const json& obj, const std::string& path,
                 std::span<const std::string_view> allowed) {
    return in_.knownKeys(obj, path, allowed);
  }

  ConfigReader& in_;
};

}  // namespace

std::string_view tlsVersionName(TlsVersion v) {
  return v == TlsVersion::Tls13 ? "TLS13" : "TLS12";
}

Result<ServiceConfig> compileServiceConfig(std::string_view jsonText, std::string_view origin) {
  WebConfig web;
  StateConfig state;
  auto readWeb = [&](ConfigReader& in, const json& v) {
    return DaemonSectionReader(in).web(v, web);
  };
  auto readState = [&](ConfigReader& in, const json& v) {
    return DaemonSectionReader(in).state(v, state);
  };
  const ConfigSection sections[] = {{"web", readWeb}, {"state", readState}};
  auto core = compileConfig(jsonText, origin, sections);
  if (!core) return core.error();
  ServiceConfig out;
  static_cast<Config&>(out) = std::move(*core);
  out.web = std::move(web);
  out.state = std::move(state);
  return out;
}

ServiceConfig defaultServiceConfig() {
  ServiceConfig out;
  static_cast<Config&>(out) = defaultConfig();
  return out;
}

std::string ServiceConfig::summary() const {
  std::string out = Config::summary();
  // Said only when set, so that the summary of an unprotected daemon stays as it was.
  if (web.tls) out += "; TLS (" + std::string(tlsVersionName(web.tls->minVersion)) + "+)";
  if (!web.basicAuthUsers.empty()) {
    out += std::string(web.tls ? ", " : "; ") + "basic auth (" +
           std::to_string(web.basicAuthUsers.size()) +
           (web.basicAuthUsers.size() == 1 ? " user)" : " users)");
  }
  return out;
}

std::vector<ConfigKeySet> serviceConfigKeySets() {
  std::vector<ConfigKeySet> sets = configKeySets();
  for (ConfigKeySet& set : sets) {
    if (set.object.empty()) {
      set.keys.emplace_back("web");
      set.keys.emplace_back("state");
    }
  }
  sets.push_back({"web", {kWebKeys.begin(), kWebKeys.end()}});
  sets.push_back({"state", {kStateKeys.begin(), kStateKeys.end()}});
  sets.push_back({"web.tls_server_config", {kTlsServerKeys.begin(), kTlsServerKeys.end()}});
  return sets;
}

}  // namespace waitwatch
