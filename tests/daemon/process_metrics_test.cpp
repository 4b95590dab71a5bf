// SPDX-License-Identifier: Apache-2.0
// The process_* metrics: the /proc/self/stat and /proc/stat parsers on real-shaped text, their
// errors, and the collector over a fixture tree.
#include "service/process_metrics.hpp"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace waitwatch {
namespace {

// A /proc/<pid>/stat line as Linux writes it, with a comm that holds spaces and parentheses.
constexpr const char* kStat =
    "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 "
    "987654 123457536 4321 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessMetrics, ParsesTheFieldsAfterTheLastParenthesis) {
  auto s = parseSelfStat(kStat);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->utimeTicks, 250u);
  EXPECT_EQ(s->stimeTicks, 75u);
  EXPECT_EQ(s->startTimeTicks, 987654u);
  EXPECT_EQ(s->virtualBytes, 123457536u);
  EXPECT_EQ(s->residentPages, 4321u);
  // The real file of this process parses too.
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  EXPECT_TRUE(parseSelfStat(line).ok()) << line;
}

TEST(ProcessMetrics, MalformedStatNamesWhatIsWrong) {
  EXPECT_EQ(parseSelfStat("4242 no parenthesis").error().message,
            "stat: no ')' after the comm field");
  EXPECT_EQ(parseSelfStat("4242 (x) S 1 2 3").error().message, "stat: only 6 fields, expected 24+");
  EXPECT_EQ(parseSelfStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 75 0 0 20 0 3 0 9 9 9").error().message,
            "stat: field 14 is not a number: \"abc\"");
}

TEST(ProcessMetrics, BootTimeFromProcStat) {
  EXPECT_EQ(*parseBootTime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000u);
  EXPECT_EQ(parseBootTime("cpu 1\n").error().message, "stat: no btime line");
  EXPECT_EQ(parseBootTime("btime soon\n").error().message, "stat: malformed btime line");
}

// The metrics over a fixture /proc: CPU seconds from ticks, resident bytes from pages, the
// start time from boot time plus start ticks.
TEST(ProcessMetrics, CollectsFromAFixtureTree) {
  const std::filesystem::path dir = ::testing::TempDir() + "ww-process-metrics";
  std::filesystem::create_directories(dir / "self");
  std::ofstream(dir / "self" / "stat") << kStat;
  std::ofstream(dir / "stat") << "cpu 1\nbtime 1700000000\n";
  std::filesystem::create_directories(dir / "self" / "fd");
  for (const char* fd : {"0", "1", "2"})
    std::ofstream(dir / "self" / "fd" / fd) << "";
  const ProcessMetrics metrics((dir / "self").string(), (dir / "stat").string());
  std::map<std::string, double> values;
  for (const auto& f : metrics.Collect()) {
    ASSERT_EQ(f.metric.size(), 1u) << f.name;
    values[f.name] = f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                               : f.metric[0].gauge.value;
  }
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(values.at("process_cpu_seconds_total"), 325 / ticks);
  EXPECT_DOUBLE_EQ(values.at("process_resident_memory_bytes"), 4321 * page);
  EXPECT_DOUBLE_EQ(values.at("process_virtual_memory_bytes"), 123457536);
  EXPECT_DOUBLE_EQ(values.at("process_start_time_seconds"), 1700000000 + 987654 / ticks);
  EXPECT_DOUBLE_EQ(values.at("process_open_fds"), 3);
  EXPECT_GT(values.at("process_max_fds"), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace waitwatch
