// SPDX-License-Identifier: Apache-2.0
// Renderers over the hand-built shop (support/shop.hpp): exact rows.
#include "cli/render.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "cli/run.hpp"
#include "cli/view.hpp"
#include "support/shop.hpp"
#include "support/text_lines.hpp"

namespace waitwatch::cli {
namespace {

using testing::buildShop;
using testing::splitLines;

TEST(CliRender, PortsCarryTheirClass) {
  EXPECT_EQ(portWithClass(22), "22w");
  EXPECT_EQ(portWithClass(1023), "1023w");
  EXPECT_EQ(portWithClass(1024), "1024r");
  EXPECT_EQ(portWithClass(49151), "49151r");
  EXPECT_EQ(portWithClass(49152), "49152e");
  EXPECT_EQ(endpointWithClass(testing::endpoint("10.0.0.1:8080")), "10.0.0.1:8080r");
  EXPECT_EQ(endpointWithClass(Endpoint{*IpAddress::parse("::1"), 53}), "[::1]:53w");
  EXPECT_EQ(endpointWithClass(testing::endpoint("0.0.0.0:0")), "0.0.0.0:*");
}

TEST(CliRender, ProcessTableRowsSortedByCloseWait) {
  const auto shop = buildShop();
  EXPECT_EQ(splitLines(renderProcessTable(shop.snapshot)),
            (std::vector<std::string>{
                "PID  USER      UNIT/CONTAINER       COMMAND                                 "
                "ESTAB  CLOSE-WAIT  KIND  FIN-WAIT  LISTEN  OTHER  PORTS",
                "100  www-data  nginx.service        nginx -g daemon on; master_process on;      "
                "2           3  3a           0       2      0  80w 8080r",
                "101  www-data  nginx.service        nginx: worker process                       "
                "0           1  1a           0       1      0  80w",
                "200  app       docker:0123456789ab  java -jar /srv/app.jar                      "
                "2           0  -            0       0      1",
            }));
}

TEST(CliRender, ContainersShowByTheirNames) {
  auto shop = buildShop();
  ContainerInfo& java = shop.snapshot.processes[2].info.container;
  java.name = "api";
  java.podName = "shop-0";
  java.podNamespace = "payments";
  const auto t = splitLines(renderProcessTable(shop.snapshot));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_NE(t[3].find(" k8s:payments/shop-0/api "), std::string::npos) << t[3];
}

TEST(CliRender, ProcessTableWithAgesCutsLongNamesInTheMiddle) {
  auto shop = buildShop();
  shop.snapshot.processes[0].info.cmdline =
      "/opt/very/long/path/server --config /etc/server/a-rather-long-configuration-file.conf";
  const std::vector<SocketAge> ages = {
      {Duration(3 * 3600'000 + 12 * 60'000), true}, {Duration(45'000), false}, {}};
  shop.snapshot.processes[0].closeWaitKinds.counts = {1, 1, 1};
  const auto t =
      splitLines(renderProcessTable(shop.snapshot, RenderOptions{.closeWaitOldest = ages}));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0],
            "PID  USER      UNIT/CONTAINER       COMMAND                                   ESTAB  "
            "CLOSE-WAIT   OLDEST  KIND      FIN-WAIT  LISTEN  OTHER  PORTS");
  EXPECT_EQ(t[1],
            "100  www-data  nginx.service        server --con...g-configuration-file.conf      2  "
            "         3  >=3h12m  1a 1e 1u         0       2      0  80w 8080r");
  EXPECT_EQ(t[2],
            "101  www-data  nginx.service        nginx: worker process                         0  "
            "         1      45s  1a               0       1      0  80w");
  EXPECT_EQ(t[3],
            "200  app       docker:0123456789ab  java -jar /srv/app.jar                        2  "
            "         0        -  -                0       0      1");
  // Units that share a long prefix stay apart: the end, where they differ, is kept.
  shop.snapshot.processes[0].info.unit =
      "qa2-payments-settlement-reconciler-worker-pool-shard-07.service";
  shop.snapshot.processes[1].info.unit =
      "qa2-payments-settlement-reconciler-worker-pool-shard-08.service";
  const auto u = splitLines(renderProcessTable(shop.snapshot));
  EXPECT_NE(u[1].find(" qa2-payments-se...r-worker-pool-shard-07.service "), std::string::npos)
      << u[1];
  EXPECT_NE(u[2].find(" qa2-payments-se...r-worker-pool-shard-08.service "), std::string::npos)
      << u[2];
  // The letters are explained under the table, when there is a KIND column.
  EXPECT_EQ(closeWaitKindLegend(shop.snapshot, 0),
            "(CLOSE-WAIT kinds: a abandoned, not read since the peer closed; e end-of-stream "
            "read, never closed; u data left unread)\n");
  EXPECT_EQ(closeWaitKindLegend(shop.snapshot, stateBit(TcpState::Established)), "");
}

// Open fds of the processes holding CLOSE_WAIT sockets, of their limit; from a daemon, when they
// run out.
TEST(CliRender, ProcessTableShowsFdsAndWhenTheyRunOut) {
  auto shop = buildShop();
  auto& p = shop.snapshot.processes;
  p[0].openFds = 900;
  p[0].maxFds = 1024;
  p[0].fdForecast = FdForecast{62.0, Duration(120'000)};
  p[1].openFds = 40;  // no limit known, no forecast
  const auto t = splitLines(renderProcessTable(shop.snapshot));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0],
            "PID  USER      UNIT/CONTAINER       COMMAND                                 ESTAB  "
            "CLOSE-WAIT  KIND       FDS  RUNS-OUT  FIN-WAIT  LISTEN  OTHER  PORTS");
  EXPECT_EQ(t[1],
            "100  www-data  nginx.service        nginx -g daemon on; master_process on;      2  "
            "         3  3a    900/1024   in 2m0s         0       2      0  80w 8080r");
  EXPECT_EQ(t[2],
            "101  www-data  nginx.service        nginx: worker process                       0  "
            "         1  1a          40         -         0       1      0  80w");
  EXPECT_EQ(t[3],
            "200  app       docker:0123456789ab  java -jar /srv/app.jar                      2  "
            "         0  -            -         -         0       0      1");
  p[0].fdForecast->exhaustion = Duration::zero();
  EXPECT_NE(renderProcessTable(shop.snapshot).find("900/1024       now"), std::string::npos)
      << renderProcessTable(shop.snapshot);
}

TEST(CliRender, StateFilterShowsItsColumns) {
  const auto shop = buildShop();
  const Filter f{.states = stateBit(TcpState::CloseWait) | stateBit(TcpState::SynSent)};
  const auto v = filterWithSockets(shop.snapshot, shop.lines, f);
  EXPECT_EQ(splitLines(renderProcessTable(v.snapshot, RenderOptions{.states = f.states})),
            (std::vector<std::string>{
                "PID  USER      UNIT/CONTAINER       COMMAND                                 "
                "SYN-SENT  CLOSE-WAIT  KIND",
                "100  www-data  nginx.service        nginx -g daemon on; master_process on;  "
                "       0           3  3a",
                "101  www-data  nginx.service        nginx: worker process                   "
                "       0           1  1a",
                "200  app       docker:0123456789ab  java -jar /srv/app.jar                  "
                "       1           0  -",
            }));
  const auto none = filterWithSockets(shop.snapshot, shop.lines, Filter{.pids = {9}});
  EXPECT_EQ(renderProcessTable(none.snapshot), "no process holds TCP sockets in this view\n");
}

// A client that leaks CLOSE_WAIT sockets toward one destination uses its source ports as
// TIME_WAIT does: the pair is listed first, with how many of its live sockets are CLOSE_WAIT.
TEST(CliRender, ClientSideCloseWaitHoldsPorts) {
  Snapshot s;
  NetnsEntry ns;
  ns.ref = NetnsRef{4026531840, "", {}};
  ns.ephemeral = EphemeralRange(40000, 40599);
  s.namespaces.push_back(ns);
  TimeWaitGroup leak;
  leak.netns = 0;
  leak.source = *IpAddress::parse("127.0.0.1");
  leak.destination = Endpoint{*IpAddress::parse("127.0.0.1"), 8403};
  leak.live = 82;
  leak.closeWait = 82;
  leak.portUsageRatio = 82.0 / 600;
  TimeWaitGroup tw = leak;
  tw.destination.port = 5432;
  tw.timeWait = 2;
  tw.live = 0;
  tw.closeWait = 0;
  tw.portUsageRatio = 2.0 / 600;
  s.timeWait = {tw, leak};
  EXPECT_EQ(
      splitLines(renderTimeWait(s)),
      (std::vector<std::string>{
          "TIME-WAIT and CLOSE-WAIT by destination (client side: each holds a source port)",
          "SOURCE     DESTINATION      TIME-WAIT  LIVE  OF THEM CLOSE-WAIT  EPHEMERAL PORTS USED",
          "127.0.0.1  127.0.0.1:8403r          0    82                  82  13.7% of 600",
          "127.0.0.1  127.0.0.1:5432r          2     0                   0  0.33% of 600",
          "",
          "Who closed them: waitwatchd records every close; ask it with waitwatch --from "
          "http://HOST:9929",
      }));
}

TEST(CliRender, TimeWaitGroupsBothSides) {
  const auto shop = buildShop();
  EXPECT_EQ(splitLines(renderTimeWait(shop.snapshot)),
            (std::vector<std::string>{
                "TIME-WAIT by destination (client side)",
                "SOURCE    DESTINATION     TIME-WAIT  LIVE  EPHEMERAL PORTS USED",
                "10.0.0.1  10.0.0.9:5432r          4     2  0.02% of 28232",
                "",
                "TIME-WAIT on listening ports (server side)",
                "LOCAL         TIME-WAIT  LISTENER",
                "10.0.0.1:80w          2  nginx[100]",
                "",
                "Who closed them: waitwatchd records every close; ask it with waitwatch --from "
                "http://HOST:9929",
            }));
}

TEST(CliRender, TimeWaitByCloserFromADaemon) {
  auto shop = buildShop();
  Snapshot& s = shop.snapshot;
  s.closerSource = CloserSource::KernelProbe;
  s.namespaces[0].timeWaitWindow = Duration(5000);
  ProcessInfo psql = testing::processInfo(300, "psql", "app", 1000, "");
  psql.unit = "reports.service";
  ProcessInfo nginx = testing::processInfo(100, "nginx", "www-data", 33, "");
  nginx.unit = "nginx.service";
  s.closers = {psql, nginx};
  s.timeWaitByCloser = {TimeWaitByCloser{0, 0, 3, 3}, TimeWaitByCloser{0, kNoIndex, 1, 0},
                        TimeWaitByCloser{1, 1, 2, 0}};
  const auto all = splitLines(renderTimeWait(s));
  const std::vector<std::string> tail(all.end() - 6, all.end());
  EXPECT_EQ(tail,
            (std::vector<std::string>{
                "",
                "TIME-WAIT by closer (every close recorded in the kernel)",
                "CLOSED BY   USER      UNIT/CONTAINER   TO                      TIME-WAIT  NEW/S",
                "psql[300]   app       reports.service  10.0.0.9:5432                   3    0.6",
                "nginx[100]  www-data  nginx.service    clients of 10.0.0.1:80          2    0.0",
                "1 TIME-WAIT socket closed by a process not known (before the daemon watched, "
                "or lost)",
            }));
  // Many short-lived processes of one name closing toward one place make one row.
  ProcessInfo curl = testing::processInfo(400, "curl", "app", 1000, "");
  s.closers.push_back(curl);
  curl.key.pid = 401;
  s.closers.push_back(curl);
  s.timeWaitByCloser.push_back(TimeWaitByCloser{0, 2, 1, 1});
  s.timeWaitByCloser.push_back(TimeWaitByCloser{0, 3, 1, 0});
  const auto many = splitLines(renderTimeWait(s));
  EXPECT_NE(std::find(many.begin(), many.end(),
                      "curl (2 processes)  app       -                10.0.0.9:5432           "
                      "        2    0.2"),
            many.end())
      << renderTimeWait(s);
  // A filtered view keeps the closers of the groups it keeps.
  const auto onlyNginx = filterWithSockets(s, shop.lines, Filter{.pids = {100}});
  EXPECT_EQ(onlyNginx.snapshot.closerSource, CloserSource::KernelProbe);
}

TEST(CliRender, TimeWaitGroupsBeyondTheLimitAreSummed) {
  Snapshot s;
  NetnsEntry ns;
  ns.ref = NetnsRef{1, "blue", {}};
  s.namespaces = {ns};
  for (std::uint16_t i = 0; i < 5; ++i) {
    TimeWaitGroup g;
    g.netns = 0;
    g.source = *IpAddress::parse("10.0.0.1");
    g.destination = Endpoint{*IpAddress::parse("10.0.1." + std::to_string(i + 1)), 443};
    g.timeWait = 14116u - i * 1000u;
    g.portUsageRatio = static_cast<double>(g.timeWait) / 28232.0;
    s.timeWait.push_back(g);
  }
  EXPECT_EQ(splitLines(renderTimeWait(s, RenderOptions{.maxTimeWaitGroups = 2})),
            (std::vector<std::string>{
                "TIME-WAIT by destination (client side)",
                "SOURCE    DESTINATION    TIME-WAIT  LIVE  EPHEMERAL PORTS USED",
                "10.0.0.1  10.0.1.1:443w      14116     0  50.0% of 28232",
                "10.0.0.1  10.0.1.2:443w      13116     0  46.5% of 28232",
                "... 3 more with 33348 TIME-WAIT sockets (all of them in --json)",
                "",
                "Who closed them: waitwatchd records every close; ask it with waitwatch --from "
                "http://HOST:9929",
            }));
  EXPECT_EQ(renderTimeWait(Snapshot{}), "");
}

TEST(CliRender, TotalsPerNamespaceAndState) {
  auto shop = buildShop();
  EXPECT_EQ(renderTotals(shop.snapshot),
            "TOTAL  18 TCP sockets: ESTAB 4, SYN-SENT 1, FIN-WAIT-2 1, TIME-WAIT 6, CLOSE-WAIT 4, "
            "LISTEN 2\n");
  NetnsEntry blue;
  blue.ref = NetnsRef{2, "blue", {}};
  blue.states[TcpState::Listen] = 1;
  shop.snapshot.namespaces.push_back(blue);
  EXPECT_EQ(splitLines(renderTotals(shop.snapshot)),
            (std::vector<std::string>{
                "net:[4026531840]  18 TCP sockets: ESTAB 4, SYN-SENT 1, FIN-WAIT-2 1, TIME-WAIT 6, "
                "CLOSE-WAIT 4, LISTEN 2",
                "blue  1 TCP socket: LISTEN 1",
                "TOTAL  19 TCP sockets: ESTAB 4, SYN-SENT 1, FIN-WAIT-2 1, TIME-WAIT 6, "
                "CLOSE-WAIT 4, LISTEN 3",
            }));
}

TEST(CliRender, SocketLinesLikeSs) {
  const auto shop = buildShop();
  const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.ports = {8080}});
  EXPECT_EQ(
      splitLines(renderSockets(v.snapshot, v.sockets)),
      (std::vector<std::string>{
          "STATE       RECV-Q  SEND-Q  LOCAL           PEER             PROCESS",
          "FIN-WAIT-2       0       0  10.0.0.1:8080r  10.0.0.5:51000e  -",
          "CLOSE-WAIT       1       0  10.0.0.1:8080r  10.0.0.5:50001e  nginx[100],nginx[101]",
          "CLOSE-WAIT       1       0  10.0.0.1:8080r  10.0.0.5:50002e  nginx[100]",
          "CLOSE-WAIT       1       0  10.0.0.1:8080r  10.0.0.5:50003e  nginx[100]",
          "CLOSE-WAIT       1       0  10.0.0.1:8080r  10.0.0.8:52000e  ? (no permission to "
          "read its owner)",
          "LISTEN           0       0  0.0.0.0:8080r   0.0.0.0:*        nginx[100]",
      }));
  const auto tw = filterWithSockets(shop.snapshot, shop.lines, Filter{.ports = {80}});
  const auto t = splitLines(renderSockets(tw.snapshot, tw.sockets));
  EXPECT_NE(std::find(t.begin(), t.end(),
                      "TIME-WAIT       0       0  10.0.0.1:80w  10.0.0.7:30001r  -  42s left"),
            t.end())
      << renderSockets(tw.snapshot, tw.sockets);
}

TEST(CliRender, SocketsJsonHasOwnersAndClasses) {
  const auto shop = buildShop();
  const auto v = filterWithSockets(shop.snapshot, shop.lines, Filter{.ports = {50001}});
  const auto j = nlohmann::json::parse(socketsJson(v.snapshot, v.sockets).dump());
  ASSERT_EQ(j.size(), 2u) << j.dump();
  const auto& cw = j[0]["state"] == "CLOSE_WAIT" ? j[0] : j[1];
  EXPECT_EQ(cw["local"], "10.0.0.1:8080");
  EXPECT_EQ(cw["local_port_class"], "registered");
  EXPECT_EQ(cw["remote"], "10.0.0.5:50001");
  EXPECT_EQ(cw["remote_port_class"], "ephemeral");
  EXPECT_EQ(cw["recv_q"], 1);
  EXPECT_EQ(cw["inode"], 10);
  EXPECT_EQ(cw["attribution"], "owned");
  EXPECT_EQ(cw["owners"], nlohmann::json::parse(R"([{"pid":100,"comm":"nginx"},
                                                    {"pid":101,"comm":"nginx"}])"));
}

TEST(CliRender, UdpBoundPortsPerProcess) {
  Snapshot udp;
  NetnsEntry ns;
  ns.ref = NetnsRef{4026531840, "", {}};
  udp.namespaces = {ns};
  ProcessEntry dns;
  dns.info = testing::processInfo(53, "dnsmasq", "dnsmasq", 100, "/usr/sbin/dnsmasq -k");
  dns.info.unit = "dnsmasq.service";
  dns.netns = 0;
  udp.processes = {dns};
  udp.ownerLinks = {0, 0, 0};
  std::vector<SocketLine> sockets;
  auto line = [&](TcpState state, const std::string& local, const std::string& remote,
                  std::uint32_t owner) {
    SocketLine l;
    l.socket = testing::record(state, local, remote, 7);
    l.netns = 0;
    l.ownerBegin = owner;
    l.ownerCount = owner == kNoIndex ? 0 : 1;
    l.attribution = owner == kNoIndex ? Attribution::Vanished : Attribution::Owned;
    sockets.push_back(l);
  };
  line(TcpState::Close, "0.0.0.0:53", "0.0.0.0:0", 0);
  line(TcpState::Close, "0.0.0.0:67", "0.0.0.0:0", 1);
  line(TcpState::Established, "10.0.0.1:53001", "10.0.0.53:53", 2);
  line(TcpState::Close, "0.0.0.0:5353", "0.0.0.0:0", kNoIndex);
  EXPECT_EQ(splitLines(renderUdp(udp, sockets)),
            (std::vector<std::string>{
                "UDP sockets by process (4 sockets, 1 without a visible owner)",
                "PID  USER     UNIT/CONTAINER   COMMAND     SOCKETS  CONNECTED  BOUND PORTS",
                " 53  dnsmasq  dnsmasq.service  dnsmasq -k        3          1  53w 67w 53001e",
            }));
  const auto j = nlohmann::json::parse(udpJson(udp, sockets, true).dump());
  EXPECT_EQ(j["sockets"], 4);
  EXPECT_EQ(j["states"]["UNCONN"], 3);
  EXPECT_EQ(j["states"]["ESTAB"], 1);
  ASSERT_EQ(j["processes"].size(), 1u);
  EXPECT_EQ(j["processes"][0]["pid"], 53);
  EXPECT_EQ(j["processes"][0]["sockets"], 3);
  EXPECT_EQ(j["processes"][0]["ports"][0],
            nlohmann::json::parse(R"({"port":53,"class":"well-known"})"));
  ASSERT_EQ(j["socket_list"].size(), 4u);
  EXPECT_EQ(j["socket_list"][0]["state"], "UNCONN");
  const auto t = splitLines(renderSockets(udp, sockets, true));
  ASSERT_EQ(t.size(), 5u);
  EXPECT_EQ(t[1], "ESTAB        0       0  10.0.0.1:53001e  10.0.0.53:53w  dnsmasq[53]");
  EXPECT_EQ(t[2], "UNCONN       0       0  0.0.0.0:53w      0.0.0.0:*      dnsmasq[53]");
  EXPECT_EQ(
      t[4],
      "UNCONN       0       0  0.0.0.0:5353r    0.0.0.0:*      ? (closed, or its owner exited, "
      "during the look)");
}

TEST(CliRender, AlertsMostSevereFirst) {
  const std::vector<api::AlertSummary> alerts = {
      {.rule = "tw-exhaustion",
       .severity = "warning",
       .message = "10.0.0.1 -> 10.0.0.9:5432 uses 91% of the ephemeral ports"},
      {.rule = "close-wait-leak",
       .severity = "critical",
       .message = "nginx[100] (nginx.service) holds 523 CLOSE_WAIT sockets on :8080"}};
  EXPECT_EQ(splitLines(renderAlerts(alerts)),
            (std::vector<std::string>{
                "2 alerts firing",
                "  critical  close-wait-leak",
                "    nginx[100] (nginx.service) holds 523 CLOSE_WAIT sockets on :8080",
                "  warning  tw-exhaustion",
                "    10.0.0.1 -> 10.0.0.9:5432 uses 91% of the ephemeral ports",
            }));
  EXPECT_EQ(renderAlerts({}), "no alert firing\n");
}

TEST(CliRender, StateTableOfTheFirstVersion) {
  const auto shop = buildShop();
  EXPECT_EQ(splitLines(renderStateTable(shop.snapshot)),
            (std::vector<std::string>{
                "NETNS             ESTAB  SYN-SENT  SYN-RECV  FIN-WAIT-1  FIN-WAIT-2  TIME-WAIT  "
                "UNCONN  CLOSE-WAIT  LAST-ACK  LISTEN  CLOSING  TOTAL",
                "net:[4026531840]      4         1         0           0           1          6  "
                "     0           4         0       2        0     18",
            }));
}

int runWith(std::vector<std::string_view> args, std::string& out, std::string& err) {
  std::ostringstream o;
  std::ostringstream e;
  const int rc = run(args, o, e);
  out = o.str();
  err = e.str();
  return rc;
}

TEST(CliRun, BadArgumentsExitTwoWithOneLine) {
  std::string out;
  std::string err;
  EXPECT_EQ(runWith({"--bogus"}, out, err), 2);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "waitwatch: unknown option '--bogus' (see waitwatch --help)\n");
  EXPECT_EQ(runWith({"--port", "80x"}, out, err), 2);
  EXPECT_EQ(err,
            "waitwatch: --port: \"80x\" is not a port number (0-65535) (see waitwatch --help)\n");
}

TEST(CliRun, HelpAndVersion) {
  std::string out;
  std::string err;
  EXPECT_EQ(runWith({"--help"}, out, err), 0);
  for (const char* option : {"--netns all|NAME", "--json", "--state", "--port", "--pid", "--unit",
                             "--sockets", "--watch", "--udp", "--from", "--version"}) {
    EXPECT_NE(out.find(option), std::string::npos) << option;
  }
  EXPECT_EQ(err, "");
  EXPECT_EQ(runWith({"--version"}, out, err), 0);
  EXPECT_EQ(out.rfind("waitwatch 0.", 0), 0u) << out;
}

TEST(CliRun, UnknownNamespaceNameExitsOne) {
  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string_view> args{"--netns", "no-such-ns"};
  EXPECT_EQ(run(args, out, err, Environment{.procRoot = "/proc", .runNetns = "/nonexistent"}), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            "waitwatch: no network namespace named 'no-such-ns' (/nonexistent/no-such-ns)\n");
}

}  // namespace
}  // namespace waitwatch::cli
