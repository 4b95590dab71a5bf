// SPDX-License-Identifier: Apache-2.0
// Fuzz entry over the JSON configuration: compileServiceConfig, then (when it compiles) the rules
// engine driven by that configuration over a few small polls, since values the validator lets
// through (huge durations, tiny ratios) must not break the engine's arithmetic either.
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "fuzz_entries.hpp"
#include "rules/config.hpp"
#include "rules/engine.hpp"
#include "service/service_config.hpp"
#include "support/snapshot_builder.hpp"

namespace waitwatch::fuzz {
namespace {

constexpr std::string_view kOrigin = "fuzz.json";

const char* checkConfig(const Config& c) {
  if (c.pollInterval < Duration(100) || c.pollInterval > Duration(60'000)) {
    return "poll_interval outside 100ms..1m accepted";
  }
  const auto listen = parseListenAddress(c.listen);
  if (!listen) return "listen accepted but parseListenAddress refuses it";
  if (c.metrics.maxGroups == 0 || c.metrics.maxGroups > 100'000) return "max_groups out of range";
  if (c.alerts.reminderInterval.count() < 0) return "negative reminder_interval";
  std::set<std::string> names;
  for (const Rule& r : c.rules) {
    if (r.name.empty() || r.name.size() > 64) return "rule name length";
    if (!isPrintableUtf8(r.name)) return "rule name not printable";
    if (!names.insert(r.name).second) return "duplicate rule name accepted";
    if (r.forDuration.count() < 0 || r.clearFor.count() < 0) return "negative for/clear_for";
    if (r.type == RuleType::CloseWait) {
      if (r.closeWait.minSockets == 0) return "close_wait min_sockets 0 accepted";
      if (r.closeWait.minAge.count() < 0) return "negative min_age";
      if (r.closeWait.growth && *r.closeWait.growth == 0) return "growth 0 accepted";
    } else {
      const TimeWaitRule& t = r.timeWait;
      if (!t.portUsageRatio && !t.minSockets && !t.ratePerSecond && !t.timeWaitOverflow) {
        return "time_wait rule without a threshold accepted";
      }
      if (t.portUsageRatio && !(*t.portUsageRatio > 0 && *t.portUsageRatio <= 1)) {
        return "port_usage_ratio outside (0, 1] accepted";
      }
      if (t.ratePerSecond && !(*t.ratePerSecond > 0)) return "rate_per_second <= 0 accepted";
    }
    for (const Selector* s : {&r.match.include, &r.match.exclude}) {
      for (const auto& range : s->destinationPort)
        if (range.low > range.high) return "port range low > high accepted";
      for (const auto& lp : s->localPort)
        if (!lp.portClass && lp.range.low > lp.range.high) return "port range low > high accepted";
    }
  }
  const std::string summary = c.summary();
  if (!isOneLine(summary)) return "summary is not one printable line";
  return nullptr;
}

// A few polls of a small population under the configuration: a process leaking CLOSE_WAIT
// sockets that grows, a TIME_WAIT pair, counters that rise. Polls far apart in time too, so
// that every `for`, `clear_for`, `min_age` and reminder can elapse.
const char* runEngine(const Config& config) {
  using testing::SnapshotBuilder;
  Engine engine(config);
  TimePoint now = TimePoint{} + std::chrono::hours(24 * 10);
  const Duration steps[] = {Duration(0), config.pollInterval, config.pollInterval,
                            std::chrono::hours(24 * 400), config.pollInterval};
  std::size_t poll = 0;
  for (const Duration step : steps) {
    now += step;
    SnapshotBuilder b(config.pollInterval);
    const auto nginx = b.process(testing::proc(1234, "nginx")
                                     .inUnit("nginx.service")
                                     .inContainer("docker", std::string(64, 'a'))
                                     .listening({8080}));
    b.closeWaitMany(1, 20 + poll * 30, {nginx}, 8080);
    b.timeWaitPair("10.0.0.1", "10.0.0.9:5432", 5000 + static_cast<std::uint32_t>(poll) * 9000, 10,
                   3000);
    b.netns().kernel.timeWaitOverflow = poll * 7;
    const Snapshot s = b.build();
    for (const Alert& a : engine.evaluate(s, now)) {
      if (!isOneLine(a.message)) return "alert message is not one printable line";
      if (a.rule.empty()) return "alert without a rule";
    }
    for (const SocketAge& age : engine.oldestCloseWaitByProcess(s, now)) {
      if (age.age.count() < 0) return "negative CLOSE_WAIT age";
    }
    ++poll;
  }
  // A reload onto the defaults and back keeps working.
  engine.reconfigure(defaultConfig());
  (void)engine.takeDroppedOnReconfigure();
  engine.reconfigure(config);
  return nullptr;
}

const char* listenAddress(std::string_view text) {
  const auto e = parseListenAddress(text);
  if (!e) return nullptr;
  if (text.find('\0') != std::string_view::npos) return "listen address with a NUL accepted";
  if (e->port == 0) return "listen port 0 accepted";
  const auto again = parseListenAddress(e->toString());
  if (!again || *again != *e) return "listen address does not read back";
  return nullptr;
}

}  // namespace

const char* jsonConfig(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const char* e = listenAddress(text)) return e;
  auto config = compileServiceConfig(text, kOrigin);
  if (!config) {
    const std::string& m = config.error().message;
    if (!startsWith(m, std::string(kOrigin) + ": ")) return "error does not name the file";
    if (m.size() <= kOrigin.size() + 2) return "error says nothing after the file name";
    if (!isOneLine(m)) return "error is not one printable line";
    if (m.size() > 4096) return "error longer than 4 KiB";
    return nullptr;
  }
  if (text.find('\0') != std::string_view::npos) {
    return "a configuration with a NUL byte was accepted (the text after it is ignored)";
  }
  if (const char* e = checkConfig(*config)) return e;
  // Compiling is deterministic and does not depend on the origin.
  auto again = compileServiceConfig(text, "");
  if (!again || !(*again == *config)) return "a second compile differs";
  return runEngine(*config);
}

}  // namespace waitwatch::fuzz
