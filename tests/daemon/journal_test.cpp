// SPDX-License-Identifier: Apache-2.0
// Alert -> journal field mapping, the catalog for every MESSAGE_ID, and the bounded queue.
#include "service/journal.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include "support/sample_poll.hpp"

namespace waitwatch {
namespace {

TEST(JournalFields, FiringCloseWaitAlert) {
  const JournalEntry e = alertEntry(testing::sampleAlert());
  EXPECT_EQ(e.get("MESSAGE"), "nginx[100] (nginx.service) holds 2 CLOSE_WAIT sockets on :8080");
  EXPECT_EQ(e.get("MESSAGE_ID"), kMessageIdCloseWaitFiring);
  EXPECT_EQ(e.get("PRIORITY"), "4");
  EXPECT_EQ(e.get("SYSLOG_IDENTIFIER"), "waitwatchd");
  EXPECT_EQ(e.get("WAITWATCH_RULE"), "close-wait-leak");
  EXPECT_EQ(e.get("WAITWATCH_STATE"), "firing");
  EXPECT_EQ(e.get("WAITWATCH_SEVERITY"), "warning");
  EXPECT_EQ(e.get("WAITWATCH_PID"), "100");
  EXPECT_EQ(e.get("WAITWATCH_COMM"), "nginx");
  EXPECT_EQ(e.get("WAITWATCH_UNIT"), "nginx.service");
  EXPECT_EQ(e.get("WAITWATCH_NETNS"), "net:[4026531840]");
  EXPECT_EQ(e.get("WAITWATCH_COUNT"), "2");
  EXPECT_EQ(e.get("WAITWATCH_OLDEST_AGE_SECONDS"), "120.000");
  EXPECT_EQ(e.get("WAITWATCH_LOCAL_PORTS"), "8080");
  EXPECT_EQ(e.get("WAITWATCH_KINDS"), "abandoned=1 eof_not_closed=1 unread_data=0");
  EXPECT_EQ(e.get("WAITWATCH_FD_PID"), "100");
  EXPECT_EQ(e.get("WAITWATCH_OPEN_FDS"), "900");
  EXPECT_EQ(e.get("WAITWATCH_MAX_FDS"), "1024");
  EXPECT_EQ(e.get("WAITWATCH_FD_EXHAUSTION_SECONDS"), "120.000");
  EXPECT_EQ(e.get("WAITWATCH_FD_GROWTH_PER_MINUTE"), "62");
  EXPECT_EQ(e.get("WAITWATCH_PEERS"), "10.0.0.7");
  EXPECT_EQ(e.get("WAITWATCH_REASONS"), "old_sockets");
  // Fields that do not apply are absent, not empty.
  EXPECT_EQ(e.get("WAITWATCH_CONTAINER"), "");
  EXPECT_EQ(e.get("WAITWATCH_POD"), "");
  EXPECT_EQ(e.get("WAITWATCH_DESTINATION"), "");
  EXPECT_EQ(e.get("WAITWATCH_PORT_USAGE_RATIO"), "");
  for (const auto& f : e.fields)
    EXPECT_NE(f.find('='), std::string::npos) << f;
}

// A Kubernetes pod's container: the id, the container's name, the pod and its namespace.
TEST(JournalFields, PodAndContainerNames) {
  Alert a = testing::sampleAlert();
  ContainerInfo c{"containerd", std::string(64, 'a'), "d6b1c0de-0000-4000-8000-00000000abcd"};
  c.name = "api";
  c.podName = "checkout-7d9f-x2k4";
  c.podNamespace = "payments";
  setContainer(a.group, c);
  const JournalEntry e = alertEntry(a);
  EXPECT_EQ(e.get("WAITWATCH_CONTAINER"), "containerd:aaaaaaaaaaaa");
  EXPECT_EQ(e.get("WAITWATCH_CONTAINER_NAME"), "api");
  EXPECT_EQ(e.get("WAITWATCH_POD"), "checkout-7d9f-x2k4");
  EXPECT_EQ(e.get("WAITWATCH_POD_NAMESPACE"), "payments");
  EXPECT_EQ(e.get("WAITWATCH_POD_UID"), "d6b1c0de-0000-4000-8000-00000000abcd");
  // A container no runtime file named: its id only.
  setContainer(a.group, ContainerInfo{"docker", std::string(64, 'b'), ""});
  const JournalEntry bare = alertEntry(a);
  EXPECT_EQ(bare.get("WAITWATCH_CONTAINER"), "docker:bbbbbbbbbbbb");
  EXPECT_EQ(bare.get("WAITWATCH_CONTAINER_NAME"), "");
  EXPECT_EQ(bare.get("WAITWATCH_POD"), "");
}

TEST(JournalFields, PrioritiesAndIdsPerTypeAndState) {
  Alert a = testing::sampleAlert();
  a.severity = Severity::Critical;
  EXPECT_EQ(priorityFor(a), 2);
  a.state = AlertState::StillFiring;
  EXPECT_EQ(priorityFor(a), 2);
  EXPECT_EQ(alertEntry(a).get("WAITWATCH_STATE"), "firing");
  EXPECT_EQ(alertEntry(a).get("WAITWATCH_REMINDER"), "1");
  EXPECT_EQ(alertEntry(a).get("MESSAGE_ID"), kMessageIdCloseWaitFiring);
  a.state = AlertState::Resolved;
  EXPECT_EQ(priorityFor(a), 5);
  EXPECT_EQ(alertEntry(a).get("WAITWATCH_STATE"), "resolved");
  EXPECT_EQ(alertEntry(a).get("MESSAGE_ID"), kMessageIdCloseWaitResolved);
  EXPECT_EQ(messageIdFor(RuleType::TimeWait, AlertState::Firing), kMessageIdTimeWaitFiring);
  EXPECT_EQ(messageIdFor(RuleType::TimeWait, AlertState::Resolved), kMessageIdTimeWaitResolved);
}

TEST(JournalFields, TimeWaitDestinationAlert) {
  Alert a;
  a.rule = "port-exhaustion";
  a.type = RuleType::TimeWait;
  a.severity = Severity::Critical;
  a.group.kind = GroupKind::Destination;
  a.group.netns = "blue";
  a.count = 20000;
  a.timeWait.source = *IpAddress::parse("10.0.0.1");
  a.timeWait.destination = Endpoint{*IpAddress::parse("10.0.0.9"), 5432};
  a.timeWait.portUsageRatio = 0.70843;
  a.message = "m";
  const JournalEntry e = alertEntry(a);
  EXPECT_EQ(e.get("MESSAGE_ID"), kMessageIdTimeWaitFiring);
  EXPECT_EQ(e.get("PRIORITY"), "2");
  EXPECT_EQ(e.get("WAITWATCH_DESTINATION"), "10.0.0.9:5432");
  EXPECT_EQ(e.get("WAITWATCH_SOURCE"), "10.0.0.1");
  EXPECT_EQ(e.get("WAITWATCH_PORT_USAGE_RATIO"), "0.7084");
  EXPECT_EQ(e.get("WAITWATCH_PID"), "");
  EXPECT_EQ(e.get("WAITWATCH_OLDEST_AGE_SECONDS"), "");
  EXPECT_EQ(e.get("WAITWATCH_KINDS"), "");
}

TEST(JournalFields, StderrLine) {
  Alert a = testing::sampleAlert();
  EXPECT_EQ(alertLine(a),
            "FIRING warning close-wait-leak: nginx[100] (nginx.service) holds 2 CLOSE_WAIT "
            "sockets on :8080");
  a.state = AlertState::Resolved;
  EXPECT_EQ(alertLine(a).rfind("RESOLVED warning close-wait-leak: ", 0), 0u);
}

// Every MESSAGE_ID the daemon sends has a catalog entry that journalctl itself accepts.
TEST(JournalCatalog, EveryMessageIdIsInTheCatalog) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "waitwatch-catalog-root";
  fs::remove_all(root);
  fs::create_directories(root / "usr/lib/systemd/catalog");
  fs::copy_file(fs::path(WAITWATCH_TEST_DATA_DIR) / "../../systemd/waitwatch.catalog",
                root / "usr/lib/systemd/catalog/waitwatch.catalog");
  const std::string base = "journalctl --root=" + root.string();
  ASSERT_EQ(std::system((base + " --update-catalog").c_str()), 0);
  FILE* p = ::popen((base + " --list-catalog 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string list;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p))
    list += buf;
  ::pclose(p);
  for (std::string_view id :
       {kMessageIdCloseWaitFiring, kMessageIdCloseWaitResolved, kMessageIdTimeWaitFiring,
        kMessageIdTimeWaitResolved, kMessageIdConfigRejected, kMessageIdStarted}) {
    EXPECT_NE(list.find(std::string(id) + " waitwatch: "), std::string::npos) << id << "\n" << list;
  }
  fs::remove_all(root);
}

TEST(JournalWriter, SendsInOrderAndCounts) {
  std::mutex m;
  std::vector<std::string> sent;
  std::atomic<int> written{0};
  {
    JournalWriter w(JournalWriterOptions{.capacity = 16},
                    JournalWriter::Counters{.written = [&] { ++written; }, .dropped = [](bool) {}},
                    [&](const JournalEntry& e) {
                      std::lock_guard lock(m);
                      sent.emplace_back(e.get("MESSAGE"));
                      return 0;
                    });
    for (int i = 0; i < 5; ++i) {
      JournalEntry e;
      e.fields = {"MESSAGE=" + std::to_string(i)};
      EXPECT_TRUE(w.submit(std::move(e)));
    }
    w.stop();
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(written.load(), 5);
}

// A journald that never answers: submit never blocks, the overflow is counted, and stop()
// returns within its grace period.
TEST(JournalWriter, StalledJournalDropsAndNeverBlocks) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto dropped = std::make_shared<std::atomic<int>>(0);
  auto failed = std::make_shared<std::atomic<int>>(0);
  JournalWriter w(JournalWriterOptions{.capacity = 4},
                  JournalWriter::Counters{
                      .written = [] {},
                      .dropped = [dropped, failed](bool full) { ++(full ? *dropped : *failed); }},
                  [released](const JournalEntry&) {
                    released.wait();
                    return -ECONNREFUSED;
                  });
  // The sender stays blocked until `release`: a submit that waited for it would never return
  // (the test's timeout would end it), so reaching the line after the loop is the proof.
  int accepted = 0;
  for (int i = 0; i < 100; ++i)
    accepted += w.submit(JournalEntry{{"MESSAGE=x"}}) ? 1 : 0;
  // One entry is in the blocked send, `capacity` wait in the queue.
  EXPECT_GE(accepted, 4);
  EXPECT_LE(accepted, 5);
  EXPECT_EQ(dropped->load(), 100 - accepted);
  // stop() gives up on the blocked sender after its grace period instead of waiting for it:
  // with the sender blocked for good, returning at all shows that; the deadline is generous.
  const auto start = std::chrono::steady_clock::now();
  w.stop(std::chrono::milliseconds(100));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  release.set_value();  // the abandoned writer finishes without touching the counters
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(failed->load(), 0);
}

}  // namespace
}  // namespace waitwatch
