// SPDX-License-Identifier: Apache-2.0
#include "rules/config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "config/default_config.hpp"
#include "support/source_files.hpp"

namespace waitwatch {
namespace {
using namespace std::chrono_literals;

using testing::kConfigDir;
using testing::readFile;

TEST(Config, EmbeddedDefaultsAreTheShippedFileAndEqualDefaultConfig) {
  EXPECT_EQ(embeddedDefaultConfig(), readFile(kConfigDir + "/waitwatch.json"));
  auto compiled = compileConfig(embeddedDefaultConfig(), kEmbeddedConfigOrigin);
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_EQ(*compiled, defaultConfig());
  // Sensible defaults, stated once more so a change to both is a conscious one.
  const Config& c = *compiled;
  EXPECT_EQ(c.pollInterval, 5s);
  EXPECT_EQ(c.listen, "0.0.0.0:9929");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].type, RuleType::CloseWait);
  EXPECT_EQ(c.rules[0].closeWait.minSockets, 10u);
  EXPECT_EQ(c.rules[0].closeWait.minAge, 5min);
  EXPECT_EQ(c.rules[0].closeWait.growth, 50u);
  EXPECT_EQ(c.rules[1].type, RuleType::TimeWait);
  EXPECT_EQ(c.rules[1].timeWait.portUsageRatio, 0.8);
  EXPECT_TRUE(c.rules[1].timeWait.timeWaitOverflow);
}

TEST(Config, EmptyObjectGivesTheDefaults) {
  auto c = compileConfig("{}", "");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(*c, defaultConfig());
  auto noRules = compileConfig(R"({"rules": []})", "");
  ASSERT_TRUE(noRules);
  EXPECT_TRUE(noRules->rules.empty());
}

TEST(Config, EveryKeyParses) {
  auto c = compileConfig(R"({
    // comments are fine
    "$schema": "x",
    "poll_interval": "500ms",
    "listen": "[::1]:19929",
    "namespaces": "all",
    "metrics": {"include_pid": true, "max_groups": 7},
    "alerts": {"reminder_interval": "0s"},
    "containers": {"names": false, "root": "/proc/1/root"},
    "rules": [
      {"name": "cw", "type": "close_wait", "severity": "critical", "for": "30s",
       "clear_for": "1m", "group_by": "unit", "min_sockets": 3, "min_age": "0s",
       "growth": 4, "growth_window": "2m",
       "match": {"include": {"comm": ["ngin*", "php-fpm?"], "unit": "*.service",
                             "container": "docker:*", "container_name": "api",
                             "pod": ["checkout-*"], "namespace": "pay*",
                             "user": ["www-data", 1000],
                             "local_port": [80, "8000-8099", "well-known"],
                             "destination": ["10.0.0.0/8", "fd00::1"],
                             "destination_port": [5432, "6379-6380"]},
                 "exclude": {"comm": "sshd"}}},
      /* a block comment */
      {"name": "tw", "type": "time_wait", "port_usage_ratio": 1, "min_sockets": 100000,
       "rate_per_second": 2.5, "time_wait_overflow": false}
    ]
  })",
                         "test.json");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->pollInterval, 500ms);
  EXPECT_EQ(c->listen, "[::1]:19929");
  EXPECT_EQ(c->namespaces, NamespaceSelection::All);
  EXPECT_EQ(c->metrics, (MetricsOptions{.includePid = true, .maxGroups = 7}));
  EXPECT_EQ(c->alerts.reminderInterval, 0s);
  EXPECT_EQ(c->containers, (ContainerOptions{.names = false, .root = "/proc/1/root"}));
  ASSERT_EQ(c->rules.size(), 2u);
  const Rule& cw = c->rules[0];
  EXPECT_EQ(cw.severity, Severity::Critical);
  EXPECT_EQ(cw.forDuration, 30s);
  EXPECT_EQ(cw.clearFor, 1min);
  EXPECT_EQ(cw.closeWait.groupBy, GroupBy::Unit);
  EXPECT_EQ(cw.closeWait.minSockets, 3u);
  EXPECT_EQ(cw.closeWait.minAge, 0s);
  EXPECT_EQ(cw.closeWait.growth, 4u);
  EXPECT_EQ(cw.closeWait.growthWindow, 2min);
  const Selector& in = cw.match.include;
  ASSERT_EQ(in.comm.size(), 2u);
  EXPECT_EQ(in.comm[1].pattern(), "php-fpm?");
  ASSERT_EQ(in.unit.size(), 1u);
  ASSERT_EQ(in.containerName.size(), 1u);
  EXPECT_EQ(in.pod.at(0).pattern(), "checkout-*");
  EXPECT_EQ(in.podNamespace.at(0).pattern(), "pay*");
  EXPECT_EQ(in.user, (std::vector<std::string>{"www-data", "1000"}));
  ASSERT_EQ(in.localPort.size(), 3u);
  EXPECT_EQ(in.localPort[0].range, (PortRange{80, 80}));
  EXPECT_EQ(in.localPort[1].range, (PortRange{8000, 8099}));
  EXPECT_EQ(in.localPort[2].portClass, PortClass::WellKnown);
  ASSERT_EQ(in.destination.size(), 2u);
  EXPECT_EQ(in.destination[0].toString(), "10.0.0.0/8");
  EXPECT_EQ(in.destinationPort, (std::vector<PortRange>{{5432, 5432}, {6379, 6380}}));
  ASSERT_EQ(cw.match.exclude.comm.size(), 1u);
  const Rule& tw = c->rules[1];
  EXPECT_EQ(tw.type, RuleType::TimeWait);
  EXPECT_EQ(tw.severity, Severity::Warning);
  EXPECT_EQ(tw.timeWait.portUsageRatio, 1.0);
  EXPECT_EQ(tw.timeWait.minSockets, 100000u);
  EXPECT_EQ(tw.timeWait.ratePerSecond, 2.5);
  EXPECT_FALSE(tw.timeWait.timeWaitOverflow);
  EXPECT_EQ(c->summary(),
            "poll every 500ms, listen on [::1]:19929, all namespaces, 2 rules: cw (close_wait), "
            "tw (time_wait)");
}

struct BadConfig {
  const char* json;
  const char* error;
};

// Each bad configuration with the exact error an operator sees.
const BadConfig kBadConfigs[] = {
    {R"({"rules": [{"name": "a", "type": "close_wait"},
                  {"name": "b", "type": "close_wait", "for": "5 minutes"}]})",
     R"(rules[1].for: "5 minutes" is not a duration, expected e.g. "5m")"},
    {R"({"poll_interval": "5 minutes"})",
     R"(poll_interval: "5 minutes" is not a duration, expected e.g. "5m")"},
    {R"({"poll_interval": "0s"})",
     R"(poll_interval: "0s" is too short, expected at least "100ms")"},
    {R"({"poll_interval": "2m"})",
     R"(poll_interval: "2m" is too long, expected at most "1m" (TIME_WAIT sockets live 60s; a longer interval misses some))"},
    {R"({"poll_interval": 5})",
     R"(poll_interval: expected a duration such as "30s" or "5m", got number 5)"},
    {R"({"pol_interval": "5s"})", R"(pol_interval: unknown key, did you mean "poll_interval"?)"},
    {R"({"colour": "red"})",
     R"(colour: unknown key (expected one of: $schema, poll_interval, listen, namespaces, metrics, alerts, forecast, containers, rules))"},
    {R"({"listen": "localhost:9929"})",
     R"(listen: "localhost:9929" is not an address and port, expected e.g. "0.0.0.0:9929" or "[::]:9929")"},
    {R"({"listen": "0.0.0.0:0"})",
     R"(listen: "0.0.0.0:0" is not an address and port, expected e.g. "0.0.0.0:9929" or "[::]:9929")"},
    {R"({"namespaces": "some"})", R"(namespaces: "some" is not a scope, expected "host" or "all")"},
    {R"({"metrics": {"include_pid": "yes"}})",
     R"(metrics.include_pid: expected true or false, got string "yes")"},
    {R"({"metrics": {"max_groups": 0}})",
     R"(metrics.max_groups: 0 is too small, expected at least 1)"},
    {R"({"metrics": {"max_groups": -5}})",
     R"(metrics.max_groups: -5 is negative, expected a whole number of at least 1)"},
    {R"({"metrics": []})", R"(metrics: expected an object, got an array)"},
    {R"({"alerts": {"reminder": "1h"}})",
     R"(alerts.reminder: unknown key (expected one of: reminder_interval))"},
    {R"({"rules": {}})", R"(rules: expected an array of rules, got an object)"},
    {R"({"rules": [5]})", R"(rules[0]: expected an object, got number 5)"},
    {R"({"rules": [{"type": "close_wait"}]})", R"(rules[0]: missing key "name")"},
    {R"({"rules": [{"name": "x", "type": "closewait"}]})",
     R"(rules[0].type: "closewait" is not a rule type, expected "close_wait" or "time_wait")"},
    {R"({"rules": [{"name": "my rule", "type": "close_wait"}]})",
     R"(rules[0].name: "my rule" is not a valid rule name, expected 1-64 characters of letters, digits, '-', '_' and '.')"},
    {R"({"rules": [{"name": "x", "type": "close_wait"},
                  {"name": "x", "type": "time_wait", "min_sockets": 5}]})",
     R"(rules[1].name: "x" is already the name of rules[0])"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": -3}]})",
     R"(rules[0].min_sockets: -3 is negative, expected a whole number of at least 1)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 0}]})",
     R"(rules[0].min_sockets: 0 is too small, expected at least 1)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 2.5}]})",
     R"(rules[0].min_sockets: expected a whole number, got number 2.5)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": -1e3}]})",
     R"(rules[0].min_sockets: -1000.0 is negative, expected a whole number of at least 1)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 1e300}]})",
     R"(rules[0].min_sockets: 1e+300 is too large to be exact, expected a whole number below 2^53)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"local_port": 80.5}}}]})",
     R"(rules[0].match.include.local_port: 80.5 is not a port, expected a port 0-65535, a range such as "8000-8099", or "well-known", "registered", "ephemeral")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"user": 1e10}}}]})",
     R"(rules[0].match.include.user: expected a user name or uid, got number 10000000000.0)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 1e309}]})",
     R"(rules[0].min_sockets: number overflow parsing '1e309')"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 3, "min_age": "0s"},
                   {"name": "y", "type": "time_wait", "port_usage_ratio": [1e999]}]})",
     R"(rules[1].port_usage_ratio[0]: number overflow parsing '1e999')"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_age": "-1s"}]})",
     R"(rules[0].min_age: "-1s" is not a duration, expected e.g. "5m")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "min_sockts": 3}]})",
     R"(rules[0].min_sockts: unknown key for a close_wait rule, did you mean "min_sockets"?)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "port_usage_ratio": 0.5}]})",
     R"(rules[0].port_usage_ratio: not a key of close_wait rules (only time_wait rules have it))"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "group_by": "node", "min_sockets": 1}]})",
     R"(rules[0].group_by: "node" is not a grouping, expected "destination", "process", "unit", "container" or "pod")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "rate_per_second": 5}]})",
     R"(rules[0].rate_per_second: not a key of close_wait rules (only time_wait rules have it))"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "group_by": "node"}]})",
     R"(rules[0].group_by: "node" is not a grouping, expected "process", "unit", "container" or "pod")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "severity": "high"}]})",
     R"(rules[0].severity: "high" is not a severity, expected "warning" or "critical")"},
    {R"({"forecast": {"window": "10s"}})",
     R"(forecast.window: "10s" is too short, expected at least 6 poll intervals ("30s"): a forecast needs 5 samples)"},
    {R"({"poll_interval": "1s", "forecast": {"window": "2d"}})",
     R"(forecast.window: "2d" is too long, expected at most "1d")"},
    {R"({"forecast": {"span": "10m"}})", R"(forecast.span: unknown key (expected one of: window))"},
    {R"({"containers": {"root": "host"}})", R"(containers.root: "host" is not an absolute path)"},
    {R"({"containers": {"names": "yes"}})",
     R"(containers.names: expected true or false, got string "yes")"},
    {R"({"containers": {"path": "/"}})",
     R"(containers.path: unknown key (expected one of: names, root))"},
    {R"({"rules": [{"name": "a", "type": "close_wait", "group_by": "namespace"}]})",
     R"(rules[0].group_by: "namespace" is not a grouping, expected "process", "unit", "container" or "pod")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "fd_exhaustion_within": "0s"}]})",
     R"(rules[0].fd_exhaustion_within: "0s" never fires, expected a duration such as "1h")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "fd_exhaustion_within": 60}]})",
     R"(rules[0].fd_exhaustion_within: expected a duration such as "30s" or "5m", got number 60)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "growth_window": "10m"}]})",
     R"(rules[0].growth_window: has no effect without "growth")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "growth": 5, "growth_window": "5s"}]})",
     R"(rules[0].growth_window: "5s" is too short, expected at least two poll intervals (10s))"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "port_usage_ratio": 1.5}]})",
     R"(rules[0].port_usage_ratio: 1.5 is not a ratio, expected a number above 0 and at most 1)"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "port_usage_ratio": 0}]})",
     R"(rules[0].port_usage_ratio: 0 is not a ratio, expected a number above 0 and at most 1)"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "port_usage_ratio": "80%"}]})",
     R"(rules[0].port_usage_ratio: expected a ratio between 0 and 1 such as 0.8, got string "80%")"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "rate_per_second": -1}]})",
     R"(rules[0].rate_per_second: -1 is not positive, expected a number above 0)"},
    {R"({"rules": [{"name": "x", "type": "time_wait", "time_wait_overflow": 1}]})",
     R"(rules[0].time_wait_overflow: expected true or false, got number 1)"},
    {R"({"rules": [{"name": "x", "type": "time_wait"}]})",
     R"(rules[0]: a time_wait rule needs at least one of port_usage_ratio, min_sockets, rate_per_second, time_wait_overflow)"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"include": {"comm": ["nginx", "ngin[x"]}}}]})",
     R"(rules[0].match.include.comm[1]: "ngin[x" is not a valid pattern: unterminated [)"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"exclude": {"comm": "[[:digit:]]*"}}}]})",
     R"(rules[0].match.exclude.comm: "[[:digit:]]*" is not a valid pattern: [: [. and [= (POSIX classes) are not supported; list the characters, e.g. [a-zA-Z], or escape the [)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"comm": []}}}]})",
     R"(rules[0].match.include.comm: an empty list matches nothing; remove the key to match everything)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"unit": ""}}}]})",
     R"(rules[0].match.include.unit: "" is not a valid pattern: an empty pattern matches nothing)"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"exclude": {"destination": "10.0.0.0/33"}}}]})",
     R"(rules[0].match.exclude.destination: "10.0.0.0/33" is not an address or CIDR, expected e.g. "10.0.0.0/8")"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"include": {"local_port": [80, 70000]}}}]})",
     R"(rules[0].match.include.local_port[1]: 70000 is not a port, expected a port 0-65535, a range such as "8000-8099", or "well-known", "registered", "ephemeral")"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"include": {"local_port": "privileged"}}}]})",
     R"(rules[0].match.include.local_port: "privileged" is not a port, expected a port 0-65535, a range such as "8000-8099", or "well-known", "registered", "ephemeral")"},
    {R"({"rules": [{"name": "x", "type": "close_wait",
                   "match": {"include": {"destination_port": "9000-8000"}}}]})",
     R"(rules[0].match.include.destination_port: "9000-8000" is not a port, expected a port 0-65535 or a range such as "8000-8099")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"user": [true]}}}]})",
     R"(rules[0].match.include.user[0]: expected a user name or uid, got true)"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"process": "x"}}}]})",
     R"(rules[0].match.include.process: unknown key (expected one of: comm, unit, container, container_name, pod, namespace, user, local_port, destination, destination_port))"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "match": {"only": {}}}]})",
     R"(rules[0].match.only: unknown key (expected one of: include, exclude))"},
    {R"({"listen": "0.0.0.0:1", "listen": "0.0.0.0:2"})", R"(duplicate key "listen")"},
    {R"({"rules": [{"name": "x", "type": "close_wait", "name": "y"}]})",
     R"(rules[0]: duplicate key "name")"},
    {R"({"listen": })",
     R"(line 1, column 12: syntax error while parsing value - unexpected '}'; expected '[', '{', or a literal)"},
    {R"([1, 2])", R"(expected a JSON object at the top level, got an array)"},
    {"",
     R"(line 1, column 1: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal)"},
};

TEST(Config, WholeNumbersWrittenAsFloatsAreCounts) {
  for (const char* n : {"1e3", "1000.0", "1E3", "10e2"}) {
    auto c = compileConfig(std::string(R"({"rules": [{"name": "x", "type": "close_wait",
        "min_sockets": )") + n +
                               "}]}",
                           "");
    ASSERT_TRUE(c) << n << ": " << c.error().message;
    EXPECT_EQ(c->rules[0].closeWait.minSockets, 1000u) << n;
  }
  // "-0" is a signed zero to the JSON parser, and still zero.
  auto zero =
      compileConfig(R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": -0}]})", "");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message, "rules[0].min_sockets: 0 is too small, expected at least 1");
  // Ports and uids are whole numbers too.
  auto c = compileConfig(R"({"rules": [{"name": "x", "type": "close_wait", "match": {"include":
      {"local_port": 8e1, "destination_port": 5.432e3, "user": 1e3}}}]})",
                         "");
  ASSERT_TRUE(c) << c.error().message;
  const Selector& include = c->rules[0].match.include;
  ASSERT_EQ(include.localPort.size(), 1u);
  EXPECT_EQ(include.localPort[0].range, (PortRange{80, 80}));
  EXPECT_EQ(include.destinationPort, (std::vector<PortRange>{{5432, 5432}}));
  EXPECT_EQ(include.user, std::vector<std::string>{"1000"});
}

TEST(Config, BadConfigurationsAreRejectedWithPathAndReason) {
  for (const BadConfig& bad : kBadConfigs) {
    auto c = compileConfig(bad.json, "/etc/waitwatch/waitwatch.json");
    ASSERT_FALSE(c) << bad.json;
    EXPECT_EQ(c.error().message, std::string("/etc/waitwatch/waitwatch.json: ") + bad.error)
        << bad.json;
  }
}

TEST(Config, ErrorsHaveNoPrefixWithoutOrigin) {
  auto c = compileConfig(R"({"namespaces": 1})", "");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "namespaces: expected a string, got number 1");
}

TEST(Config, ListenAddresses) {
  EXPECT_EQ(parseListenAddress("0.0.0.0:9929")->port, 9929);
  EXPECT_EQ(parseListenAddress("[::]:9929")->address.family, AddressFamily::V6);
  EXPECT_EQ(parseListenAddress("127.0.0.1:1")->address.toString(), "127.0.0.1");
  for (const char* bad : {"", "9929", ":9929", "0.0.0.0", "0.0.0.0:", "0.0.0.0:65536", "0.0.0.0:0",
                          "::1:9929", "[127.0.0.1]:80", "host:80", "0.0.0.0:80x", "[::1]:-1"}) {
    EXPECT_FALSE(parseListenAddress(bad)) << bad;
  }
}

TEST(Config, SummaryOfTheDefaults) {
  EXPECT_EQ(defaultConfig().summary(),
            "poll every 5s, listen on 0.0.0.0:9929, host namespace, 2 rules: close-wait-leak "
            "(close_wait), ephemeral-port-exhaustion (time_wait)");
}

}  // namespace
}  // namespace waitwatch
