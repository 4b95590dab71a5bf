// SPDX-License-Identifier: Apache-2.0
#include "state/state_file.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "state/engine_state_json.hpp"

namespace waitwatch::state {
namespace {

// An alert with every field set, so that a field the writer or reader forgets shows.
Alert fullAlert() {
  Alert a;
  a.severity = Severity::Critical;
  a.group = AlertGroup{GroupKind::Unit,
                       0,
                       77,
                       "nginx",
                       "www-data",
                       "nginx.service",
                       "docker:0123456789ab",
                       "blue",
                       4026532001,
                       3,
                       "web-1",
                       "checkout-1",
                       "payments"};
  a.reasons = {AlertReason::OldSockets, AlertReason::FdExhaustion};
  a.count = 12;
  a.oldestAge = Duration(93'000);
  a.oldestAgeIsLowerBound = true;
  a.localPorts = {{8080, 10}, {8443, 2}};
  a.peers = {{Endpoint{*IpAddress::parse("10.0.0.7"), 0}, 9},
             {Endpoint{*IpAddress::parse("fd00::1"), 5432}, 3}};
  a.closeWait.total = 14;
  a.closeWait.growth = 4;
  a.closeWait.peak = 15;
  a.closeWait.clientSide = 3;
  a.closeWait.kinds = CloseWaitKinds{{10, 3, 1}};
  a.closeWait.fds = FdDetails{1234, "nginx", 300, 1024, FdForecast{12.5, Duration(3'480'000)}};
  TimeWaitDetails& t = a.timeWait;
  t.source = *IpAddress::parse("10.0.0.1");
  t.destination = Endpoint{*IpAddress::parse("10.0.0.9"), 5432};
  t.portUsageRatio = 0.25;
  t.live = 7;
  t.usablePorts = 28232;
  t.ratePerSecond = 33.5;
  t.maxTimeWaitBuckets = 131072;
  t.overflowDelta = 2;
  t.overflowTotal = 9;
  t.newestServerSide = true;
  t.newestAt = Endpoint{*IpAddress::parse("::1"), 80};
  t.newest = 40;
  t.closersTracked = true;
  t.closerTimeWait = 100;
  t.closerRatePerSecond = 1.5;
  t.closerUnknown = 6;
  return a;
}

EngineState fullState() {
  SavedGroup firing;
  firing.key = "unit:nginx.service:4026532001";
  firing.firing = true;
  firing.sinceMs = 1000;
  firing.firedAtMs = 2000;
  firing.lastNotifiedMs = 2500;
  firing.falseSinceMs = 2600;
  firing.peak = 15;
  firing.firedReasons = {AlertReason::OldSockets};
  firing.history = {{1500, 3}, {1700, 9}};
  firing.alert = fullAlert();
  SavedGroup pending;
  pending.key = "process:1@2:3";
  pending.pendingSinceMs = 2700;
  pending.alert = Alert{};
  SavedGroup idle;
  idle.key = "process:9@9:9";
  idle.history = {{100, 1}};
  EngineState s;
  s.rules = {SavedRule{"leak", RuleType::CloseWait, {firing, pending, idle}},
             SavedRule{"storm", RuleType::TimeWait, {}}};
  s.fdHistories = {SavedFdHistory{ProcessKey{1234, 77}, {{1000, 200}, {2000, 260}}}};
  s.tcpMemory = {{1000, 5000}, {2000, 5100}};
  return s;
}

const StateHeader kHeader{*parseBootId("0f5c3a4e-9b1d-4c2e-8a7f-112233445566"), 123'456,
                          1'790'000'000'000};

std::string encode(const StateHeader& h, const std::vector<SavedAge>& ages, const EngineState& e) {
  std::string out;
  auto r = writeState(
      h, ages.size(),
      [&](auto yield) {
        for (const SavedAge& a : ages)
          yield(a);
      },
      e,
      [&](std::string_view b) {
        out.append(b);
        return true;
      });
  EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

std::vector<SavedAge> manyAges(std::size_t n) {
  std::vector<SavedAge> ages;
  for (std::size_t i = 0; i < n; ++i)
    ages.push_back(SavedAge{0x1000 + i * 7, static_cast<std::int64_t>(1000 + i), i % 3 == 0});
  return ages;
}

TEST(StateFile, WhatIsWrittenReadsBackTheSame) {
  // More ages than one 64 KiB buffer holds.
  const auto ages = manyAges(10'000);
  const std::string bytes = encode(kHeader, ages, fullState());
  EXPECT_EQ(bytes.substr(0, 16), "WAITWATCH-STATE\n");
  auto back = readState(bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->header, kHeader);
  EXPECT_EQ(back->ages, ages);
  EXPECT_EQ(back->engine, fullState());
  // The same state writes the same bytes.
  EXPECT_EQ(encode(kHeader, ages, fullState()), bytes);
}

TEST(StateFile, EveryTruncationAndEveryDamagedByteIsRefused) {
  const std::string bytes = encode(kHeader, manyAges(3), fullState());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = readState(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << "truncated to " << n << " bytes";
    EXPECT_FALSE(r.error().message.empty());
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
    EXPECT_FALSE(readState(damaged).ok()) << "byte " << i << " changed";
  }
  EXPECT_FALSE(readState(bytes + "x").ok());
}

TEST(StateFile, ErrorsSayWhatIsWrong) {
  EXPECT_EQ(readState("").error().message,
            "not a waitwatch state file (it does not begin with \"WAITWATCH-STATE\")");
  EXPECT_EQ(readState(std::string(200, 'x')).error().message,
            "not a waitwatch state file (it does not begin with \"WAITWATCH-STATE\")");
  std::string v2 = encode(kHeader, {}, {});
  v2[16] = 2;
  EXPECT_EQ(readState(v2).error().message, "version 2, this waitwatchd reads version 1");
  const std::string ok = encode(kHeader, manyAges(2), {});
  EXPECT_EQ(readState(ok.substr(0, 80)).error().message,
            "truncated: the record at byte 56 says 32 bytes, 8 are left");
  std::string crc = ok;
  crc[60] ^= 1;  // inside the first age
  EXPECT_EQ(readState(crc).error().message, "its checksum does not match: the file is damaged");
}

// The JSON part names the first wrong field by its path.
TEST(StateFile, TheRulesStateNamesTheWrongField) {
  nlohmann::json j = engineStateToJson(fullState());
  j["rules"][0]["groups"][0]["alert"]["peers"][1]["endpoint"]["port"] = 70000;
  EXPECT_EQ(engineStateFromJson(j).error().message,
            "state.rules[0].groups[0].alert.peers[1].endpoint.port: expected an integer from 0 to "
            "65535");
  j = engineStateToJson(fullState());
  j["rules"][0]["groups"][0]["fired_reasons"][0] = "sunspots";
  EXPECT_EQ(engineStateFromJson(j).error().message,
            "state.rules[0].groups[0].fired_reasons[0]: \"sunspots\" is not a name this waitwatchd "
            "knows");
  j = engineStateToJson(fullState());
  j["rules"][1].erase("type");
  EXPECT_EQ(engineStateFromJson(j).error().message, "state.rules[1].type: missing");
  EXPECT_EQ(engineStateFromJson(nlohmann::json::array()).error().message,
            "state: expected an object");
}

// Records of kinds a later version may add are skipped.
TEST(StateFile, UnknownRecordsAreSkipped) {
  const std::string plain = encode(kHeader, manyAges(1), fullState());
  // A record of kind 99 with 5 bytes after the header, and the end record's CRC made again.
  std::string record("\x63\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0hello", 21);
  std::string body = plain.substr(0, 56) + record + plain.substr(56, plain.size() - 56 - 4);
  const auto crc = static_cast<std::uint32_t>(::crc32(::crc32(0, nullptr, 0),
                                                      reinterpret_cast<const Bytef*>(body.data()),
                                                      static_cast<uInt>(body.size())));
  for (int i = 0; i < 4; ++i)
    body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  auto r = readState(body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->ages, manyAges(1));
  EXPECT_EQ(r->engine, fullState());
}

TEST(StateFile, BootIds) {
  const auto id = parseBootId("0f5c3a4e-9b1d-4c2e-8a7f-112233445566\n");
  ASSERT_TRUE(id);
  EXPECT_EQ((*id)[0], 0x0f);
  EXPECT_EQ((*id)[15], 0x66);
  EXPECT_EQ(parseBootId("0f5c3a4e9b1d4c2e8a7f112233445566"), id);
  EXPECT_FALSE(parseBootId("0f5c3a4e-9b1d-4c2e-8a7f-11223344556"));
  EXPECT_FALSE(parseBootId("0f5c3a4e-9b1d-4c2e-8a7f-1122334455667"));
  EXPECT_FALSE(parseBootId("0f5c3a4e-9b1d-4c2e-8a7f-11223344556g"));
  EXPECT_FALSE(parseBootId(""));
}

}  // namespace
}  // namespace waitwatch::state
