// SPDX-License-Identifier: Apache-2.0
// The Grafana dashboard and the alerting rules against the real thing: a real Prometheus scrapes
// a real waitwatchd that watches two private network namespaces holding the same (source,
// destination) pair and the same program leaking CLOSE_WAIT sockets, in different amounts.
//  - Every PromQL expression of packaging/grafana/waitwatch-dashboard.json must succeed and
//    return data, every metric it names must be in the daemon's /metrics, every per-group series
//    must keep its namespace (never the two added together), and every legend must read as a
//    name (no "()", nothing empty).
//  - packaging/prometheus/waitwatch-rules.yml, loaded with its `for:` durations dropped so that
//    what the data reaches fires at once: every rule evaluates cleanly, the port exhaustion alert
//    fires for the namespace near exhaustion only and names it, and every annotation of a firing
//    alert reads as a sentence (no empty parentheses, no doubled spaces, no raw floats).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "daemon_harness.hpp"
#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kLeak = 9;            // CLOSE_WAIT sockets sockfarm leaks in the first namespace
constexpr int kOtherLeak = 4;       // and in the second
constexpr int kTimeWait = 90;       // TIME_WAIT sockets 127.0.0.1 -> 127.0.0.1:8080 in the first
constexpr int kOtherTimeWait = 20;  // and in the second
// The first namespace's ephemeral range has 100 ports, so 90 TIME_WAIT sockets use 90% of it;
// the second's 10,000, where 20 use 0.2% and a leak of connections grows freely.
constexpr const char* kPortRange = "40000 40099";
constexpr const char* kOtherPortRange = "40000 49999";

struct Query {
  std::string where;   // "panel \"Poll errors\"" or "variable instance"
  std::string expr;    // PromQL, Grafana variables substituted
  std::string panel;   // the panel title, empty for variables
  std::string legend;  // the target's legendFormat, empty where none
};

// Grafana's variables as the dashboard sends them with "All" selected (allValue ".*") and a
// rate interval of one minute. Any other variable is an error: the test would not know what the
// query means.
Result<std::string> substituteVariables(std::string expr) {
  const std::pair<std::string_view, std::string_view> known[] = {
      {"${__rate_interval}", "1m"}, {"$__rate_interval", "1m"}, {"${instance}", ".*"},
      {"$instance", ".*"},          {"${job}", ".*"},           {"$job", ".*"},
      {"${netns}", ".*"},           {"$netns", ".*"},
  };
  for (const auto& [name, value] : known) {
    for (auto at = expr.find(name); at != std::string::npos; at = expr.find(name, at)) {
      expr.replace(at, name.size(), value);
      at += value.size();
    }
  }
  // "$1" is label_replace's reference to a capture group, not a variable.
  for (auto at = expr.find('$'); at != std::string::npos; at = expr.find('$', at + 1)) {
    if (at + 1 < expr.size() && std::isdigit(static_cast<unsigned char>(expr[at + 1]))) continue;
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
  auto add = [&](const std::string& where, const std::string& expr, const std::string& panel,
                 const std::string& legend) {
    auto substituted = substituteVariables(expr);
    if (!substituted) {
      errors.push_back(where + ": " + substituted.error().message);
      return;
    }
    out.push_back(Query{where, *substituted, panel, legend});
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
      if (t.contains("expr")) {
        add("panel \"" + title + "\"", t["expr"].get<std::string>(), title,
            t.value("legendFormat", ""));
      }
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
    add("variable " + v.value("name", "?"), *promql, "", "");
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
  EXPECT_EQ(
      substituteVariables(R"x(label_replace(x{netns=~"$netns"}, "a", "$1", "b", "(.*)"))x").value(),
      R"x(label_replace(x{netns=~".*"}, "a", "$1", "b", "(.*)"))x");
}

// A legend as Grafana draws it for one series: each {{label}} replaced by its value.
std::string renderLegend(std::string legend, const nlohmann::json& labels) {
  for (auto open = legend.find("{{"); open != std::string::npos; open = legend.find("{{", open)) {
    const auto close = legend.find("}}", open);
    if (close == std::string::npos) break;
    std::string name = legend.substr(open + 2, close - open - 2);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    const std::string value = labels.value(name, "");
    legend.replace(open, close + 2 - open, value);
    open += value.size();
  }
  return legend;
}

// What reads badly in a sentence or a legend: a label that was empty, a number as a float.
std::string badText(const std::string& text) {
  if (text.empty()) return "empty";
  if (text.find("()") != std::string::npos) return "empty parentheses";
  if (text.find("  ") != std::string::npos) return "a doubled space (an empty value)";
  if (text.front() == ' ' || text.back() == ' ') return "a space at an end (an empty value)";
  if (text.find(" ,") != std::string::npos || text.find("( ") != std::string::npos) {
    return "a gap where a value should be";
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '.' || i == 0 || !std::isdigit(static_cast<unsigned char>(text[i - 1])))
      continue;
    std::size_t digits = 0;
    while (i + 1 + digits < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[i + 1 + digits])))
      ++digits;
    if (digits > 3) return "a raw float";
  }
  return {};
}

TEST(DashboardQueries, LegendsAndBadText) {
  EXPECT_EQ(
      renderLegend("{{who}} in {{netns}} @ {{ instance }}",
                   {{"who", "nginx (nginx.service)"}, {"netns", "host"}, {"instance", "h:1"}}),
      "nginx (nginx.service) in host @ h:1");
  EXPECT_EQ(badText(renderLegend("{{comm}} ({{unit}})", {{"comm", "curl"}})), "empty parentheses");
  EXPECT_EQ(badText(renderLegend("{{unit}} @ {{instance}}", {{"instance", "h:1"}})),
            "a space at an end (an empty value)");
  EXPECT_EQ(badText("holds 785.1537406015038 sockets"), "a raw float");
  EXPECT_EQ(badText("closes 116.7 connections a second; 0.5% of 28232"), "");
}

// The legends' `who` label for every combination of unit and container, and for the groups the
// exporter folds into "other", computed by promtool from the dashboard's own expressions.
TEST(DashboardLegends, WhoNamesEveryOwner) {
  if (runCommand({"sh", "-c", "command -v promtool"}).exitCode != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
  }
  std::ifstream file(WAITWATCH_DASHBOARD);
  const auto dashboard = nlohmann::json::parse(file, nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded());
  std::vector<std::string> errors;
  std::string perProcess;
  std::string perUnit;
  for (const Query& q : dashboardQueries(dashboard, errors)) {
    if (q.panel == "CLOSE_WAIT sockets per process") perProcess = q.expr;
    if (q.panel == "CLOSE_WAIT sockets per unit or container") perUnit = q.expr;
  }
  ASSERT_FALSE(perProcess.empty());
  ASSERT_FALSE(perUnit.empty());
  struct Owner {
    std::string comm, unit, container;
    int sockets;
    std::string podNamespace{}, pod{};
  };
  const std::vector<Owner> processes = {
      {"a", "", "", 1},
      {"b", "u.service", "", 2},
      {"c", "", "docker:1", 3},
      {"d", "u.service", "docker:2", 4},
      {"e", "", "docker:1", 5},
      {"other", "other", "other", 6},
      {"f", "cri-containerd-1.scope", "api", 7, "payments", "checkout-1"}};
  auto quoted = [](std::string text) {  // a YAML single-quoted scalar
    for (auto at = text.find('\''); at != std::string::npos; at = text.find('\'', at + 2))
      text.insert(at, "'");
    return "'" + text + "'";
  };
  std::string test =
      "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
      "    input_series:\n";
  auto labels = [](const Owner& o) {
    std::string l = "instance=\"h:9929\",job=\"waitwatch\",netns=\"host\",comm=\"" + o.comm +
                    "\",unit=\"" + o.unit + "\",container=\"" + o.container + "\"";
    if (!o.pod.empty()) l += ",namespace=\"" + o.podNamespace + "\",pod=\"" + o.pod + "\"";
    return l;
  };
  for (const Owner& o : processes) {
    test += "      - series: " +
            quoted("waitwatch_process_sockets{" + labels(o) + ",state=\"CLOSE_WAIT\"}") +
            "\n        values: '" + std::to_string(o.sockets) + "'\n";
  }
  test += "    promql_expr_test:\n      - expr: " + quoted(perProcess) +
          "\n        eval_time: 0m\n        exp_samples:\n";
  const std::vector<std::string> who = {"a",
                                        "b (u.service)",
                                        "c (docker:1)",
                                        "d (u.service, docker:2)",
                                        "e (docker:1)",
                                        "other (folded)",
                                        "f (pod payments/checkout-1, container api)"};
  for (std::size_t i = 0; i < processes.size(); ++i) {
    const Owner& o = processes[i];
    // What `sum by` keeps: no job, and no label that was empty.
    std::string kept = "instance=\"h:9929\",netns=\"host\",comm=\"" + o.comm + "\"";
    if (!o.unit.empty()) kept += ",unit=\"" + o.unit + "\"";
    if (!o.container.empty()) kept += ",container=\"" + o.container + "\"";
    if (!o.pod.empty()) kept += ",namespace=\"" + o.podNamespace + "\",pod=\"" + o.pod + "\"";
    test += "          - labels: " + quoted("{" + kept + ",who=\"" + who[i] + "\"}") +
            "\n            value: " + std::to_string(o.sockets) + "\n";
  }
  // Per unit, container or pod: c and e share a container; a process in neither is named.
  test += "      - expr: " + quoted(perUnit) + "\n        eval_time: 0m\n        exp_samples:\n";
  for (const auto& [name, n] :
       std::vector<std::pair<std::string, int>>{{"a (no unit)", 1},
                                                {"u.service", 2},
                                                {"docker:1", 8},
                                                {"docker:2", 4},
                                                {"other (folded)", 6},
                                                {"pod payments/checkout-1, container api", 7}}) {
    test += "          - labels: " +
            quoted("{instance=\"h:9929\",netns=\"host\",who=\"" + name + "\"}") +
            "\n            value: " + std::to_string(n) + "\n";
  }
  char dir[] = "/tmp/waitwatch-legends-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/legends.test.yml";
  std::ofstream(path) << test;
  const CommandResult r = runCommand({"promtool", "test", "rules", path});
  EXPECT_EQ(r.exitCode, 0) << r.out << r.err << "\n" << test;
  std::error_code ec;
  fs::remove_all(dir, ec);
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
    std::vector<std::string> argv = prometheusNetns_->execPrefix();
    argv.insert(argv.end(),
                {"curl", "-sS", "--max-time", "5", "-G", "http://127.0.0.1:9090/api/v1/query",
                 "--data-urlencode", "query=" + promql});
    const CommandResult r = runCommand(argv, 10s);
    lastAnswer_ = r.out + r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::string lastAnswer_;
  const NetworkNamespace* prometheusNetns_ = nullptr;
};

// The rules file with every `for:` dropped: an alert fires as soon as its expression holds.
std::string rulesFiringAtOnce(const std::string& path) {
  std::ifstream in(path);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    const auto text = line.find_first_not_of(' ');
    if (text != std::string::npos && line.compare(text, 5, "for: ") == 0) continue;
    out += line + '\n';
  }
  return out;
}

TEST_F(DashboardTest, EveryQueryKeepsNamespacesApartAndEveryAlertReadsWell) {
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

  // Two namespaces with the same pair 127.0.0.1 -> 127.0.0.1:8080: 90% of the ports in one,
  // 0.2% in the other. The daemon, Prometheus and the test's requests run in the second: in the
  // first, each request's TIME_WAIT socket would take one of the few ports left.
  auto other = NetworkNamespace::create();
  ASSERT_TRUE(other.ok()) << other.error().message;
  for (const auto& [ns, range] : {std::pair{&netns(), kPortRange}, {&*other, kOtherPortRange}}) {
    const auto r = ns->run({"sysctl", "-qw", std::string("net.ipv4.ip_local_port_range=") + range});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }
  // A process whose open files grow (the fd forecast panel and alert), far from its limit.
  auto leak = SockFarm::startProgram(*other, WAITWATCH_FDLEAK_PATH,
                                     {"--port", "8300", "--rate", "20", "--nofile", "5000"});
  ASSERT_TRUE(leak.ok()) << leak.error().message;
  // Every namespace of the host (other tests' too): the groups of ours must not be folded.
  auto run = DaemonRun::start(*other, R"({
    "poll_interval": "200ms", "forecast": {"window": "2s"}, "namespaces": "all",
    "metrics": {"max_groups": 100000},
    "rules": [{"name": "dashboard-leak", "type": "close_wait", "min_sockets": 5,
               "min_age": "0s", "for": "0s", "clear_for": "0s",
               "match": {"exclude": {"comm": "fdleak"}}}]
  })");
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->waitNotification("READY=1", 15s)) << run->process().stderrText();

  const fs::path dir = run->dir() / "prometheus";
  fs::create_directories(dir / "data");
  std::ofstream(dir / "rules.yml") << rulesFiringAtOnce(WAITWATCH_PROMETHEUS_RULES);
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n"
                                           "  evaluation_interval: 1s\n"
                                           "rule_files: [rules.yml]\n"
                                           "scrape_configs:\n  - job_name: waitwatch\n"
                                           "    static_configs:\n      - targets: ['127.0.0.1:"
                                        << run->port() << "']\n";
  prometheusNetns_ = &*other;
  auto prometheus = spawnPrometheus(*other, dir);
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

  // Only now the TIME_WAIT sockets, which live 60 s: what follows must see them all.
  auto farm = SockFarm::start(
      netns(), {"--close-wait", std::to_string(kLeak), "--time-wait", std::to_string(kTimeWait)});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto otherFarm = SockFarm::start(*other, {"--close-wait", std::to_string(kOtherLeak),
                                            "--time-wait", std::to_string(kOtherTimeWait)});
  ASSERT_TRUE(otherFarm.ok()) << otherFarm.error().message;
  const auto farmsReady = std::chrono::steady_clock::now();
  auto withinTimeWait = [&] {
    const auto took = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - farmsReady);
    EXPECT_LT(took, 55s) << "the checks took " << took.count()
                         << " s: the TIME_WAIT sockets they count expire after 60 s";
  };
  // The first farm's alert (the second leaks fewer than min_sockets) in /metrics itself: the
  // daemon polls every namespace of the host, so an "alert firing" status may be another test's
  // leak, gone again by the time of the scrape.
  CommandResult metrics;
  const std::string ourAlert = "netns=\"" + netns().name() + "\",rule=\"dashboard-leak\"";
  ASSERT_TRUE(eventually(
      [&] {
        metrics = run->http("/metrics");
        return metrics.out.find("\nwaitwatch_process_fd_exhaustion_seconds{") !=
                   std::string::npos &&
               metrics.out.find(ourAlert) != std::string::npos;
      },
      10s))
      << metrics.describe() << run->process().stderrText();
  ASSERT_EQ(metrics.exitCode, 0) << metrics.describe();
  const std::set<std::string> exported = sampleNames(metrics.out);
  // Prometheus has scraped both farms whole (sockfarm builds TIME_WAIT last): a scrape from before
  // the second farm was ready would count part of it.
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& [ns, n] :
             {std::pair{netns().name(), kTimeWait}, std::pair{other->name(), kOtherTimeWait}}) {
          const auto j = query("waitwatch_time_wait_destination_sockets{netns=\"" + ns +
                               "\", destination=\"127.0.0.1:8080\"} == " + std::to_string(n));
          if (j.is_discarded() || j["data"]["result"].empty()) return false;
        }
        return true;
      },
      10s))
      << lastAnswer_;

  const std::string ours = netns().name();
  const std::string theirs = other->name();
  for (const Query& q : queries) {
    SCOPED_TRACE(q.where + ": " + q.expr);
    for (const auto& name : metricNames(q.expr)) {
      EXPECT_EQ(exported.count(name), 1u) << name << " is not in the daemon's /metrics";
    }
    const auto answer = query(q.expr);
    ASSERT_FALSE(answer.is_discarded())
        << lastAnswer_ << "\nPrometheus: " << prometheus->stderrText().substr(0, 4000);
    EXPECT_EQ(answer.value("status", ""), "success") << lastAnswer_;
    const auto& result = answer["data"]["result"];
    EXPECT_FALSE(result.empty()) << "no data: " << lastAnswer_;
    // Per-namespace data keeps its namespace in every series, and legends read as names.
    const bool perNamespace = q.expr.find("netns") != std::string::npos && !q.panel.empty();
    std::map<std::string, std::map<std::string, double>> byPair;  // "source -> destination"
    std::map<std::string, double> sockfarm;                       // netns -> CLOSE_WAIT
    for (const auto& series : result) {
      const auto& labels = series["metric"];
      if (perNamespace) {
        EXPECT_FALSE(labels.value("netns", "").empty()) << "no namespace: " << series.dump();
      }
      if (!q.legend.empty()) {
        const std::string legend = renderLegend(q.legend, labels);
        EXPECT_EQ(badText(legend), "") << "legend \"" << legend << "\" of " << series.dump();
      }
      if (!series.contains("value")) continue;
      const double value = std::stod(series["value"][1].get<std::string>());
      const std::string ns = labels.value("netns", "");
      if (labels.contains("source") && labels.contains("destination")) {
        byPair[labels.value("source", "") + " -> " + labels.value("destination", "")][ns] = value;
      }
      if (labels.value("comm", "") == "sockfarm") sockfarm[ns] += value;
    }
    const std::string pair = "127.0.0.1 -> 127.0.0.1:8080";
    if (q.panel == "TIME_WAIT by destination") {
      EXPECT_EQ(byPair[pair][ours], kTimeWait) << lastAnswer_;
      EXPECT_EQ(byPair[pair][theirs], kOtherTimeWait) << lastAnswer_;
    }
    if (q.panel == "Ephemeral port usage by destination") {
      // 90 TIME_WAIT sockets of 100 ports, against 20 of 10,000.
      EXPECT_NEAR(byPair[pair][ours], kTimeWait / 100.0, 0.0001) << lastAnswer_;
      EXPECT_NEAR(byPair[pair][theirs], kOtherTimeWait / 10000.0, 0.0001) << lastAnswer_;
    }
    if (q.panel == "CLOSE_WAIT sockets per process") {
      EXPECT_EQ(sockfarm[ours], kLeak) << lastAnswer_;
      EXPECT_EQ(sockfarm[theirs], kOtherLeak) << lastAnswer_;
    }
  }
  for (const char* panel : {"TIME_WAIT by destination", "Ephemeral port usage by destination",
                            "CLOSE_WAIT sockets per process"}) {
    EXPECT_TRUE(std::any_of(queries.begin(), queries.end(),
                            [&](const Query& q) { return q.panel == panel; }))
        << "no panel " << panel;
  }

  // The rules: all evaluate; the port alert fires in our namespace only; the fd forecast and
  // CLOSE_WAIT growth of fdleak (no unit, no container) fire too.
  nlohmann::json alerts;
  const bool fired = eventually(
      [&] {
        alerts = query("ALERTS{alertstate=\"firing\"}");
        std::set<std::string> names;
        for (const auto& a : alerts["data"]["result"]) {
          const std::string ns = a["metric"].value("netns", "");
          if (ns == ours || ns == theirs) names.insert(a["metric"].value("alertname", ""));
        }
        return names.count("WaitwatchEphemeralPortExhaustion") == 1 &&
               names.count("WaitwatchFdExhaustion") == 1 &&
               names.count("WaitwatchCloseWaitGrowing") == 1;
      },
      30s);
  ASSERT_TRUE(fired) << lastAnswer_;
  std::vector<std::string> argv = other->execPrefix();
  argv.insert(argv.end(), {"curl", "-sS", "--max-time", "5", "http://127.0.0.1:9090/api/v1/rules"});
  auto r = runCommand(argv, 10s);
  const auto rules = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(rules.is_discarded()) << r.describe();
  std::size_t evaluated = 0;
  for (const auto& group : rules["data"]["groups"]) {
    for (const auto& rule : group["rules"]) {
      ++evaluated;
      EXPECT_EQ(rule.value("health", ""), "ok") << rule.dump();
    }
  }
  EXPECT_GE(evaluated, 13u);
  argv.back() = "http://127.0.0.1:9090/api/v1/alerts";
  r = runCommand(argv, 10s);
  const auto firing = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(firing.is_discarded()) << r.describe();
  std::size_t portAlerts = 0;
  for (const auto& a : firing["data"]["alerts"]) {
    if (a.value("state", "") != "firing") continue;
    // The daemon watches every namespace: tests running beside this one have theirs.
    const std::string netnsLabel = a["labels"].value("netns", "");
    if (!netnsLabel.empty() && netnsLabel != ours && netnsLabel != theirs) continue;
    const std::string name = a["labels"].value("alertname", "");
    for (const char* key : {"summary", "description"}) {
      const std::string text = a["annotations"].value(key, "");
      EXPECT_EQ(badText(text), "") << name << " " << key << ": \"" << text << "\"";
    }
    if (name == "WaitwatchEphemeralPortExhaustion") {
      ++portAlerts;
      EXPECT_EQ(a["labels"].value("netns", ""), ours) << a.dump();
      EXPECT_NE(a["annotations"].value("summary", "").find("network namespace " + ours),
                std::string::npos)
          << a.dump();
    }
    if (name == "WaitwatchFdExhaustion") {
      EXPECT_EQ(a["annotations"].value("summary", "").rfind("fdleak on ", 0), 0u) << a.dump();
    }
  }
  EXPECT_EQ(portAlerts, 1u) << firing.dump();
  withinTimeWait();
}

}  // namespace
}  // namespace waitwatch::testing
