// SPDX-License-Identifier: Apache-2.0
#include "service/process_metrics.hpp"

#include <dirent.h>
#include <prometheus/metric_family.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <memory>

#include "sys/file.hpp"

namespace waitwatch {
namespace {

bool toU64(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

prometheus::MetricFamily single(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily f{
      .name = std::move(name), .help = std::move(help), .type = type, .metric = {}};
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

Result<SelfStat> parseSelfStat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return Error{0, "stat: no ')' after the comm field"};
  std::string_view rest = text.substr(close + 1);
  // rest starts at field 3 (state). Collect fields 3..24.
  std::uint64_t values[25] = {};
  int field = 2;
  while (!rest.empty() && field < 24) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find_first_of(" \n");
    const std::string_view token = rest.substr(0, end);
    ++field;
    if (field >= 4 && !toU64(token, values[field])) {
      // Negative fields (priority, nice) are not used; any other non-number is malformed.
      if (field == 14 || field == 15 || field >= 22) {
        return Error{0, "stat: field " + std::to_string(field) + " is not a number: \"" +
                            std::string(token.substr(0, 32)) + "\""};
      }
    }
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (field < 24) return Error{0, "stat: only " + std::to_string(field) + " fields, expected 24+"};
  return SelfStat{.utimeTicks = values[14],
                  .stimeTicks = values[15],
                  .startTimeTicks = values[22],
                  .virtualBytes = values[23],
                  .residentPages = values[24]};
}

Result<std::uint64_t> parseBootTime(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    if (line.starts_with("btime ")) {
      std::uint64_t v = 0;
      if (!toU64(line.substr(6), v)) return Error{0, "stat: malformed btime line"};
      return v;
    }
    pos = eol + 1;
  }
  return Error{0, "stat: no btime line"};
}

ProcessMetrics::ProcessMetrics(std::string procSelf, const std::string& procStat)
    : procSelf_(std::move(procSelf)) {
  if (auto text = readFile(procStat); text.ok()) {
    if (auto bt = parseBootTime(*text); bt.ok()) bootTime_ = static_cast<double>(*bt);
  }
  if (const long t = sysconf(_SC_CLK_TCK); t > 0) ticksPerSecond_ = static_cast<double>(t);
  if (const long p = sysconf(_SC_PAGESIZE); p > 0) pageSize_ = static_cast<double>(p);
}

std::vector<prometheus::MetricFamily> ProcessMetrics::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  if (auto text = readFile(procSelf_ + "/stat"); text.ok()) {
    if (auto st = parseSelfStat(*text); st.ok()) {
      out.push_back(single("process_cpu_seconds_total",
                           "Total user and system CPU time spent in seconds.", MetricType::Counter,
                           static_cast<double>(st->utimeTicks + st->stimeTicks) / ticksPerSecond_));
      out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge, static_cast<double>(st->residentPages) * pageSize_));
      out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                           MetricType::Gauge, static_cast<double>(st->virtualBytes)));
      if (bootTime_ > 0) {
        out.push_back(
            single("process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                   bootTime_ + static_cast<double>(st->startTimeTicks) / ticksPerSecond_));
      }
    }
  }
  const std::string fdDir = procSelf_ + "/fd";
  if (std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(fdDir.c_str()), &::closedir); dir) {
    double open = 0;
    while (const dirent* e = ::readdir(dir.get())) {
      if (e->d_name[0] != '.') ++open;
    }
    // Reading our own fd directory holds one fd for the directory stream itself.
    if (procSelf_ == "/proc/self") open -= 1;
    out.push_back(
        single("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, open));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return out;
}

}  // namespace waitwatch
