// SPDX-License-Identifier: Apache-2.0
#pragma once
// waitwatchd's configuration: the core's (rules/config.hpp: polling, metrics, alerts, rules)
// and the "web" section, which only the daemon reads. Both come from one file and one compile,
// so their errors read alike.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "rules/config.hpp"

namespace waitwatch {

// Protection of /metrics and /api/v1/*, named as in the Prometheus exporter-toolkit's web
// configuration (tls_server_config, basic_auth_users) because operators already know it. Only
// the names and values are checked when the file compiles; loadTlsCredentials (tls.hpp) reads
// and checks the certificate and key.
enum class TlsVersion : std::uint8_t { Tls12, Tls13 };
std::string_view tlsVersionName(TlsVersion v);  // "TLS12", "TLS13"

struct TlsServerConfig {
  std::string certFile;  // absolute path of a PEM certificate (chain)
  std::string keyFile;   // absolute path of its PEM private key, unencrypted
  TlsVersion minVersion = TlsVersion::Tls12;
  bool operator==(const TlsServerConfig&) const = default;
};

struct BasicAuthUser {
  std::string name;
  std::string bcryptHash;  // "$2y$10$..." (as htpasswd -nB writes it), checked for its form
  bool operator==(const BasicAuthUser&) const = default;
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;         // unset: plain HTTP
  std::vector<BasicAuthUser> basicAuthUsers;  // sorted by name; empty: no authentication
  bool operator==(const WebConfig&) const = default;
};

// Where waitwatchd keeps what survives a restart (socket ages, alert state; state_store.hpp).
struct StateConfig {
  std::string directory;          // absolute; empty: $STATE_DIRECTORY, which systemd sets
  Duration saveInterval{60'000};  // also saved at every clean stop
  bool operator==(const StateConfig&) const = default;
};

struct ServiceConfig : Config {
  WebConfig web;
  StateConfig state;
  bool operator==(const ServiceConfig&) const = default;

  // Config::summary(), and "; TLS (TLS13+), basic auth (2 users)" when they are on.
  [[nodiscard]] std::string summary() const;
};

// compileConfig with the web section; `origin` prefixes every error as there.
Result<ServiceConfig> compileServiceConfig(std::string_view jsonText, std::string_view origin);
// The embedded defaults: defaultConfig(), served without TLS or authentication.
ServiceConfig defaultServiceConfig();

// The keys of every object of waitwatchd's file: configKeySets() with "web" at the top level,
// and the objects "web" and "web.tls_server_config".
std::vector<ConfigKeySet> serviceConfigKeySets();

}  // namespace waitwatch
