// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <set>

#include "engine_harness.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {

const std::string kJavaId = "0123456789abcdef0123456789abcdef";

// Four groups, two CLOSE_WAIT sockets each: a server (nginx on :80), a client in a container
// (java to 10.1.2.3:5432), another server (php-fpm on :9000) and unattributed sockets (:8443).
Snapshot population() {
  SnapshotBuilder b;
  auto nginx = b.process(proc(100, "nginx").inUnit("nginx.service").listening({80}));
  auto java = b.process(proc(200, "java").inContainer("docker", kJavaId).ownedBy("app", 1000));
  auto php = b.process(proc(300, "php-fpm").inUnit("php-fpm.service").listening({9000}));
  b.closeWait(1, {nginx}, 80, "10.0.0.7:40001");
  b.closeWait(2, {nginx}, 80, "[::ffff:10.0.0.7]:40002");  // dual-stack peer
  b.closeWait(3, {java}, 51000, "10.1.2.3:5432");
  b.closeWait(4, {java}, 51001, "10.1.2.3:5432");
  b.closeWait(5, {php}, 9000, "192.168.1.5:40003");
  b.closeWait(6, {php}, 9000, "192.168.1.5:40004");
  b.closeWait(7, {}, 8443, "172.16.0.1:40005", 0, "10.0.0.1", 0);
  b.closeWait(8, {}, 8443, "172.16.0.1:40006", 0, "10.0.0.1", 0);
  return b.build();
}

std::set<std::string> firingFor(const std::string& match) {
  Engine e(configFrom(R"({"rules": [{"name": "m", "type": "close_wait", "min_sockets": 2,
                         "min_age": "0s", "match": )" +
                      match + "}]}"));
  std::set<std::string> out;
  for (const Alert& a : e.evaluate(population(), at(0))) {
    out.insert(a.group.kind == GroupKind::Unattributed ? "none" : a.group.comm);
  }
  return out;
}

// The names the runtime's files give: a container without them lacks those dimensions.
std::set<std::string> firingForNamed(const std::string& match) {
  Engine e(configFrom(R"({"rules": [{"name": "m", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s", "match": )" +
                      match + "}]}"));
  SnapshotBuilder b;
  auto api =
      b.process(proc(1, "api").inPod(std::string(64, 'a'), "u-1", "payments", "checkout-1", "api"));
  auto job =
      b.process(proc(2, "job").inPod(std::string(64, 'b'), "u-2", "batch", "nightly-1", "runner"));
  auto web =
      b.process(proc(3, "web").inContainer("docker", std::string(64, 'c')).named("shop-web"));
  auto bare = b.process(proc(4, "bare").inContainer("docker", std::string(64, 'f')));
  auto host = b.process(proc(5, "host"));
  std::uint64_t cookie = 1;
  for (auto p : {api, job, web, bare, host}) {
    b.closeWait(cookie, {p}, 8080, "10.0.0.7:" + std::to_string(40000 + cookie));
    ++cookie;
  }
  std::set<std::string> out;
  for (const Alert& a : e.evaluate(b.build(), at(0)))
    out.insert(a.group.comm);
  return out;
}

TEST(Match, ContainerNamePodAndNamespace) {
  const std::vector<std::pair<std::string, std::set<std::string>>> cases = {
      {R"({"include": {"namespace": "pay*"}})", {"api"}},
      {R"({"exclude": {"namespace": "batch"}})", {"api", "web", "bare", "host"}},
      {R"({"include": {"pod": ["checkout-*", "nightly-1"]}})", {"api", "job"}},
      {R"({"include": {"container_name": "shop-*"}})", {"web"}},
      {R"({"include": {"container_name": "*"}})", {"api", "job", "web"}},
      {R"({"exclude": {"container_name": "*"}})", {"bare", "host"}},
      {R"({"include": {"namespace": "payments", "container_name": "runner"}})", {}},
  };
  for (const auto& [match, firing] : cases) {
    EXPECT_EQ(firingForNamed(match), firing) << match;
  }
}

struct MatchCase {
  const char* match;
  std::set<std::string> firing;
};

TEST(Match, EverySelector) {
  const std::vector<MatchCase> cases = {
      {R"({})", {"nginx", "java", "php-fpm", "none"}},
      {R"({"include": {"comm": "ngin*"}})", {"nginx"}},
      {R"({"exclude": {"comm": "ngin*"}})", {"java", "php-fpm", "none"}},
      {R"({"include": {"comm": ["nginx", "php-fpm"]}})", {"nginx", "php-fpm"}},
      {R"({"include": {"unit": "*.service"}})", {"nginx", "php-fpm"}},
      {R"({"exclude": {"unit": "php-fpm.service"}})", {"nginx", "java", "none"}},
      {R"({"include": {"container": "docker:*"}})", {"java"}},
      {R"({"include": {"container": "0123*"}})", {"java"}},
      {R"({"exclude": {"container": "*"}})", {"nginx", "php-fpm", "none"}},
      {R"({"include": {"user": "www-data"}})", {"nginx", "php-fpm"}},
      {R"({"include": {"user": 1000}})", {"java"}},
      {R"({"include": {"user": "0"}})", {"none"}},  // unattributed sockets have a uid
      {R"({"exclude": {"user": ["www-data"]}})", {"java", "none"}},
      {R"({"include": {"local_port": 80}})", {"nginx"}},
      {R"({"include": {"local_port": "well-known"}})", {"nginx"}},
      {R"({"include": {"local_port": "registered"}})", {"php-fpm", "none"}},
      {R"({"include": {"local_port": "ephemeral"}})", {"java"}},
      {R"({"include": {"local_port": "9000-9999"}})", {"php-fpm"}},
      {R"({"exclude": {"local_port": "well-known"}})", {"java", "php-fpm", "none"}},
      {R"({"include": {"destination": "10.0.0.0/8"}})", {"nginx", "java"}},
      {R"({"include": {"destination": "192.168.0.0/16"}})", {"php-fpm"}},
      {R"({"exclude": {"destination": ["10.0.0.0/8"]}})", {"php-fpm", "none"}},
      {R"({"include": {"destination_port": 5432}})", {"java"}},
      {R"({"include": {"destination_port": "5000-6000"}})", {"java"}},
      {R"({"include": {"comm": "nginx"}, "exclude": {"local_port": 80}})", {}},
      {R"({"include": {"comm": "*", "destination": "10.0.0.0/8"}})", {"nginx", "java"}},
  };
  for (const MatchCase& c : cases) {
    EXPECT_EQ(firingFor(c.match), c.firing) << c.match;
  }
}

// A socket-level selector splits a process's sockets: only the matching ones count.
TEST(Match, EndpointSelectorsCountOnlyMatchingSockets) {
  SnapshotBuilder b;
  auto p = b.process(proc(1, "haproxy").listening({80, 443}));
  b.closeWaitMany(1, 5, {p}, 80);
  b.closeWaitMany(100, 2, {p}, 443);
  Engine e(configFrom(R"({"rules": [{"name": "m", "type": "close_wait", "min_sockets": 2,
                         "min_age": "0s", "match": {"include": {"local_port": 443}}}]})"));
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].count, 2u);
  EXPECT_EQ(out[0].localPorts, (std::vector<PortCount>{{443, 2}}));
}

// "ephemeral" is the namespace's ip_local_port_range, whatever IANA's class of the port: 42000
// (registered by IANA) is ephemeral in a namespace whose range is 40000-45000, 45500 is not.
TEST(Match, EphemeralIsTheNamespacesRange) {
  SnapshotBuilder b;
  b.netns().ephemeral = EphemeralRange(40000, 45000);
  auto client = b.process(proc(1, "client"));
  auto server = b.process(proc(2, "server").listening({45500}));
  b.closeWaitMany(1, 2, {client}, 42000);
  b.closeWaitMany(10, 2, {server}, 45500);
  auto firing = [&](const char* portClass) {
    Engine e(configFrom(std::string(R"({"rules": [{"name": "m", "type": "close_wait",
        "min_sockets": 2, "min_age": "0s", "match": {"include": {"local_port": ")") +
                        portClass + R"("}}}]})"));
    std::set<std::string> out;
    for (const Alert& a : e.evaluate(b.build(), at(0)))
      out.insert(a.group.comm);
    return out;
  };
  EXPECT_EQ(firing("ephemeral"), std::set<std::string>{"client"});
  EXPECT_EQ(firing("registered"), std::set<std::string>{"server"});
}

}  // namespace
}  // namespace waitwatch::testing
