// SPDX-License-Identifier: Apache-2.0
// The Prometheus rendering of a hand-built poll: exact sample lines, label caps, and a
// `promtool check metrics` run over the whole /metrics output.
#include "service/exporter.hpp"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "service/api.hpp"
#include "service/health.hpp"
#include "service/process_metrics.hpp"
#include "support/sample_poll.hpp"

namespace waitwatch {
namespace {

std::string render(const PollView& view, const MetricsOptions& options) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, buildPollFamilies(view, options));
  return out.str();
}

// The sample lines of one family (name followed by '{' or ' '), in output order.
std::vector<std::string> samples(const std::string& text, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

TEST(Exporter, SocketsByNamespaceHasEveryState) {
  const auto view = testing::sampleView();
  const auto lines = samples(render(*view, MetricsOptions{}), "waitwatch_sockets");
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      R"(waitwatch_sockets{netns="net:[4026531840]",state="CLOSE_WAIT"} 3)"),
            lines.end());
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      R"(waitwatch_sockets{netns="net:[4026531840]",state="SYN_SENT"} 0)"),
            lines.end());
}

TEST(Exporter, ProcessGroupsSumWorkersWithoutPid) {
  const auto view = testing::sampleView();
  const auto lines = samples(render(*view, MetricsOptions{}), "waitwatch_process_sockets");
  const std::vector<std::string> expected = {
      R"(waitwatch_process_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",state="CLOSE_WAIT"} 3)",
      R"(waitwatch_process_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",state="ESTABLISHED"} 4)",
      R"(waitwatch_process_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",state="LISTEN"} 2)",
      R"(waitwatch_process_sockets{comm="redis-server",container="",netns="net:[4026531840]",unit="redis.service",state="CLOSE_WAIT"} 0)",
      R"(waitwatch_process_sockets{comm="redis-server",container="",netns="net:[4026531840]",unit="redis.service",state="ESTABLISHED"} 1)",
  };
  EXPECT_EQ(lines, expected);
  // The kinds of both workers' CLOSE_WAIT sockets (2 + 1), every kind; none for redis.
  EXPECT_EQ(
      samples(render(*view, MetricsOptions{}), "waitwatch_process_close_wait_sockets"),
      (std::vector<std::string>{
          R"(waitwatch_process_close_wait_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",kind="abandoned"} 2)",
          R"(waitwatch_process_close_wait_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",kind="eof_not_closed"} 1)",
          R"(waitwatch_process_close_wait_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",kind="unread_data"} 0)"}));
  // The group's oldest socket is the older of its two workers'; redis has no CLOSE_WAIT.
  EXPECT_EQ(
      samples(render(*view, MetricsOptions{}), "waitwatch_close_wait_oldest_age_seconds"),
      std::vector<std::string>{
          R"(waitwatch_close_wait_oldest_age_seconds{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service"} 120)"});
  // File descriptors: of the worker nearest to its limit (900 of 1024, not the sum of both);
  // its forecast. Nothing for redis, which holds no CLOSE_WAIT socket.
  const std::string text = render(*view, MetricsOptions{});
  EXPECT_EQ(
      samples(text, "waitwatch_process_open_fds"),
      std::vector<std::string>{
          R"(waitwatch_process_open_fds{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service"} 900)"});
  EXPECT_EQ(
      samples(text, "waitwatch_process_max_fds"),
      std::vector<std::string>{
          R"(waitwatch_process_max_fds{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service"} 1024)"});
  EXPECT_EQ(
      samples(text, "waitwatch_process_fd_exhaustion_seconds"),
      std::vector<std::string>{
          R"(waitwatch_process_fd_exhaustion_seconds{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service"} 120)"});
}

TEST(Exporter, PidLabelOnlyWhenEnabled) {
  const auto view = testing::sampleView();
  const auto text = render(*view, MetricsOptions{.includePid = true, .maxGroups = 50});
  const auto lines = samples(text, "waitwatch_process_sockets");
  EXPECT_NE(
      std::find(
          lines.begin(), lines.end(),
          R"(waitwatch_process_sockets{comm="nginx",container="",netns="net:[4026531840]",unit="nginx.service",pid="101",state="CLOSE_WAIT"} 1)"),
      lines.end());
  EXPECT_EQ(samples(text, "waitwatch_close_wait_oldest_age_seconds").size(), 2u);
  EXPECT_EQ(samples(render(*view, MetricsOptions{}), "waitwatch_process_sockets")[0].find("pid="),
            std::string::npos);
}

// Containers by name: `container` is the name the runtime gave (its short id only without one),
// and a Kubernetes pod's processes also carry `namespace` and `pod`, as kube-state-metrics does.
// Two containers of one name in one pod (a restart) are one series.
TEST(Exporter, ContainersAreLabelledByNameAndPod) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  auto inPod = [](ProcessEntry& p, char idChar) {
    p.info.unit = "";
    p.info.container = ContainerInfo{"containerd", std::string(64, idChar), "uid-1"};
    p.info.container.name = "api";
    p.info.container.podName = "checkout-7d9f-x2k4";
    p.info.container.podNamespace = "payments";
  };
  inPod(s.processes[0], 'a');
  inPod(s.processes[1], 'b');
  s.processes[2].info.unit = "";
  s.processes[2].info.container = ContainerInfo{"docker", std::string(64, 'c'), ""};
  s.containerNameLookups = 3;
  s.containerNameMisses = 1;
  view->snapshot = std::make_shared<const Snapshot>(std::move(s));
  ContainerInfo named{"containerd", std::string(64, 'a'), "uid-1"};
  named.name = "api";
  named.podName = "checkout-7d9f-x2k4";
  named.podNamespace = "payments";
  setContainer(view->firing[0].group, named);
  const std::string text = render(*view, MetricsOptions{});
  EXPECT_EQ(
      samples(text, "waitwatch_process_sockets"),
      (std::vector<std::string>{
          R"(waitwatch_process_sockets{comm="nginx",container="api",netns="net:[4026531840]",unit="",namespace="payments",pod="checkout-7d9f-x2k4",state="CLOSE_WAIT"} 3)",
          R"(waitwatch_process_sockets{comm="nginx",container="api",netns="net:[4026531840]",unit="",namespace="payments",pod="checkout-7d9f-x2k4",state="ESTABLISHED"} 4)",
          R"(waitwatch_process_sockets{comm="nginx",container="api",netns="net:[4026531840]",unit="",namespace="payments",pod="checkout-7d9f-x2k4",state="LISTEN"} 2)",
          R"(waitwatch_process_sockets{comm="redis-server",container="docker:cccccccccccc",netns="net:[4026531840]",unit="",state="CLOSE_WAIT"} 0)",
          R"(waitwatch_process_sockets{comm="redis-server",container="docker:cccccccccccc",netns="net:[4026531840]",unit="",state="ESTABLISHED"} 1)"}));
  const auto firing = samples(text, "waitwatch_alert_firing");
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_NE(firing[0].find(R"(container="api",)"), std::string::npos) << firing[0];
  EXPECT_NE(firing[0].find(R"(,namespace="payments",pod="checkout-7d9f-x2k4")"), std::string::npos)
      << firing[0];
  EXPECT_EQ(samples(text, "waitwatch_container_name_lookups_total"),
            std::vector<std::string>{"waitwatch_container_name_lookups_total 3"});
  EXPECT_EQ(samples(text, "waitwatch_container_name_misses_total"),
            std::vector<std::string>{"waitwatch_container_name_misses_total 1"});
}

TEST(Exporter, DestinationsCountersAndAlerts) {
  const auto view = testing::sampleView();
  const auto text = render(*view, MetricsOptions{});
  EXPECT_EQ(
      samples(text, "waitwatch_ephemeral_port_usage_ratio"),
      std::vector<std::string>{
          R"(waitwatch_ephemeral_port_usage_ratio{destination="10.0.0.9:5432",netns="net:[4026531840]",source="10.0.0.1"} 0.25)"});
  EXPECT_EQ(samples(text, "waitwatch_time_wait_created_total"),
            std::vector<std::string>{
                R"(waitwatch_time_wait_created_total{netns="net:[4026531840]"} 12)"});
  EXPECT_EQ(samples(text, "waitwatch_kernel_tcp_time_wait_overflow_total"),
            std::vector<std::string>{
                R"(waitwatch_kernel_tcp_time_wait_overflow_total{netns="net:[4026531840]"} 1)"});
  EXPECT_EQ(samples(text, "waitwatch_kernel_tcp_passive_opens_total"),
            std::vector<std::string>{
                R"(waitwatch_kernel_tcp_passive_opens_total{netns="net:[4026531840]"} 700)"});
  EXPECT_EQ(samples(text, "waitwatch_ephemeral_ports_usable"),
            std::vector<std::string>{
                R"(waitwatch_ephemeral_ports_usable{netns="net:[4026531840]"} 28232)"});
  EXPECT_EQ(
      samples(text, "waitwatch_alert_firing"),
      std::vector<std::string>{
          R"(waitwatch_alert_firing{comm="nginx",container="",destination="",netns="net:[4026531840]",rule="close-wait-leak",severity="warning",source="",unit="nginx.service"} 1)"});
  EXPECT_EQ(samples(text, "waitwatch_unattributed_sockets"),
            (std::vector<std::string>{R"(waitwatch_unattributed_sockets{reason="no_permission"} 4)",
                                      R"(waitwatch_unattributed_sockets{reason="vanished"} 0)"}));
}

TEST(Exporter, KernelCountersOmittedWhenUnreadable) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  s.namespaces[0].kernel.valid = false;
  view->snapshot = std::make_shared<const Snapshot>(s);
  const auto text = render(*view, MetricsOptions{});
  EXPECT_TRUE(samples(text, "waitwatch_kernel_tcp_active_opens_total").empty());
  EXPECT_EQ(text.find("# TYPE waitwatch_kernel_tcp_active_opens_total"), std::string::npos);
}

TEST(Exporter, TcpHashTableOfEachNamespace) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  s.namespaces[0].tcpHash.reset();  // unknown (a kernel before 6.1): no series
  view->snapshot = std::make_shared<const Snapshot>(s);
  const auto text = render(*view, MetricsOptions{});
  EXPECT_TRUE(samples(text, "waitwatch_kernel_tcp_hash_shared").empty());
  EXPECT_TRUE(samples(text, "waitwatch_kernel_tcp_hash_buckets").empty());

  s.namespaces[0].tcpHash = TcpHashTable{262144, false};
  NetnsEntry pod = s.namespaces[0];
  pod.ref = NetnsRef{4026532001, "pod", {}};
  pod.states = {};
  pod.states[TcpState::Established] = 1;
  pod.tcpHash = TcpHashTable{262144, true};
  s.namespaces.push_back(pod);
  NetnsEntry own = pod;
  own.ref = NetnsRef{4026532002, "own", {}};
  own.tcpHash = TcpHashTable{512, false};
  s.namespaces.push_back(own);
  // Two empty ones sharing: fewer sockets than the others, so they fold first.
  for (std::uint64_t inode : {4026532003u, 4026532004u}) {
    NetnsEntry idle = pod;
    idle.ref = NetnsRef{inode, "idle" + std::to_string(inode), {}};
    idle.states = {};
    s.namespaces.push_back(idle);
  }
  view->snapshot = std::make_shared<const Snapshot>(s);
  const auto all = render(*view, MetricsOptions{});
  EXPECT_EQ(
      samples(all, "waitwatch_kernel_tcp_hash_shared"),
      (std::vector<std::string>{R"(waitwatch_kernel_tcp_hash_shared{netns="idle4026532003"} 1)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="idle4026532004"} 1)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="net:[4026531840]"} 0)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="own"} 0)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="pod"} 1)"}));
  EXPECT_EQ(samples(all, "waitwatch_kernel_tcp_hash_buckets"),
            (std::vector<std::string>{
                R"(waitwatch_kernel_tcp_hash_buckets{netns="idle4026532003"} 262144)",
                R"(waitwatch_kernel_tcp_hash_buckets{netns="idle4026532004"} 262144)",
                R"(waitwatch_kernel_tcp_hash_buckets{netns="net:[4026531840]"} 262144)",
                R"(waitwatch_kernel_tcp_hash_buckets{netns="own"} 512)",
                R"(waitwatch_kernel_tcp_hash_buckets{netns="pod"} 262144)"}));

  // Three namespaces keep their series; the two idle ones fold, and still count under "other".
  const auto capped = render(*view, MetricsOptions{.maxGroups = 3});
  EXPECT_EQ(
      samples(capped, "waitwatch_kernel_tcp_hash_shared"),
      (std::vector<std::string>{R"(waitwatch_kernel_tcp_hash_shared{netns="net:[4026531840]"} 0)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="other"} 2)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="own"} 0)",
                                R"(waitwatch_kernel_tcp_hash_shared{netns="pod"} 1)"}));
  EXPECT_EQ(samples(capped, "waitwatch_kernel_tcp_hash_buckets").size(), 3u);
}

TEST(Exporter, GroupsBeyondTheCapFoldIntoOther) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  // 30 leaking processes, each its own group; the cap keeps the 10 with most CLOSE_WAIT.
  s.processes.clear();
  for (int i = 0; i < 30; ++i) {
    s.processes.push_back(testing::process(1000 + i, "leaker" + std::to_string(i), "",
                                           static_cast<std::uint64_t>(i + 1), 0, {}));
  }
  view->snapshot = std::make_shared<const Snapshot>(s);
  view->processOldestCloseWait.assign(30, SocketAge{Duration{1000}, false});
  view->processOldestCloseWait[0].age = Duration{9000};  // folded group keeps the max age
  const auto text = render(*view, MetricsOptions{.includePid = false, .maxGroups = 10});
  const auto lines = samples(text, "waitwatch_process_sockets");
  ASSERT_EQ(lines.size(), 11u);  // 10 kept + "other", CLOSE_WAIT only (no other state held)
  // Kept: leaker29 (30 sockets) .. leaker20 (21). Folded: leaker0..19 = 1+..+20 = 210.
  EXPECT_NE(
      std::find(
          lines.begin(), lines.end(),
          R"(waitwatch_process_sockets{comm="leaker29",container="",netns="net:[4026531840]",unit="",state="CLOSE_WAIT"} 30)"),
      lines.end());
  EXPECT_NE(
      std::find(
          lines.begin(), lines.end(),
          R"(waitwatch_process_sockets{comm="other",container="other",netns="other",unit="other",state="CLOSE_WAIT"} 210)"),
      lines.end());
  for (const auto& l : lines)
    EXPECT_EQ(l.find("leaker19"), std::string::npos) << l;
  EXPECT_NE(
      std::find(
          lines.begin(), lines.end(),
          R"(waitwatch_process_sockets{comm="other",container="other",netns="other",unit="other",state="CLOSE_WAIT"} 210)"),
      lines.end());
  const auto ages = samples(text, "waitwatch_close_wait_oldest_age_seconds");
  EXPECT_NE(
      std::find(
          ages.begin(), ages.end(),
          R"(waitwatch_close_wait_oldest_age_seconds{comm="other",container="other",netns="other",unit="other"} 9)"),
      ages.end());
  EXPECT_NE(std::find(samples(text, "waitwatch_series_folded").begin(),
                      samples(text, "waitwatch_series_folded").end(),
                      R"(waitwatch_series_folded{family="waitwatch_process_sockets"} 20)"),
            samples(text, "waitwatch_series_folded").end());
}

TEST(Exporter, TenThousandLeakersStayUnderTheCap) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  s.processes.clear();
  for (int i = 0; i < 10'000; ++i) {
    s.processes.push_back(testing::process(1000 + i, "p" + std::to_string(i), "", 1, 0, {}));
  }
  view->snapshot = std::make_shared<const Snapshot>(s);
  view->processOldestCloseWait.assign(s.processes.size(), SocketAge{});
  const auto text = render(*view, MetricsOptions{.includePid = true, .maxGroups = 50});
  EXPECT_EQ(samples(text, "waitwatch_process_sockets").size(), 51u);
}

TEST(Exporter, InvalidUtf8InLabelsIsReplaced) {
  auto view = testing::sampleView();
  Snapshot s = *view->snapshot;
  s.processes[2].info.comm = std::string("bad\xff\xc3", 5);
  view->snapshot = std::make_shared<const Snapshot>(s);
  const auto text = render(*view, MetricsOptions{});
  EXPECT_NE(text.find(R"(comm="bad??")"), std::string::npos);
}

TEST(Exporter, PublishedFamiliesComeFromOnePoll) {
  PollMetrics metrics;
  EXPECT_TRUE(metrics.Collect().empty());
  EXPECT_EQ(metrics.view(), nullptr);
  auto view = testing::sampleView();
  metrics.publish(view, MetricsOptions{});
  EXPECT_EQ(metrics.view()->pollCount, 3u);
  EXPECT_FALSE(metrics.Collect().empty());
}

TEST(Exporter, SamplerModeAndItsCheck) {
  auto view = testing::sampleView();
  std::string text = render(*view, MetricsOptions{});
  EXPECT_EQ(samples(text, "waitwatch_sampler_info"),
            std::vector<std::string>{R"(waitwatch_sampler_info{mode="netlink"} 1)"});
  // Without --verify-sampler, no check counters.
  EXPECT_TRUE(samples(text, "waitwatch_sampler_check_sockets_total").empty());

  Snapshot s = *view->snapshot;
  s.socketSource = SocketSource::BpfIterator;
  s.samplerChecked = true;
  s.samplerCheckSockets = 1234;
  s.samplerCheckFaults = 2;
  view->snapshot = std::make_shared<const Snapshot>(s);
  text = render(*view, MetricsOptions{});
  EXPECT_EQ(samples(text, "waitwatch_sampler_info"),
            std::vector<std::string>{R"(waitwatch_sampler_info{mode="bpf_iter"} 1)"});
  EXPECT_EQ(samples(text, "waitwatch_sampler_check_sockets_total"),
            std::vector<std::string>{"waitwatch_sampler_check_sockets_total 1234"});
  EXPECT_EQ(samples(text, "waitwatch_sampler_check_faults_total"),
            std::vector<std::string>{"waitwatch_sampler_check_faults_total 2"});
  s.socketSource = SocketSource::Mixed;
  view->snapshot = std::make_shared<const Snapshot>(s);
  EXPECT_EQ(samples(render(*view, MetricsOptions{}), "waitwatch_sampler_info"),
            std::vector<std::string>{R"(waitwatch_sampler_info{mode="mixed"} 1)"});
}

// The whole /metrics output, as the daemon serves it, passes promtool's linter.
TEST(Exporter, TimeWaitByCloserUnknownSourceAndLost) {
  auto view = testing::sampleView();
  // Without closers tracked, none of their families is there.
  EXPECT_TRUE(samples(render(*view, MetricsOptions{}), "waitwatch_time_wait_sockets").empty());
  EXPECT_TRUE(
      samples(render(*view, MetricsOptions{}), "waitwatch_time_wait_closer_source").empty());

  Snapshot s = *view->snapshot;
  s.closerSource = CloserSource::KernelProbe;
  s.closesLost = 2;
  ProcessInfo php;
  php.key = ProcessKey{300, 1};
  php.comm = "php-fpm";
  php.unit = "php.service";
  ProcessInfo php2 = php;
  php2.key.pid = 301;
  s.closers = {php, php2};
  s.timeWaitByCloser = {TimeWaitByCloser{0, 0, 3, 1}, TimeWaitByCloser{0, 1, 2, 0},
                        TimeWaitByCloser{0, kNoIndex, 2, 0}};
  view->snapshot = std::make_shared<const Snapshot>(s);
  view->timeWaitClosedTotal = {
      {CloserGroup{"php-fpm", "php.service", "", "net:[4026531840]", 0}, 41}};
  const std::string text = render(*view, MetricsOptions{});
  const std::string labels =
      R"({comm="php-fpm",container="",netns="net:[4026531840]",unit="php.service"})";
  EXPECT_EQ(samples(text, "waitwatch_time_wait_sockets"),
            std::vector<std::string>{"waitwatch_time_wait_sockets" + labels + " 5"});
  EXPECT_EQ(samples(text, "waitwatch_time_wait_closed_total"),
            std::vector<std::string>{"waitwatch_time_wait_closed_total" + labels + " 41"});
  EXPECT_EQ(samples(text, "waitwatch_time_wait_closer_unknown"),
            std::vector<std::string>{
                R"(waitwatch_time_wait_closer_unknown{netns="net:[4026531840]"} 2)"});
  EXPECT_EQ(samples(text, "waitwatch_time_wait_closer_source"),
            std::vector<std::string>{R"(waitwatch_time_wait_closer_source{source="bpf"} 1)"});
  EXPECT_EQ(samples(text, "waitwatch_time_wait_closes_lost_total"),
            std::vector<std::string>{"waitwatch_time_wait_closes_lost_total 2"});
  // With pids, one series per process.
  MetricsOptions withPid;
  withPid.includePid = true;
  EXPECT_EQ(samples(render(*view, withPid), "waitwatch_time_wait_sockets").size(), 2u);
  // Beyond max_groups the rest fold into "other".
  MetricsOptions capped;
  capped.maxGroups = 1;
  capped.includePid = true;
  const auto folded = samples(render(*view, capped), "waitwatch_time_wait_sockets");
  ASSERT_EQ(folded.size(), 2u);
  const auto other = std::find_if(folded.begin(), folded.end(), [](const std::string& l) {
    return l.find(R"(comm="other")") != std::string::npos;
  });
  ASSERT_NE(other, folded.end());
  EXPECT_EQ(other->substr(other->rfind(' ') + 1), "2");
}

TEST(Exporter, ATimeWaitAlertsClosersAreNotLabels) {
  auto view = testing::sampleView();
  Alert a = testing::sampleAlert();
  a.type = RuleType::TimeWait;
  a.group.kind = GroupKind::Destination;
  a.group.comm = "php-fpm";  // the top closer: it may change from poll to poll
  a.group.unit = "php.service";
  a.group.pid = 1234;
  view->firing = {a};
  MetricsOptions withPid;
  withPid.includePid = true;
  const auto lines = samples(render(*view, withPid), "waitwatch_alert_firing");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("php"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"(comm="")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"(pid="")"), std::string::npos) << lines[0];
}

TEST(Exporter, PromtoolAcceptsTheFullOutput) {
  auto poll = std::make_shared<PollMetrics>();
  poll->publish(testing::sampleView(), MetricsOptions{.includePid = true, .maxGroups = 1});
  auto health = std::make_shared<HealthMetrics>("1.2.3");
  health->observePoll(0.02, false, 1700000000.5);
  DaemonApi api(poll, {poll, health->registry(), std::make_shared<ProcessMetrics>()});
  const std::string text = api.renderMetrics();
  ASSERT_NE(text.find("process_resident_memory_bytes"), std::string::npos);
  ASSERT_NE(text.find(R"(waitwatch_build_info{version="1.2.3"} 1)"), std::string::npos);
  EXPECT_NE(text.find("\nwaitwatch_last_successful_poll_timestamp_seconds 1700000000.5\n"),
            std::string::npos);
  const std::string path = ::testing::TempDir() + "waitwatch_metrics.txt";
  std::ofstream(path) << text;
  FILE* p = ::popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p))
    output += buf;
  const int status = ::pclose(p);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << text;
}

}  // namespace
}  // namespace waitwatch
