// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "engine_harness.hpp"
#include "nginx_leak.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;

// The alert counts its sockets by kind and says what to look for by the kind most are.
TEST(CloseWaitRule, TheAlertSaysWhatKindOfBugItIs) {
  SnapshotBuilder b(10s);
  auto p = b.process(nginx());
  for (std::uint64_t c = 1; c <= 4; ++c) {
    b.closeWait(c, {p}, 8080, "10.0.0.7:" + std::to_string(40000 + c), 0, "10.0.0.1", 33,
                c == 4 ? CloseWaitKind::UnreadData : CloseWaitKind::EofNotClosed);
  }
  Engine e(configFrom(R"({"rules": [{"name": "k", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s"}]})"));
  const auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].closeWait.kinds, (CloseWaitKinds{{0, 3, 1}}));
  const std::string& m = out[0].message;
  const std::string end =
      ". 3 of 4 were read to end-of-stream and never closed: look for the end-of-stream or "
      "error path that returns without close()";
  ASSERT_GE(m.size(), end.size());
  EXPECT_EQ(m.substr(m.size() - end.size()), end) << m;
}

// A named namespace is said; waitwatch's own ("host") is not, it goes without saying.
TEST(CloseWaitRule, OnlyAnotherNamedNamespaceIsSaid) {
  for (const auto& [alias, said] : {std::pair{"host", false}, std::pair{"blue", true}}) {
    SnapshotBuilder b(10s);
    b.netns().ref.alias = alias;
    auto p = b.process(nginx());
    b.closeWaitMany(1, 3, {p}, 8080);
    Engine e(configFrom(R"({"rules": [{"name": "k", "type": "close_wait", "min_sockets": 1,
                           "min_age": "0s"}]})"));
    const auto out = e.evaluate(b.build(), at(0));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].message.find("(nginx.service) in " + std::string(alias)) != std::string::npos,
              said)
        << out[0].message;
  }
}

TEST(CloseWaitRule, FiresAfterMinAgeAndForThenResolvesAfterClearFor) {
  Engine e(configFrom(kRule));
  const Snapshot leaking = nginxHolding(3);
  const Snapshot clean = nginxHolding(0);
  // The sockets are there at the first poll: aged from then, as a lower bound.
  for (int t = 0; t <= 80; t += 10) {
    EXPECT_TRUE(e.evaluate(leaking, at(t)).empty()) << "t=" << t;  // pending from t=60
  }
  auto fired = e.evaluate(leaking, at(90));
  ASSERT_EQ(briefs(fired), (std::vector<std::string>{"firing leak " + kNginxKey}));
  const Alert& a = fired[0];
  EXPECT_EQ(a.severity, Severity::Warning);
  EXPECT_EQ(a.type, RuleType::CloseWait);
  EXPECT_EQ(a.count, 3u);
  EXPECT_EQ(a.closeWait.total, 3u);
  EXPECT_EQ(a.oldestAge, 90s);
  EXPECT_TRUE(a.oldestAgeIsLowerBound);
  EXPECT_EQ(a.since, at(60));
  EXPECT_EQ(a.firedAt, at(90));
  EXPECT_EQ(a.reasons, std::vector<AlertReason>{AlertReason::OldSockets});
  EXPECT_EQ(a.group.kind, GroupKind::Process);
  EXPECT_EQ(a.group.pid, 1234);
  EXPECT_EQ(a.group.comm, "nginx");
  EXPECT_EQ(a.group.unit, "nginx.service");
  EXPECT_EQ(a.group.user, "www-data");
  EXPECT_EQ(a.group.netns, "net:[4026531840]");
  EXPECT_EQ(a.localPorts, (std::vector<PortCount>{{8080, 3}}));
  EXPECT_EQ(a.peers.size(), 3u);
  EXPECT_EQ(a.peers[0].endpoint.port, 0);  // server side: remote ports do not matter
  EXPECT_EQ(a.message,
            "nginx[1234] (nginx.service) holds 3 CLOSE_WAIT sockets on :8080, the oldest stuck "
            "for at least 1m30s: it does not close() connections its peers have closed. All 3 "
            "were not read since the peer closed" +
                kAbandonedHint);
  EXPECT_EQ(e.firing().size(), 1u);

  EXPECT_TRUE(e.evaluate(leaking, at(100)).empty());
  EXPECT_TRUE(e.evaluate(clean, at(110)).empty());  // false since 110
  EXPECT_TRUE(e.evaluate(clean, at(120)).empty());
  auto resolved = e.evaluate(clean, at(130));
  ASSERT_EQ(briefs(resolved), (std::vector<std::string>{"resolved leak " + kNginxKey}));
  EXPECT_EQ(resolved[0].reasons, std::vector<AlertReason>{AlertReason::OldSockets});
  EXPECT_EQ(resolved[0].count, 0u);
  EXPECT_EQ(resolved[0].message,
            "resolved: nginx[1234] (nginx.service) holds no CLOSE_WAIT sockets any more; peak 3, "
            "firing for 40s");
  EXPECT_TRUE(e.firing().empty());
  EXPECT_TRUE(e.evaluate(clean, at(140)).empty());
}

TEST(CloseWaitRule, ConditionFlappingWithinClearForDoesNotResolve) {
  Engine e(configFrom(R"({"poll_interval": "10s", "rules": [{"name": "flap",
      "type": "close_wait", "min_sockets": 3, "min_age": "0s", "clear_for": "20s"}]})"));
  const std::vector<std::pair<int, std::size_t>> polls = {{0, 3},  {10, 2}, {20, 3}, {30, 2},
                                                          {40, 2}, {50, 2}, {60, 2}};
  std::vector<std::string> seen;
  for (const auto& [t, n] : polls) {
    for (const Alert& a : e.evaluate(nginxHolding(n), at(t))) {
      seen.push_back(std::to_string(t) + " " + brief(a));
    }
  }
  // False at 10 but true again at 20: no resolve; false from 30: resolved at 50.
  EXPECT_EQ(seen, (std::vector<std::string>{"0 firing flap " + kNginxKey,
                                            "50 resolved flap " + kNginxKey}));
}

TEST(CloseWaitRule, ForZeroFiresOnTheFirstPoll) {
  Engine e(configFrom(R"({"rules": [{"name": "now", "type": "close_wait", "min_sockets": 1,
                                     "min_age": "0s"}]})"));
  auto out = e.evaluate(nginxHolding(1), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing now " + kNginxKey}));
  // clear_for 0s: resolves on the first poll without it.
  EXPECT_EQ(briefs(e.evaluate(nginxHolding(0), at(5))),
            (std::vector<std::string>{"resolved now " + kNginxKey}));
}

TEST(CloseWaitRule, AgesAreTrackedByCookie) {
  Engine e(configFrom(kRule));
  SnapshotBuilder b(10s);
  auto p = b.process(nginx());
  b.closeWait(1, {p}, 8080, "10.0.0.7:40001");
  (void)e.evaluate(b.build(), at(0));
  b.closeWait(2, {p}, 8080, "10.0.0.7:40002");
  (void)e.evaluate(b.build(), at(30));
  EXPECT_EQ(e.closeWaitAge(1, at(90)), (SocketAge{90s, true}));
  EXPECT_EQ(e.closeWaitAge(2, at(90)), (SocketAge{60s, false}));
  EXPECT_EQ(e.trackedSockets(), 2u);
  const Snapshot both = b.build();
  (void)e.evaluate(both, at(90));
  EXPECT_EQ(e.oldestCloseWaitByProcess(both, at(90)),
            (std::vector<SocketAge>{SocketAge{90s, true}}));

  // Cookie 1 disappears (the process closed it): forgotten. When a socket with the same
  // cookie shows up later it is a new socket, aged from then.
  SnapshotBuilder only2(10s);
  auto q = only2.process(nginx());
  only2.closeWait(2, {q}, 8080, "10.0.0.7:40002");
  (void)e.evaluate(only2.build(), at(100));
  EXPECT_FALSE(e.closeWaitAge(1, at(100)));
  EXPECT_EQ(e.trackedSockets(), 1u);
  (void)e.evaluate(both, at(110));
  EXPECT_EQ(e.closeWaitAge(1, at(110)), (SocketAge{0s, false}));
  EXPECT_EQ(e.closeWaitAge(2, at(110)), (SocketAge{80s, false}));
  // Another snapshot than the last evaluated one: ages are found by cookie.
  EXPECT_EQ(e.oldestCloseWaitByProcess(only2.build(), at(110)),
            (std::vector<SocketAge>{SocketAge{80s, false}}));
}

TEST(CloseWaitRule, AReusedPidIsANewGroup) {
  Engine e(configFrom(kRule));
  for (int t = 0; t <= 90; t += 10)
    (void)e.evaluate(nginxHolding(3), at(t));
  ASSERT_EQ(e.firing().size(), 1u);
  // pid 1234 exits; a new process gets pid 1234 (another start time) with CLOSE_WAIT sockets
  // of its own.
  SnapshotBuilder b(10s);
  ProcessSpec reused = nginx();
  reused.startTime = 5000;
  reused.comm = "java";
  reused.unit = "app.service";
  auto p = b.process(reused);
  b.closeWaitMany(900, 3, {p}, 8080);
  const Snapshot next = b.build();
  EXPECT_TRUE(e.evaluate(next, at(100)).empty());
  EXPECT_TRUE(e.evaluate(next, at(110)).empty());
  EXPECT_EQ(briefs(e.evaluate(next, at(120))),
            (std::vector<std::string>{"resolved leak " + kNginxKey}));
  // The new process's sockets are aged from t=100, not inherited: old at 160, fires at 190.
  for (int t = 130; t < 190; t += 10)
    EXPECT_TRUE(e.evaluate(next, at(t)).empty()) << t;
  auto fired = e.evaluate(next, at(190));
  ASSERT_EQ(briefs(fired), (std::vector<std::string>{"firing leak process:1234@5000:4026531840"}));
  EXPECT_EQ(fired[0].oldestAge, 90s);
  EXPECT_FALSE(fired[0].oldestAgeIsLowerBound);
  EXPECT_EQ(fired[0].group.comm, "java");
}

TEST(CloseWaitRule, GrowthCatchesALeakBeforeItIsOld) {
  Engine e(configFrom(R"({"poll_interval": "10s", "rules": [{"name": "grow",
      "type": "close_wait", "min_sockets": 1000, "growth": 5, "growth_window": "1m"}]})"));
  // 2 sockets at the start, then 2 more every poll. Growth counts sockets that survived a poll.
  std::vector<std::string> fired;
  std::size_t n = 2;
  int firedAt = -1;
  for (int t = 0; t <= 60; t += 10, n += 2) {
    auto out = e.evaluate(nginxHolding(n), at(t));
    if (!out.empty() && firedAt < 0) {
      firedAt = t;
      ASSERT_EQ(out.size(), 1u);
      EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::Growth});
      EXPECT_EQ(out[0].closeWait.growth, 6u);  // settled 2 at t=0, 8 at t=40
      EXPECT_EQ(out[0].count, 0u);             // none is 5 minutes old
      EXPECT_EQ(out[0].message,
                "nginx[1234] (nginx.service) holds 10 CLOSE_WAIT sockets on :8080 (up by 6 in "
                "the last 1m), the oldest stuck for at least 40s: it does not close() "
                "connections its peers have closed. All 10 were not read since the peer closed" +
                    kAbandonedHint);
    }
  }
  EXPECT_EQ(firedAt, 40);
}

TEST(CloseWaitRule, ShortLivedCloseWaitChurnIsNotGrowth) {
  Engine e(configFrom(R"({"poll_interval": "5s", "rules": [{"name": "grow",
      "type": "close_wait", "min_sockets": 10, "min_age": "0s", "growth": 5,
      "growth_window": "1m"}]})"));
  // Each poll sees 0..9 sockets, every one new (closed within a poll interval): a busy healthy
  // server. min_sockets 10 with min_age 0 is never reached and nothing settles.
  std::uint64_t cookie = 1;
  for (int t = 0; t < 600; t += 5) {
    const std::size_t n = static_cast<std::size_t>(t / 5 % 10);
    EXPECT_TRUE(e.evaluate(nginxHolding(n, cookie), at(t)).empty()) << t;
    cookie += n;
  }
  // Positive control: the same rule and counts, but the sockets stay (same cookies): a leak.
  Engine leak(configFrom(R"({"poll_interval": "5s", "rules": [{"name": "grow",
      "type": "close_wait", "min_sockets": 10, "min_age": "0s", "growth": 5,
      "growth_window": "1m"}]})"));
  int firedAt = -1;
  for (int t = 0; t < 60 && firedAt < 0; t += 5) {
    const auto out = leak.evaluate(nginxHolding(static_cast<std::size_t>(t / 5), 1), at(t));
    if (!out.empty()) {
      firedAt = t;
      EXPECT_EQ(out[0].reasons, std::vector<AlertReason>{AlertReason::Growth});
    }
  }
  EXPECT_GE(firedAt, 0) << "sockets that stay and grow must fire the same rule";
}

TEST(CloseWaitRule, GroupByUnitCountsASharedSocketOnce) {
  const char* cfg = R"({"rules": [{"name": "u", "type": "close_wait", "group_by": "unit",
                        "min_sockets": 3, "min_age": "0s"}]})";
  Engine e(configFrom(cfg));
  SnapshotBuilder b;
  auto master = b.process(proc(10, "nginx").inUnit("nginx.service").listening({80}));
  auto worker = b.process(proc(11, "nginx").inUnit("nginx.service").listening({80}));
  auto lone = b.process(proc(12, "cron"));  // no unit: its own process group
  // Three sockets shared by master and worker (inherited fds), one of the worker alone.
  for (std::uint64_t c = 1; c <= 3; ++c) {
    b.closeWait(c, {master, worker}, 80, "10.0.0.8:" + std::to_string(50000 + c));
  }
  b.closeWait(4, {worker}, 80, "10.0.0.9:50004");
  b.closeWaitMany(10, 3, {lone}, 80);
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing u process:12@1000:4026531840",
                                                   "firing u unit:nginx.service:4026531840"}));
  const Alert& unit = out[1];
  EXPECT_EQ(unit.group.kind, GroupKind::Unit);
  EXPECT_EQ(unit.group.pid, 0);
  EXPECT_EQ(unit.group.unit, "nginx.service");
  EXPECT_EQ(unit.group.comm, "nginx");
  EXPECT_EQ(unit.group.processes, 2u);
  EXPECT_EQ(unit.count, 4u);  // shared sockets counted once in the unit
  EXPECT_EQ(unit.peers[0], (PeerCount{endpoint("10.0.0.8:0"), 3}));
  EXPECT_EQ(unit.message,
            "nginx.service (nginx, 2 processes) holds 4 CLOSE_WAIT sockets on :80, the oldest "
            "just seen: it does not close() connections its peers have closed. All 4 were not "
            "read since the peer closed" +
                kAbandonedHint);
  EXPECT_EQ(out[0].group.kind, GroupKind::Process);
  EXPECT_EQ(out[0].message,
            "cron[12] holds 3 CLOSE_WAIT sockets on :80, the oldest just seen: it "
            "does not close() connections its peers have closed. All 3 were not read since the "
            "peer closed" +
                kAbandonedHint);

  // By process, a shared socket counts for each owner.
  Engine byProcess(configFrom(R"({"rules": [{"name": "p", "type": "close_wait",
                                  "min_sockets": 3, "min_age": "0s"}]})"));
  auto perProcess = byProcess.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(perProcess), (std::vector<std::string>{"firing p process:10@1000:4026531840",
                                                          "firing p process:11@1000:4026531840",
                                                          "firing p process:12@1000:4026531840"}));
  EXPECT_EQ(perProcess[0].count, 3u);
  EXPECT_EQ(perProcess[1].count, 4u);
}

TEST(CloseWaitRule, GroupByContainer) {
  Engine e(configFrom(R"({"rules": [{"name": "c", "type": "close_wait", "group_by": "container",
                         "min_sockets": 2, "min_age": "0s"}]})"));
  SnapshotBuilder b;
  const std::string id = "0123456789abcdef0123456789abcdef";
  auto a = b.process(proc(20, "java").inContainer("docker", id));
  auto c = b.process(proc(21, "java").inContainer("docker", id));
  b.closeWait(1, {a}, 51000, "10.1.2.3:5432");  // client side: the peer is the service
  b.closeWait(2, {c}, 51001, "10.1.2.3:5432");
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out),
            (std::vector<std::string>{"firing c container:docker:" + id + ":4026531840"}));
  EXPECT_EQ(out[0].group.container, "docker:0123456789ab");
  EXPECT_EQ(out[0].group.processes, 2u);
  EXPECT_EQ(out[0].closeWait.clientSide, 2u);
  EXPECT_TRUE(out[0].localPorts.empty());
  EXPECT_EQ(out[0].peers, (std::vector<PeerCount>{{endpoint("10.1.2.3:5432"), 2}}));
  EXPECT_EQ(out[0].message,
            "container docker:0123456789ab (java, 2 processes) holds 2 CLOSE_WAIT sockets to "
            "10.1.2.3:5432, the oldest just seen: it does not close() connections "
            "its peers have closed. Both were not read since the peer closed" +
                kAbandonedHint);
}

// A pod's two containers are one group; the alert names the pod, and a process outside any pod
// stays a process group. Names come from the runtime's files (container_name etc.).
TEST(CloseWaitRule, GroupByPodNamesThePodAndItsNamespace) {
  Engine e(configFrom(R"({"rules": [{"name": "p", "type": "close_wait", "group_by": "pod",
                         "min_sockets": 2, "min_age": "0s"}]})"));
  SnapshotBuilder b;
  const std::string uid = "d6b1c0de-0000-4000-8000-00000000abcd";
  const std::string api(64, 'a');
  const std::string sidecar(64, 'b');
  auto a = b.process(proc(20, "java").inPod(api, uid, "payments", "checkout-7d9f-x2k4", "api"));
  auto s = b.process(
      proc(21, "envoy").inPod(sidecar, uid, "payments", "checkout-7d9f-x2k4", "istio-proxy"));
  auto host = b.process(proc(22, "cron"));
  b.closeWait(1, {a}, 8080, "10.1.2.3:40000");
  b.closeWait(2, {a}, 8080, "10.1.2.3:40001");
  b.closeWait(3, {s}, 15001, "10.1.2.4:40002");
  b.closeWait(4, {host}, 25, "10.1.2.5:40003");
  b.closeWait(5, {host}, 25, "10.1.2.5:40004");
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing p pod:" + uid + ":4026531840",
                                                   "firing p process:22@1000:4026531840"}));
  const AlertGroup& g = out[0].group;
  EXPECT_EQ(g.kind, GroupKind::Pod);
  EXPECT_EQ(out[0].count, 3u);
  EXPECT_EQ(g.processes, 2u);
  EXPECT_EQ(g.pod, "checkout-7d9f-x2k4");
  EXPECT_EQ(g.podNamespace, "payments");
  EXPECT_EQ(g.containerName, "api");  // of the process holding the most
  EXPECT_EQ(g.container, "containerd:aaaaaaaaaaaa");
  EXPECT_EQ(out[0].message.substr(0, 72),
            "pod payments/checkout-7d9f-x2k4 (java, 2 processes) holds 3 CLOSE_WAIT s");
  EXPECT_EQ(out[1].group.pod, "");
}

// A pod whose names no runtime file gave (names off, or a miss) is still one group, named by its
// uid from the cgroup path.
TEST(CloseWaitRule, GroupByPodWithoutNamesNamesThePodUid) {
  Engine e(configFrom(R"({"rules": [{"name": "p", "type": "close_wait", "group_by": "pod",
                         "min_sockets": 2, "min_age": "0s"}]})"));
  SnapshotBuilder b;
  const std::string uid = "d6b1c0de-0000-4000-8000-00000000abcd";
  auto a = b.process(proc(20, "java").inPod(std::string(64, 'a'), uid, "", "", ""));
  auto s = b.process(proc(21, "envoy").inPod(std::string(64, 'b'), uid, "", "", ""));
  b.closeWait(1, {a}, 8080, "10.1.2.3:40000");
  b.closeWait(2, {s}, 15001, "10.1.2.4:40002");
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].group.podUid, uid);
  EXPECT_EQ(out[0].group.pod, "");
  EXPECT_EQ(out[0].message.rfind("pod " + uid + " (java, 2 processes) holds 2 CLOSE_WAIT", 0), 0u)
      << out[0].message;
}

// A process of a named container is named by it in the text, not by its id.
TEST(CloseWaitRule, AProcessInANamedContainerIsNamedByIt) {
  Engine e(configFrom(R"({"rules": [{"name": "c", "type": "close_wait", "min_sockets": 2,
                         "min_age": "0s"}]})"));
  SnapshotBuilder b;
  auto web =
      b.process(proc(30, "node").inContainer("docker", std::string(64, 'd')).named("shop-web-1"));
  auto java = b.process(
      proc(31, "java").inPod(std::string(64, 'e'), "u-1", "payments", "checkout-1", "api"));
  b.closeWait(1, {web}, 3000, "10.1.2.3:40000");
  b.closeWait(2, {web}, 3000, "10.1.2.3:40001");
  b.closeWait(3, {java}, 8080, "10.1.2.3:40002");
  b.closeWait(4, {java}, 8080, "10.1.2.3:40003");
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].message.substr(0, 42), "node[30] (container shop-web-1) holds 2 CL");
  EXPECT_EQ(out[0].group.containerName, "shop-web-1");
  EXPECT_EQ(out[1].message.substr(0, 55),
            "java[31] (pod payments/checkout-1, container api) holds");
}

TEST(CloseWaitRule, SocketsWithoutAVisibleOwnerGroupPerNamespace) {
  Engine e(configFrom(R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 2,
                         "min_age": "0s"}]})"));
  SnapshotBuilder b;
  const auto other = b.addNamespace(4026532000, "blue");
  b.closeWait(1, {}, 8443, "10.0.0.7:40000");
  b.closeWait(2, {}, 8443, "10.0.0.8:40000");
  b.closeWait(3, {}, 8443, "10.0.0.8:40001", other);  // one only in "blue": below threshold
  auto out = e.evaluate(b.build(), at(0));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing x unattributed:4026531840"}));
  EXPECT_EQ(out[0].group.kind, GroupKind::Unattributed);
  EXPECT_EQ(out[0].message,
            "2 CLOSE_WAIT sockets on :8443 in net:[4026531840] have no visible owner, the oldest "
            "just seen: a process waitwatch cannot see (no permission, or another "
            "pid namespace) does not close() connections its peers have closed. Both were not "
            "read since the peer closed" +
                kAbandonedHint);
}

TEST(CloseWaitRule, BadIndicesInASnapshotAreIgnoredNotFollowed) {
  Engine e(configFrom(R"({"rules": [{"name": "x", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s"}]})"));
  SnapshotBuilder b;
  auto p = b.process(nginx());
  b.closeWait(1, {p}, 8080, "10.0.0.7:40000");
  Snapshot s = b.build();
  s.closeWait.push_back(s.closeWait[0]);
  s.closeWait[1].cookie = 2;
  s.closeWait[1].ownerBegin = 1000;     // past ownerLinks
  s.closeWait[1].netns = 77;            // past namespaces
  s.closeWait[1].remoteAddress = 5000;  // past addresses: read as the unspecified address
  s.closeWait.push_back(s.closeWait[0]);
  s.closeWait[2].cookie = 3;
  s.ownerLinks.push_back(99);  // a process index past processes
  s.closeWait[2].ownerBegin = 1;
  s.closeWait[2].localAddress = kNoIndex;
  s.processes[0].netns = 55;
  TimeWaitGroup stray;
  stray.netns = 9;
  stray.timeWait = 5;
  s.timeWait.push_back(stray);
  auto out = e.evaluate(s, at(0));
  // The process's netns index points nowhere: inode 0. Socket 2's owner range points nowhere:
  // unattributed, and its netns too: inode 0. Socket 3's only owner points nowhere:
  // unattributed in its (valid) namespace.
  EXPECT_EQ(briefs(out),
            (std::vector<std::string>{"firing x process:1234@1000:0", "firing x unattributed:0",
                                      "firing x unattributed:4026531840"}));
}

TEST(CloseWaitRule, RemindersAtTheConfiguredIntervalOnly) {
  Engine e(configFrom(R"({"poll_interval": "10s", "alerts": {"reminder_interval": "1m"},
      "rules": [{"name": "r", "type": "close_wait", "min_sockets": 1, "min_age": "0s"}]})"));
  std::vector<std::pair<int, AlertState>> seen;
  for (int t = 0; t <= 180; t += 10) {
    for (const Alert& a : e.evaluate(nginxHolding(1), at(t)))
      seen.emplace_back(t, a.state);
  }
  EXPECT_EQ(seen, (std::vector<std::pair<int, AlertState>>{{0, AlertState::Firing},
                                                           {60, AlertState::StillFiring},
                                                           {120, AlertState::StillFiring},
                                                           {180, AlertState::StillFiring}}));
  auto still = e.evaluate(nginxHolding(1), at(240));
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still[0].message,
            "nginx[1234] (nginx.service) holds 1 CLOSE_WAIT socket on :8080, the oldest stuck for "
            "at least 4m0s: it does not close() connections its peers have closed (still firing "
            "after 4m0s). It was not read since the peer closed" +
                kAbandonedHint);

  Engine quiet(configFrom(R"({"alerts": {"reminder_interval": "0s"},
      "rules": [{"name": "r", "type": "close_wait", "min_sockets": 1, "min_age": "0s"}]})"));
  EXPECT_EQ(quiet.evaluate(nginxHolding(1), at(0)).size(), 1u);
  for (int t = 5; t < 20000; t += 5)
    ASSERT_TRUE(quiet.evaluate(nginxHolding(1), at(t)).empty());
}

TEST(CloseWaitRule, FiringShowsCurrentValues) {
  Engine e(configFrom(R"({"rules": [{"name": "r", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s"}]})"));
  (void)e.evaluate(nginxHolding(2), at(0));
  (void)e.evaluate(nginxHolding(5), at(5));
  auto f = e.firing();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].state, AlertState::Firing);
  EXPECT_EQ(f[0].count, 5u);
  EXPECT_EQ(f[0].at, at(5));
  EXPECT_EQ(f[0].firedAt, at(0));
}

TEST(Reconfigure, KeepsStateOfRulesThatStillExist) {
  Engine e(configFrom(R"({"rules": [{"name": "a", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s", "for": "1m"},
                         {"name": "b", "type": "close_wait", "min_sockets": 1,
                         "min_age": "0s"}]})"));
  const auto fired = e.evaluate(nginxHolding(2), at(0));
  EXPECT_EQ(briefs(fired), (std::vector<std::string>{"firing b " + kNginxKey}));  // a pending
  // Same names and types, other thresholds and severity; rule "b" becomes "c".
  e.reconfigure(configFrom(R"({"rules": [{"name": "a", "type": "close_wait", "min_sockets": 2,
                              "min_age": "0s", "for": "1m", "severity": "critical"},
                              {"name": "c", "type": "close_wait", "min_sockets": 1,
                              "min_age": "0s"}]})"));
  auto dropped = e.takeDroppedOnReconfigure();
  ASSERT_EQ(briefs(dropped), (std::vector<std::string>{"resolved b " + kNginxKey}));
  // The resolution says what the alert was, as it last read.
  ASSERT_FALSE(fired[0].message.empty());
  EXPECT_EQ(dropped[0].message, "resolved: rule b was removed from the configuration (it was: " +
                                    fired[0].message + ")");
  EXPECT_TRUE(e.takeDroppedOnReconfigure().empty());
  EXPECT_EQ(briefs(e.evaluate(nginxHolding(2), at(30))),
            (std::vector<std::string>{"firing c " + kNginxKey}));
  // "a" kept its pending time: it fires at 60, one minute after 0, not after 30.
  auto out = e.evaluate(nginxHolding(2), at(60));
  ASSERT_EQ(briefs(out), (std::vector<std::string>{"firing a " + kNginxKey}));
  EXPECT_EQ(out[0].severity, Severity::Critical);
  EXPECT_EQ(out[0].since, at(0));
  // Ages carried over too.
  EXPECT_EQ(e.closeWaitAge(100, at(60)), (SocketAge{60s, true}));
  // A firing alert carries over without a second Firing.
  e.reconfigure(configFrom(R"({"rules": [{"name": "a", "type": "close_wait", "min_sockets": 1,
                              "min_age": "0s", "for": "1m"}]})"));
  EXPECT_EQ(briefs(e.takeDroppedOnReconfigure()),
            (std::vector<std::string>{"resolved c " + kNginxKey}));
  EXPECT_TRUE(e.evaluate(nginxHolding(2), at(65)).empty());
  EXPECT_EQ(e.firing().size(), 1u);
  // Same name, other type: a different rule, its state is dropped.
  e.reconfigure(configFrom(R"({"rules": [{"name": "a", "type": "time_wait",
                              "min_sockets": 1000000}]})"));
  EXPECT_EQ(e.takeDroppedOnReconfigure().size(), 1u);
  EXPECT_TRUE(e.firing().empty());
}

}  // namespace
}  // namespace waitwatch::testing
