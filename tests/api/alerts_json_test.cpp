// SPDX-License-Identifier: Apache-2.0
// The /api/v1/alerts document: what the writer puts in, the reader (waitwatch --from) gets back,
// and the reader's errors name the JSON path.
#include "api/alerts_json.hpp"

#include <gtest/gtest.h>

namespace waitwatch::api {
namespace {

using namespace std::chrono_literals;

Alert firing(std::string rule, Severity severity, std::string message, TimePoint since) {
  Alert a;
  a.rule = std::move(rule);
  a.type = RuleType::CloseWait;
  a.severity = severity;
  a.state = AlertState::Firing;
  a.message = std::move(message);
  a.since = since;
  a.firedAt = since;
  return a;
}

TEST(AlertsJson, WhatTheDaemonWritesTheCliReadsBack) {
  const TimePoint poll{std::chrono::hours(2)};
  const PollClock clock{.steady = poll, .unixMs = 1'700'000'000'000};
  std::vector<Alert> alerts = {
      firing("cw", Severity::Warning, "nginx[1] holds 12 CLOSE_WAIT sockets", poll - 90s),
      firing("cw-crit", Severity::Critical, "api[2] holds 900 CLOSE_WAIT sockets", poll)};
  alerts[0].group.pid = 1;
  alerts[0].group.startTime = 77;
  alerts[0].group.unit = "nginx.service";
  alerts[1].group.kind = GroupKind::Pod;
  alerts[1].group.container = "containerd:0123456789ab";
  alerts[1].group.containerName = "api";
  alerts[1].group.pod = "checkout-7d9f-x2k4";
  alerts[1].group.podNamespace = "payments";
  alerts[1].group.podUid = "d6b1c0de-0000-4000-8000-00000000abcd";
  const auto doc = alertsToJson(alerts, clock);
  EXPECT_DOUBLE_EQ(doc["time_unix_seconds"].get<double>(), 1'700'000'000.0);
  EXPECT_DOUBLE_EQ(doc["alerts"][0]["since_unix_seconds"].get<double>(), 1'699'999'910.0);
  // Through text, as over HTTP.
  auto read = alertsFromJson(nlohmann::json::parse(doc.dump()));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(*read, (std::vector<AlertSummary>{{.rule = "cw",
                                               .severity = "warning",
                                               .message = "nginx[1] holds 12 CLOSE_WAIT sockets",
                                               .sinceUnixSeconds = 1'699'999'910.0,
                                               .groupKind = "process",
                                               .pid = 1,
                                               .startTime = 77,
                                               .unit = "nginx.service"},
                                              {.rule = "cw-crit",
                                               .severity = "critical",
                                               .message = "api[2] holds 900 CLOSE_WAIT sockets",
                                               .sinceUnixSeconds = 1'700'000'000.0,
                                               .groupKind = "pod",
                                               .container = "containerd:0123456789ab",
                                               .containerName = "api",
                                               .pod = "checkout-7d9f-x2k4",
                                               .podNamespace = "payments",
                                               .podUid = "d6b1c0de-0000-4000-8000-00000000abcd"}}));
}

TEST(AlertsJson, ReaderMakesTextPrintableAndNamesWhatIsWrong) {
  auto a = alertsFromJson(nlohmann::json::parse(
      R"({"alerts":[{"rule":"r","severity":"warning","message":"m\u001b[2J","since_unix_seconds":5}]})"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0], (AlertSummary{.rule = "r",
                                   .severity = "warning",
                                   .message = "m?[2J",
                                   .sinceUnixSeconds = 5}));  // no terminal escapes
  EXPECT_EQ(alertsFromJson(nlohmann::json::parse(R"({"alerts":[{"rule":"r","severity":1}]})"))
                .error()
                .message,
            "alerts[0].severity: missing, or not a string");
  EXPECT_EQ(alertsFromJson(nlohmann::json::parse("[]")).error().message,
            "alerts: missing, or not an array");
  EXPECT_EQ(alertsFromJson(nlohmann::json::parse(
                               R"({"alerts":[{"rule":"r","severity":"warning","message":"m",
                                  "since_unix_seconds":"soon"}]})"))
                .error()
                .message,
            "alerts[0].since_unix_seconds: expected a number");
  // Whom it is about is optional (an older daemon), but read strictly where given.
  EXPECT_EQ(alertsFromJson(nlohmann::json::parse(
                               R"({"alerts":[{"rule":"r","severity":"warning","message":"m",
                                  "group":{"pid":-4}}]})"))
                .error()
                .message,
            "alerts[0].group.pid: expected a process id");
  EXPECT_EQ(alertsFromJson(nlohmann::json::parse(
                               R"({"alerts":[{"rule":"r","severity":"warning","message":"m",
                                  "group":{"unit":7}}]})"))
                .error()
                .message,
            "alerts[0].group.unit: expected a string");
}

}  // namespace
}  // namespace waitwatch::api
