// SPDX-License-Identifier: Apache-2.0
#include "service/service_config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "service/state_store.hpp"
#include "support/source_files.hpp"

namespace waitwatch {
namespace {

using testing::kConfigDir;
using testing::readFile;

// The schema must list exactly the keys the validators accept (the core's and the web
// section's), object by object.
TEST(ServiceConfig, SchemaListsExactlyTheValidatorsKeys) {
  const auto schema = nlohmann::json::parse(readFile(kConfigDir + "/waitwatch.schema.json"));
  EXPECT_EQ(schema.at("$schema"), "https://json-schema.org/draft/2020-12/schema");
  const auto& defs = schema.at("$defs");
  const std::map<std::string, const nlohmann::json*> objects = {
      {"", &schema},
      {"metrics", &schema.at("properties").at("metrics")},
      {"alerts", &schema.at("properties").at("alerts")},
      {"forecast", &schema.at("properties").at("forecast")},
      {"containers", &schema.at("properties").at("containers")},
      {"rule(close_wait)", &defs.at("closeWaitRule")},
      {"rule(time_wait)", &defs.at("timeWaitRule")},
      {"match", &defs.at("match")},
      {"selector", &defs.at("selector")},
      {"web", &schema.at("properties").at("web")},
      {"web.tls_server_config",
       &schema.at("properties").at("web").at("properties").at("tls_server_config")},
      {"state", &schema.at("properties").at("state")},
  };
  const auto sets = serviceConfigKeySets();
  ASSERT_EQ(sets.size(), objects.size());
  for (const ConfigKeySet& set : sets) {
    SCOPED_TRACE(std::string(set.object));
    const auto it = objects.find(std::string(set.object));
    ASSERT_NE(it, objects.end());
    const nlohmann::json& obj = *it->second;
    EXPECT_EQ(obj.at("additionalProperties"), false);
    std::set<std::string> schemaKeys;
    for (const auto& [key, value] : obj.at("properties").items())
      schemaKeys.insert(key);
    const std::set<std::string> validatorKeys(set.keys.begin(), set.keys.end());
    EXPECT_EQ(schemaKeys, validatorKeys);
  }
}

struct BadConfig {
  const char* json;
  const char* error;
};

const BadConfig kBadConfigs[] = {
    {R"({"colour": "red"})",
     R"(colour: unknown key (expected one of: $schema, poll_interval, listen, namespaces, metrics, alerts, forecast, containers, rules, web, state))"},
    // state: where the daemon keeps what survives a restart.
    {R"({"state": {"directory": "var/lib/waitwatch"}})",
     R"(state.directory: "var/lib/waitwatch" is not an absolute path)"},
    {R"({"state": {"save_interval": "100ms"}})",
     R"(state.save_interval: "100ms" is out of range, expected "1s" to "1h")"},
    {R"({"state": {"save_interval": "2h"}})",
     R"(state.save_interval: "2h" is out of range, expected "1s" to "1h")"},
    {R"({"state": {"dir": "/x"}})",
     R"(state.dir: unknown key (expected one of: directory, save_interval))"},
    // web: names are exporter-toolkit's; values are checked for form (files are the daemon's).
    {R"({"web": []})", R"(web: expected an object, got an array)"},
    {R"({"web": {"tls_sever_config": {}}})",
     R"(web.tls_sever_config: unknown key, did you mean "tls_server_config"?)"},
    {R"({"web": {"http_server_config": {"http2": false}}})",
     R"(web.http_server_config: an exporter-toolkit key waitwatchd does not support (it reads tls_server_config, basic_auth_users))"},
    {R"({"web": {"tls_server_config": {"cert_file": "/a.crt"}}})",
     R"(web.tls_server_config: cert_file and key_file go together: key_file missing)"},
    {R"({"web": {"tls_server_config": {"key_file": "/a.key"}}})",
     R"(web.tls_server_config: cert_file and key_file go together: cert_file missing)"},
    {R"({"web": {"tls_server_config": {}}})",
     R"(web.tls_server_config: cert_file and key_file go together: both are missing)"},
    {R"({"web": {"tls_server_config": {"cert_file": "a.crt", "key_file": "/a.key"}}})",
     R"(web.tls_server_config.cert_file: "a.crt" is not an absolute path, expected e.g. "/etc/waitwatch/tls.crt")"},
    {R"({"web": {"tls_server_config": {"cert_file": "/a.crt", "key_file": 5}}})",
     R"(web.tls_server_config.key_file: expected a string, got number 5)"},
    {R"({"web": {"tls_server_config": {"cert_file": "/a", "key_file": "/b", "min_version": "TLS11"}}})",
     R"(web.tls_server_config.min_version: "TLS11" is not offered (deprecated by RFC 8996), expected "TLS12" or "TLS13")"},
    {R"({"web": {"tls_server_config": {"cert_file": "/a", "key_file": "/b", "min_version": "1.3"}}})",
     R"(web.tls_server_config.min_version: "1.3" is not a TLS version, expected "TLS12" or "TLS13")"},
    {R"({"web": {"tls_server_config": {"cert_file": "/a", "key_file": "/b", "client_ca_file": "/c"}}})",
     R"(web.tls_server_config.client_ca_file: an exporter-toolkit key waitwatchd does not support (it reads cert_file, key_file, min_version))"},
    {R"({"web": {"basic_auth_users": {}}})",
     R"(web.basic_auth_users: no users: remove the key to serve without authentication)"},
    {R"({"web": {"basic_auth_users": {"alice": "hunter2"}}})",
     R"(web.basic_auth_users.alice: not a bcrypt hash (expected "$2y$10$" and 53 more characters, as `htpasswd -nBC 10 alice` prints after the colon); the value is not shown)"},
    {R"({"web": {"basic_auth_users": {"bob": "$1$abcdefgh$0123456789012345678901"}}})",
     R"(web.basic_auth_users.bob: not a bcrypt hash (expected "$2y$10$" and 53 more characters, as `htpasswd -nBC 10 bob` prints after the colon); the value is not shown)"},
    {R"({"web": {"basic_auth_users": {"bob": 123456}}})",
     R"(web.basic_auth_users.bob: expected a bcrypt hash string, got a number)"},
    {R"({"web": {"basic_auth_users": {"bob": "$2b$03$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK"}}})",
     R"(web.basic_auth_users.bob: bcrypt cost 3 is out of range, expected 4 to 16 (each step doubles the time of a login; 10 takes ~70 ms))"},
    {R"({"web": {"basic_auth_users": {"a:b": "$2b$04$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK"}}})",
     R"(web.basic_auth_users.a:b: not a valid user name, expected 1-64 characters without ':' or control characters)"},
};

// Each bad web section with the exact error an operator sees, named like the core's.
TEST(ServiceConfig, BadWebSectionsAreRejectedWithPathAndReason) {
  for (const BadConfig& bad : kBadConfigs) {
    auto c = compileServiceConfig(bad.json, "/etc/waitwatch/waitwatch.json");
    ASSERT_FALSE(c) << bad.json;
    EXPECT_EQ(c.error().message, std::string("/etc/waitwatch/waitwatch.json: ") + bad.error)
        << bad.json;
  }
}

// The web section is read after the rest: an error in the core part wins, as before, and a
// file without "web" compiles to what the core alone makes of it.
TEST(ServiceConfig, TheCorePartIsTheCoresCompile) {
  const char* bad = R"({"web": {"tls_server_config": {}}, "poll_interval": "1h"})";
  auto c = compileServiceConfig(bad, "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message.rfind("poll_interval: ", 0), 0u) << c.error().message;

  const char* good = R"({"poll_interval": "2s", "rules": []})";
  auto service = compileServiceConfig(good, "");
  auto core = compileConfig(good, "");
  ASSERT_TRUE(service && core);
  EXPECT_EQ(static_cast<const Config&>(*service), *core);
  EXPECT_EQ(service->web, WebConfig{});
  // The core alone does not know the daemon's section.
  auto coreWithWeb = compileConfig(R"({"web": {}})", "");
  ASSERT_FALSE(coreWithWeb);
  EXPECT_EQ(coreWithWeb.error().message.rfind("web: unknown key", 0), 0u)
      << coreWithWeb.error().message;
}

// The state section, and where the state goes with and without it.
TEST(ServiceConfig, StateSection) {
  auto c =
      compileServiceConfig(R"({"state": {"directory": "/srv/ww", "save_interval": "5m"}})", "");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->state, (StateConfig{"/srv/ww", Duration(300'000)}));
  EXPECT_EQ(defaultServiceConfig().state, (StateConfig{"", Duration(60'000)}));

  // The configuration first, then $STATE_DIRECTORY (the first of several, as systemd lists
  // them), else none.
  EXPECT_EQ(stateLocation("/srv/ww", "/var/lib/waitwatch")->file(), "/srv/ww/waitwatchd.state");
  EXPECT_EQ(stateLocation("/srv/ww", "/var/lib/waitwatch")->origin, "state.directory");
  const auto env = stateLocation("", "/var/lib/waitwatch:/var/lib/other");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->directory, "/var/lib/waitwatch");
  EXPECT_EQ(env->origin, "$STATE_DIRECTORY");
  EXPECT_FALSE(stateLocation("", nullptr));
  EXPECT_FALSE(stateLocation("", ""));
  EXPECT_FALSE(stateLocation("", "relative"));
}

// The exporter-toolkit names, parsed; the summary says that the endpoints are protected.
TEST(ServiceConfig, WebSection) {
  constexpr const char* kHash = "$2b$04$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK";
  auto c = compileServiceConfig(std::string(R"({"web": {
    "tls_server_config": {"cert_file": "/etc/waitwatch/tls.crt",
                          "key_file": "/etc/waitwatch/tls.key", "min_version": "TLS13"},
    "basic_auth_users": {"prometheus": ")") +
                                    kHash + R"(", "alice": ")" + kHash + R"("}}})",
                                "test.json");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->web.tls);
  EXPECT_EQ(c->web.tls->certFile, "/etc/waitwatch/tls.crt");
  EXPECT_EQ(c->web.tls->keyFile, "/etc/waitwatch/tls.key");
  EXPECT_EQ(c->web.tls->minVersion, TlsVersion::Tls13);
  ASSERT_EQ(c->web.basicAuthUsers.size(), 2u);
  EXPECT_EQ(c->web.basicAuthUsers[0], (BasicAuthUser{.name = "alice", .bcryptHash = kHash}));
  EXPECT_EQ(c->web.basicAuthUsers[1].name, "prometheus");
  EXPECT_EQ(c->summary(),
            "poll every 5s, listen on 0.0.0.0:9929, host namespace, 2 rules: close-wait-leak "
            "(close_wait), ephemeral-port-exhaustion (time_wait); TLS (TLS13+), basic auth (2 "
            "users)");
  // TLS 1.2 is the default minimum; each half works alone; $2a$ and $2y$ are bcrypt too.
  auto tlsOnly = compileServiceConfig(
      R"({"web": {"tls_server_config": {"cert_file": "/c", "key_file": "/k"}}})", "");
  ASSERT_TRUE(tlsOnly) << tlsOnly.error().message;
  EXPECT_EQ(tlsOnly->web.tls->minVersion, TlsVersion::Tls12);
  EXPECT_TRUE(tlsOnly->web.basicAuthUsers.empty());
  for (const char* prefix : {"$2a$", "$2y$"}) {
    std::string hash = kHash;
    hash.replace(0, 4, prefix);
    auto authOnly =
        compileServiceConfig(R"({"web": {"basic_auth_users": {"u": ")" + hash + R"("}}})", "");
    ASSERT_TRUE(authOnly) << authOnly.error().message;
    EXPECT_FALSE(authOnly->web.tls);
    EXPECT_EQ(authOnly->web.basicAuthUsers.at(0).bcryptHash, hash);
    EXPECT_NE(authOnly->summary().find("; basic auth (1 user)"), std::string::npos);
  }
  // Off by default.
  EXPECT_EQ(defaultServiceConfig().web, WebConfig{});
}

// A plain password given where the hash belongs must not be echoed into the journal.
TEST(ServiceConfig, WebErrorsNeverQuoteThePasswordValue) {
  auto c = compileServiceConfig(
      R"({"web": {"basic_auth_users": {"alice": "correct horse battery"}}})", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message.find("horse"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace waitwatch
