// SPDX-License-Identifier: Apache-2.0
// The Grafana dashboard against the real thing: every PromQL expression of
// packaging/grafana/waitwatch-dashboard.json runs through the HTTP API of a real Prometheus that
// scrapes a real waitwatchd, which watches a private network namespace where sockfarm leaks
// CLOSE_WAIT sockets and leaves TIME_WAIT sockets behind. Each query must succeed and return
// data, every metric it names must be in the daemon's /metrics, and the CLOSE_WAIT panel must
// show the leak's count.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_harness.hpp"
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kLeak = 9;  // CLOSE_WAIT sockets sockfarm leaks

struct Query {
  std::string where;  // "panel \"Poll errors\"" or "variable instance"
  std::string expr;   // PromQL, Grafana variables substituted
  std::string panel;  // the panel title, empty for variables
};

// Grafana's variables as the dashboard sends them with "All" selected (allValue ".*") and a
// rate interval of one minute. Any other variable is an error: the test would not know what the
// query means.
Result<std::string> substituteVariables(std::string expr) {
  const std::pair<std::string_view, std::string_view> known[] = {
      {"${__rate_interval}", "1m"}, {"$__rate_interval", "1m"}, {"${instance}", ".*"},
      {"$instance", ".*"},          {"${job}", ".*"},           {"$job", ".*"},
  };
  for (const auto& [name, value] : known) {
    for (auto at = expr.find(name); at != std::string::npos; at = expr.find(name, at)) {
      expr.replace(at, name.size(), value);
      at += value.size();
    }
  }
  if (const auto at = expr.find('$'); at != std::string::npos) {
    return Error{0, "unknown variable at \"" + expr.substr(at, 24) + "\""};
  }
  return expr;
}

// label_values(METRIC_SELECTOR, LABEL) -> group by (LABEL) (METRIC_SELECTOR): the same series,
// as plain PromQL.
Result<std::string> labelValuesAsPromQL(std::string_view query) {
  constexpr std::string_view kPrefix = "label_values(";
  if (query.substr(0, kPrefix.size()) != kPrefix || query.back() != ')') {
    return Error{0, "not a label_values() query: " + std::string(query)};
  }
  const std::string_view inner = query.substr(kPrefix.size(), query.size() - kPrefix.size() - 1);
  const auto comma = inner.rfind(',');
  if (comma == std::string_view::npos) return Error{0, "label_values() without a label"};
  std::string label(inner.substr(comma + 1));
  label.erase(0, label.find_first_not_of(' '));
  return "group by (" + label + ") (" + std::string(inner.substr(0, comma)) + ")";
}

std::vector<Query> dashboardQueries(const nlohmann::json& dashboard,
                                    std::vector<std::string>& errors) {
  std::vector<Query> out;
  auto add = [&](const std::string& where, const std::string& expr, const std::string& panel) {
    auto substituted = substituteVariables(expr);
    if (!substituted) {
      errors.push_back(where + ": " + substituted.error().message);
      return;
    }
    out.push_back(Query{where, *substituted, panel});
  };
  // Panels, also those nested in rows. (References into `dashboard`: value() would copy.)
  static const nlohmann::json kNone = nlohmann::json::array();
  auto list = [](const nlohmann::json& j, const char* key) -> const nlohmann::json& {
    return j.is_object() && j.contains(key) && j[key].is_array() ? j[key] : kNone;
  };
  std::vector<const nlohmann::json*> panels;
  for (const auto& p : list(dashboard, "panels")) {
    panels.push_back(&p);
    for (const auto& nested : list(p, "panels"))
      panels.push_back(&nested);
  }
  for (const auto* p : panels) {
    const std::string title = p->value("title", "");
    for (const auto& t : list(*p, "targets")) {
      if (t.contains("expr")) add("panel \"" + title + "\"", t["expr"].get<std::string>(), title);
    }
  }
  const nlohmann::json& templating =
      dashboard.is_object() && dashboard.contains("templating") ? dashboard["templating"] : kNone;
  for (const auto& v : list(templating, "list")) {
    if (v.value("type", "") != "query") continue;
    const nlohmann::json& q = v["query"];
    const std::string text = q.is_object() ? q.value("query", "") : q.get<std::string>();
    auto promql = labelValuesAsPromQL(text);
    if (!promql) {
      errors.push_back("variable " + v.value("name", "?") + ": " + promql.error().message);
      continue;
    }
    add("variable " + v.value("name", "?"), *promql, "");
  }
  return out;
}

// The metric names a PromQL expression selects: identifiers outside strings, label matchers,
// ranges and grouping lists that are neither functions, aggregations nor keywords.
std::set<std::string> metricNames(std::string_view expr) {
  static const std::set<std::string_view> kAggregations = {
      "sum",    "min",   "max",          "avg",     "group", "stddev",
      "stdvar", "count", "count_values", "bottomk", "topk",  "quantile"};
  static const std::set<std::string_view> kGroupings = {"by",       "without",    "on",
                                                        "ignoring", "group_left", "group_right"};
  static const std::set<std::string_view> kKeywords = {"bool",   "and",   "or",  "unless",
                                                       "offset", "atan2", "inf", "nan"};
  auto identStart = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto identChar = [&](char c) {
    return identStart(c) || c == ':' || std::isdigit(static_cast<unsigned char>(c));
  };
  auto skipPast = [&](std::size_t i, char close) {
    const auto end = expr.find(close, i);
    return end == std::string_view::npos ? expr.size() : end + 1;
  };
  std::set<std::string> names;
  std::size_t i = 0;
  while (i < expr.size()) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = skipPast(i + 1, c);
    } else if (c == '{') {
      i = skipPast(i, '}');
    } else if (c == '[') {
      i = skipPast(i, ']');
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < expr.size() && (identChar(expr[i]) || expr[i] == '.'))
        ++i;
    } else if (identStart(c)) {
      const std::size_t start = i;
      while (i < expr.size() && identChar(expr[i]))
        ++i;
      const std::string_view word = expr.substr(start, i - start);
      std::size_t next = i;
      while (next < expr.size() && expr[next] == ' ')
        ++next;
      const bool call = next < expr.size() && expr[next] == '(';
      if (kGroupings.count(word) != 0) {
        if (call) i = skipPast(next, ')');  // the label list
      } else if (!call && kAggregations.count(word) == 0 && kKeywords.count(word) == 0) {
        names.emplace(word);
      }
    } else {
      ++i;
    }
  }
  return names;
}

TEST(DashboardQueries, MetricNamesOfAnExpression) {
  EXPECT_EQ(
      metricNames(
          R"(histogram_quantile(0.99, sum by (le, instance) (rate(a_b_bucket{instance=~".*"}[1m]))))"),
      (std::set<std::string>{"a_b_bucket"}));
  EXPECT_EQ(
      metricNames(R"(sum without (pid) (x{state="CLOSE_WAIT"}) / on (netns) group_left y + 2)"),
      (std::set<std::string>{"x", "y"}));
  EXPECT_EQ(labelValuesAsPromQL(R"(label_values(m{job=~"$job"}, instance))").value(),
            R"(group by (instance) (m{job=~"$job"}))");
  EXPECT_FALSE(substituteVariables("rate(x[$__range])").ok());
}

// The sample names of a /metrics text ("waitwatch_poll_duration_seconds_bucket", ...).
std::set<std::string> sampleNames(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

class DashboardTest : public NetnsTest {
 protected:
  // GET /api/v1/query of the Prometheus in the namespace; the parsed answer, or discarded.
  nlohmann::json query(const std::string& promql) {
    std::vector<std::string> argv = netns().execPrefix();
    argv.insert(argv.end(),
                {"curl", "-sS", "--max-time", "5", "-G", "http://127.0.0.1:9090/api/v1/query",
                 "--data-urlencode", "query=" + promql});
    const CommandResult r = runCommand(argv, 10s);
    lastAnswer_ = r.out + r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::string lastAnswer_;
};

TEST_F(DashboardTest, EveryQueryRunsAgainstARealDaemon) {
  if (runCommand({"sh", "-c", "command -v prometheus"}).exitCode != 0) {
    GTEST_SKIP() << "prometheus is not installed (Debian package prometheus)";
  }
  std::ifstream file(WAITWATCH_DASHBOARD);
  ASSERT_TRUE(file) << WAITWATCH_DASHBOARD;
  const auto dashboard = nlohmann::json::parse(file, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << WAITWATCH_DASHBOARD << " is not valid JSON";
  std::vector<std::string> errors;
  const std::vector<Query> queries = dashboardQueries(dashboard, errors);
  for (const auto& e : errors)
    ADD_FAILURE() << e;
  ASSERT_GE(queries.size(), 10u) << "the dashboard has hardly any queries";

  // A leak, TIME_WAIT toward one destination (the ephemeral port panels), a firing alert.
  auto farm = SockFarm::start(
      netns(), {"--close-wait", std::to_string(kLeak), "--time-wait", "40", "--established", "2"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  // A process whose open files grow (the fd forecast panel), far from its limit.
  auto leak = SockFarm::startProgram(netns(), WAITWATCH_FDLEAK_PATH,
                                     {"--port", "8300", "--rate", "20", "--nofile", "5000"});
  ASSERT_TRUE(leak.ok()) << leak.error().message;
  auto run = DaemonRun::start(netns(), R"({
    "poll_interval": "200ms", "forecast": {"window": "2s"},
    "rules": [{"name": "dashboard-leak", "type": "close_wait", "min_sockets": 5,
               "min_age": "0s", "for": "0s", "clear_for": "0s",
               "match": {"exclude": {"comm": "fdleak"}}}]
  })");
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();
  ASSERT_TRUE(run->waitNotification("1 alert firing", 10s)) << run->process().stderrText();
  CommandResult metrics;
  ASSERT_TRUE(eventually(
      [&] {
        metrics = run->http("/metrics");
        return metrics.out.find("\nwaitwatch_process_fd_exhaustion_seconds{") != std::string::npos;
      },
      10s))
      << metrics.describe();
  ASSERT_EQ(metrics.exitCode, 0) << metrics.describe();
  const std::set<std::string> exported = sampleNames(metrics.out);

  const fs::path dir = run->dir() / "prometheus";
  fs::create_directories(dir / "data");
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n"
                                           "scrape_configs:\n  - job_name: waitwatch\n"
                                           "    static_configs:\n      - targets: ['127.0.0.1:"
                                        << run->port() << "']\n";
  auto prometheus = spawnPrometheus(netns(), dir);
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().message;

  // rate() over the dashboard's 1m needs two scrapes in the window; wait for three.
  const bool scraped = eventually(
      [&] {
        const auto j = query(R"(count_over_time(up{job="waitwatch"}[1m]) >= 3 and up == 1)");
        return !j.is_discarded() && j.value("status", "") == "success" &&
               !j["data"]["result"].empty();
      },
      30s);
  ASSERT_TRUE(scraped) << lastAnswer_ << "\n" << prometheus->stderrText().substr(0, 2000);

  for (const Query& q : queries) {
    SCOPED_TRACE(q.where + ": " + q.expr);
    for (const auto& name : metricNames(q.expr)) {
      EXPECT_EQ(exported.count(name), 1u) << name << " is not in the daemon's /metrics";
    }
    const auto answer = query(q.expr);
    ASSERT_FALSE(answer.is_discarded()) << lastAnswer_;
    EXPECT_EQ(answer.value("status", ""), "success") << lastAnswer_;
    EXPECT_FALSE(answer["data"]["result"].empty()) << "no data: " << lastAnswer_;

    if (q.panel == "CLOSE_WAIT sockets per process") {
      std::string count;
      for (const auto& series : answer["data"]["result"]) {
        if (series["metric"].value("comm", "") == "sockfarm") {
          count = series["value"][1].get<std::string>();
        }
      }
      EXPECT_EQ(count, std::to_string(kLeak)) << lastAnswer_;
    }
  }
  // The panel the leak shows in is there (the check above ran).
  EXPECT_TRUE(std::any_of(queries.begin(), queries.end(), [](const Query& q) {
    return q.panel == "CLOSE_WAIT sockets per process";
  }));
}

}  // namespace
}  // namespace waitwatch::testing
