// SPDX-License-Identifier: Apache-2.0
// The shared JSON form of a Snapshot: its keys, and that --from reads back what it writes.
#include "api/snapshot_json.hpp"

#include <gtest/gtest.h>

#include "support/shop.hpp"

namespace waitwatch::api {
namespace {

using testing::buildShop;
using testing::processInfo;

const std::vector<std::string> kStateNames = {"ESTABLISHED", "SYN_SENT",  "SYN_RECV", "FIN_WAIT1",
                                              "FIN_WAIT2",   "TIME_WAIT", "CLOSE",    "CLOSE_WAIT",
                                              "LAST_ACK",    "LISTEN",    "CLOSING"};

void expectElevenStates(const nlohmann::json& states) {
  ASSERT_TRUE(states.is_object());
  ASSERT_EQ(states.size(), 11u) << states.dump();
  for (const auto& n : kStateNames)
    EXPECT_TRUE(states.contains(n)) << n;
}

TEST(SnapshotJson, TopLevelKeysAndTotals) {
  const auto shop = buildShop();
  const auto j = nlohmann::json::parse(snapshotToJson(shop.snapshot).dump());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items())
    keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"closer_source", "namespaces", "processes", "states",
                                            "time_wait", "unattributed"}));
  ASSERT_NO_FATAL_FAILURE(expectElevenStates(j["states"]));
  EXPECT_EQ(j["states"]["CLOSE_WAIT"], 4);
  EXPECT_EQ(j["states"]["TIME_WAIT"], 6);
  EXPECT_EQ(j["states"]["ESTABLISHED"], 4);
  EXPECT_EQ(j["states"]["LISTEN"], 2);
  EXPECT_EQ(j["states"]["FIN_WAIT2"], 1);
  EXPECT_EQ(j["states"]["SYN_SENT"], 1);
  EXPECT_EQ(j["states"]["CLOSING"], 0);
  EXPECT_EQ(j["unattributed"], (nlohmann::json{{"no_permission", 1}, {"vanished", 0}}));

  ASSERT_EQ(j["namespaces"].size(), 1u);
  const auto& ns = j["namespaces"][0];
  EXPECT_EQ(ns["inode"], 4026531840u);
  EXPECT_TRUE(ns["name"].is_null());
  EXPECT_EQ(ns["label"], "net:[4026531840]");
  EXPECT_EQ(ns["max_time_wait_buckets"], 262144);
  EXPECT_EQ(ns["ephemeral_ports"],
            (nlohmann::json{{"low", 32768}, {"high", 60999}, {"usable", 28232}}));
  EXPECT_FALSE(ns.contains("kernel"));    // not read
  EXPECT_FALSE(ns.contains("tcp_hash"));  // not known (a kernel before 6.1)
}

TEST(SnapshotJson, ProcessItems) {
  const auto shop = buildShop();
  const auto j = nlohmann::json::parse(
      snapshotToJson(shop.snapshot, SnapshotJsonOptions{.commandLines = true}).dump());
  ASSERT_EQ(j["processes"].size(), 3u);
  const auto& nginx = j["processes"][0];
  for (const char* key : {"pid", "comm", "user", "unit", "container", "netns", "states"})
    EXPECT_TRUE(nginx.contains(key)) << key;
  EXPECT_EQ(nginx["pid"], 100);
  EXPECT_EQ(nginx["start_time"], 5100);
  EXPECT_EQ(nginx["comm"], "nginx");
  EXPECT_EQ(nginx["user"], "www-data");
  EXPECT_EQ(nginx["uid"], 33);
  EXPECT_EQ(nginx["unit"], "nginx.service");
  EXPECT_EQ(nginx["container"], "");
  EXPECT_EQ(nginx["netns"], "net:[4026531840]");
  EXPECT_EQ(nginx["cmdline"], "/usr/sbin/nginx -g daemon on; master_process on;");
  ASSERT_NO_FATAL_FAILURE(expectElevenStates(nginx["states"]));
  EXPECT_EQ(nginx["states"]["CLOSE_WAIT"], 3);
  EXPECT_EQ(nginx["states"]["LISTEN"], 2);
  EXPECT_EQ(nginx["states"]["ESTABLISHED"], 2);
  EXPECT_EQ(nginx["listen_ports"].dump(), "[80,8080]");
  EXPECT_EQ(nginx["listen"], nlohmann::json::parse(R"([{"port":80,"class":"well-known"},
                                                      {"port":8080,"class":"registered"}])"));
  EXPECT_FALSE(nginx.contains("close_wait_oldest_age_seconds"));
  // Its three CLOSE_WAIT sockets have only the FIN unread: abandoned.
  EXPECT_EQ(nginx["close_wait_kinds"],
            nlohmann::json::parse(R"({"abandoned":3,"eof_not_closed":0,"unread_data":0})"));

  const auto& java = j["processes"][2];
  EXPECT_EQ(java["container"], "docker:0123456789ab");
  EXPECT_EQ(java["container_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(java["states"]["SYN_SENT"], 1);

  // The daemon's API leaves command lines out.
  const auto api = snapshotToJson(shop.snapshot);
  EXPECT_FALSE(api["processes"][0].contains("cmdline"));
  EXPECT_FALSE(api["processes"][0].contains("exe"));
}

TEST(SnapshotJson, TimeWaitGroups) {
  const auto shop = buildShop();
  const auto j = nlohmann::json::parse(snapshotToJson(shop.snapshot).dump());
  ASSERT_EQ(j["time_wait"].size(), 2u);
  const auto& client = j["time_wait"][0];
  EXPECT_EQ(client["side"], "client");
  EXPECT_EQ(client["source"], "10.0.0.1");
  EXPECT_EQ(client["destination"], "10.0.0.9:5432");
  EXPECT_EQ(client["destination_port_class"], "registered");
  EXPECT_EQ(client["time_wait"], 4);
  EXPECT_EQ(client["live"], 2);
  EXPECT_DOUBLE_EQ(client["port_usage_ratio"].get<double>(), 6.0 / 28232.0);
  const auto& server = j["time_wait"][1];
  EXPECT_EQ(server["side"], "server");
  EXPECT_EQ(server["local"], "10.0.0.1:80");
  EXPECT_EQ(server["local_port_class"], "well-known");
  EXPECT_EQ(server["time_wait"], 2);
  EXPECT_EQ(server["listener"]["pid"], 100);
  EXPECT_EQ(server["listener"]["comm"], "nginx");
}

TEST(SnapshotJson, DaemonExtrasHeaderAndTrailer) {
  const auto shop = buildShop();
  const std::vector<SocketAge> ages = {
      {Duration(90'500), true}, {Duration(3'000), false}, {Duration(0), false}};
  const std::vector<std::uint64_t> created = {77};
  const nlohmann::ordered_json header{{"version", "9.9"}, {"time_unix_seconds", 1700000000.5}};
  const nlohmann::ordered_json trailer{{"alerts_firing", 1}};
  auto s = shop.snapshot;
  s.pollInterval = Duration(5000);
  const auto j = snapshotToJson(s, SnapshotJsonOptions{.closeWaitOldest = ages,
                                                       .timeWaitCreatedTotal = created,
                                                       .header = &header,
                                                       .trailer = &trailer});
  EXPECT_EQ(j.begin().key(), "version");
  EXPECT_EQ((--j.end()).key(), "alerts_firing");
  EXPECT_EQ(j["poll_interval_seconds"], 5.0);
  EXPECT_EQ(j["namespaces"][0]["time_wait_created_total"], 77);
  EXPECT_DOUBLE_EQ(j["processes"][0]["close_wait_oldest_age_seconds"].get<double>(), 90.5);
  EXPECT_EQ(j["processes"][0]["close_wait_oldest_age_is_lower_bound"], true);
  EXPECT_EQ(j["processes"][1]["close_wait_oldest_age_seconds"], 3.0);
  EXPECT_FALSE(j["processes"][2].contains("close_wait_oldest_age_seconds"));  // no CLOSE_WAIT
}

TEST(SnapshotJson, ReadsBackWhatItWrites) {
  auto shop = buildShop();
  Snapshot& s = shop.snapshot;
  s.pollInterval = Duration(5000);
  s.namespaces[0].ref.name = "blue";
  s.namespaces[0].ephemeral = EphemeralRange(40000, 40099);
  s.namespaces[0].ephemeral.reserve(40050);
  s.namespaces[0].kernel = KernelTcpCounters{1, 2, 3, 4, 5, 6, 7, 8, true};
  s.namespaces[0].timeWaitCreated = 3;
  s.namespaces[0].timeWaitWindow = Duration(4250);
  s.namespaces[0].tcpHash = TcpHashTable{262144, true};
  s.unattributedVanished = 5;
  s.processes[2].info.container.pod = "d6b1c0de-0000-4000-8000-00000000abcd";
  s.processes[2].info.container.name = "api";
  s.processes[2].info.container.podName = "checkout-7d9f-x2k4";
  s.processes[2].info.container.podNamespace = "payments";
  s.processes[0].closeWaitKinds.counts = {1, 1, 1};
  s.processes[0].openFds = 900;
  s.processes[0].maxFds = 1024;
  s.processes[0].fdForecast = FdForecast{62.5, Duration(119'250)};
  s.processes[1].openFds = 12;  // a limit that is not known, no forecast
  const std::vector<SocketAge> ages = {{Duration(1500), true}, {Duration(2500), false}, {}};
  const auto text =
      snapshotToJson(s, SnapshotJsonOptions{.commandLines = true, .closeWaitOldest = ages}).dump();
  auto doc = snapshotFromJson(nlohmann::json::parse(text));
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  const Snapshot& r = doc->snapshot;
  EXPECT_EQ(r.pollInterval, s.pollInterval);
  ASSERT_EQ(r.namespaces.size(), 1u);
  EXPECT_EQ(r.namespaces[0].ref, s.namespaces[0].ref);
  EXPECT_EQ(r.namespaces[0].states, s.namespaces[0].states);
  EXPECT_EQ(r.namespaces[0].kernel, s.namespaces[0].kernel);
  EXPECT_EQ(r.namespaces[0].timeWaitCreated, 3u);
  EXPECT_EQ(r.namespaces[0].timeWaitWindow, Duration(4250));
  EXPECT_EQ(r.namespaces[0].maxTimeWaitBuckets, 262144u);
  EXPECT_EQ(r.namespaces[0].tcpHash, (TcpHashTable{262144, true}));
  EXPECT_EQ(r.namespaces[0].ephemeral.low(), 40000);
  EXPECT_EQ(r.namespaces[0].ephemeral.high(), 40099);
  EXPECT_EQ(r.namespaces[0].ephemeral.usableCount(), 99u);
  ASSERT_EQ(r.processes.size(), s.processes.size());
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    ProcessInfo expected = s.processes[i].info;
    expected.cgroup.clear();  // not part of the document
    EXPECT_EQ(r.processes[i].info, expected) << i;
    EXPECT_EQ(r.processes[i].states, s.processes[i].states) << i;
    EXPECT_EQ(r.processes[i].closeWaitKinds, s.processes[i].closeWaitKinds) << i;
    EXPECT_EQ(r.processes[i].listenPorts, s.processes[i].listenPorts) << i;
    EXPECT_EQ(r.processes[i].netns, s.processes[i].netns) << i;
    EXPECT_EQ(r.processes[i].openFds, s.processes[i].openFds) << i;
    EXPECT_EQ(r.processes[i].maxFds, s.processes[i].maxFds) << i;
    EXPECT_EQ(r.processes[i].fdForecast, s.processes[i].fdForecast) << i;
  }
  EXPECT_TRUE(doc->hasAges);
  EXPECT_EQ(doc->closeWaitOldest[0], ages[0]);
  EXPECT_EQ(doc->closeWaitOldest[1], ages[1]);
  ASSERT_EQ(r.timeWait.size(), s.timeWait.size());
  for (std::size_t i = 0; i < s.timeWait.size(); ++i) {
    const TimeWaitGroup& a = r.timeWait[i];
    const TimeWaitGroup& b = s.timeWait[i];
    EXPECT_EQ(a.serverSide, b.serverSide);
    EXPECT_EQ(a.source, b.serverSide ? IpAddress{} : b.source);
    EXPECT_EQ(a.destination, b.destination);
    EXPECT_EQ(a.listener, b.listener);
    EXPECT_EQ(a.timeWait, b.timeWait);
    EXPECT_EQ(a.live, b.live);
    EXPECT_DOUBLE_EQ(a.portUsageRatio, b.portUsageRatio);
  }
  EXPECT_EQ(r.unattributedNoPermission, 1u);
  EXPECT_EQ(r.unattributedVanished, 5u);
  // Written again, the same document.
  EXPECT_EQ(snapshotToJson(r, SnapshotJsonOptions{.commandLines = true,
                                                  .closeWaitOldest = doc->closeWaitOldest})
                .dump(),
            text);
}

TEST(SnapshotJson, ReadStringsAreMadePrintable) {
  // A daemon is outside input for `waitwatch --from`: its names reach a terminal.
  auto shop = buildShop();
  shop.snapshot.processes[0].info.comm = "evil\x1b]0;owned\x07";
  shop.snapshot.processes[0].info.unit = std::string("c1\xC2\x9B") + "2J.service";
  const auto text = snapshotToJson(shop.snapshot, SnapshotJsonOptions{.commandLines = true})
                        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto doc = snapshotFromJson(nlohmann::json::parse(text));
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  const ProcessInfo& p = doc->snapshot.processes[0].info;
  EXPECT_EQ(p.comm, "evil?]0;owned?");
  EXPECT_EQ(p.unit.find("\xC2\x9B"), std::string::npos) << p.unit;
  EXPECT_NE(p.unit.find("2J.service"), std::string::npos) << p.unit;
}

TEST(SnapshotJson, TimeWaitClosersAreWrittenPerGroupAndReadBack) {
  auto shop = buildShop();
  Snapshot& s = shop.snapshot;
  ASSERT_EQ(s.timeWait.size(), 2u);
  // Without closers tracked, a reader is told so, and no group has a "closers" list.
  {
    const auto j = nlohmann::json::parse(snapshotToJson(s).dump());
    EXPECT_EQ(j["closer_source"], "none");
    EXPECT_FALSE(j["time_wait"][0].contains("closers"));
    EXPECT_FALSE(j.contains("closes_lost"));
  }
  s.closerSource = CloserSource::KernelProbe;
  s.closesLost = 3;
  ProcessInfo client = processInfo(300, "psql", "app", 1000, "");
  client.unit = "reports.service";
  ProcessInfo server = processInfo(100, "nginx", "www-data", 33, "");
  server.container = ContainerInfo{"docker", "0123456789abcdef0123456789abcdef", ""};
  s.closers = {client, server};
  s.timeWaitByCloser = {TimeWaitByCloser{0, 0, 3, 1}, TimeWaitByCloser{0, kNoIndex, 1, 0},
                        TimeWaitByCloser{1, 1, 2, 2}};
  const auto text = snapshotToJson(s).dump();
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["closer_source"], "bpf");
  EXPECT_EQ(j["closes_lost"], 3);
  const auto& db = j["time_wait"][0];
  ASSERT_EQ(db["closers"].size(), 1u);
  EXPECT_EQ(db["closers"][0]["pid"], 300);
  EXPECT_EQ(db["closers"][0]["comm"], "psql");
  EXPECT_EQ(db["closers"][0]["unit"], "reports.service");
  EXPECT_EQ(db["closers"][0]["time_wait"], 3);
  EXPECT_EQ(db["closers"][0]["created"], 1);
  EXPECT_EQ(db["closer_unknown"], 1);
  const auto& web = j["time_wait"][1];
  EXPECT_EQ(web["closers"][0]["container"], "docker:0123456789ab");
  EXPECT_EQ(web["closer_unknown"], 0);

  auto doc = snapshotFromJson(j);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  const Snapshot& r = doc->snapshot;
  EXPECT_EQ(r.closerSource, CloserSource::KernelProbe);
  EXPECT_EQ(r.closesLost, 3u);
  ASSERT_EQ(r.closers.size(), 2u);
  EXPECT_EQ(r.closers[0].key, client.key);
  EXPECT_EQ(r.closers[1].container.shortName(), "docker:0123456789ab");
  EXPECT_EQ(r.timeWaitByCloser, s.timeWaitByCloser);
  EXPECT_EQ(snapshotToJson(r).dump(), text);

  // A closer with more new sockets than sockets is refused, with its path.
  auto bad = j;
  bad["time_wait"][0]["closers"][0]["created"] = 9;
  auto refused = snapshotFromJson(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("time_wait[0].closers[0]"), std::string::npos)
      << refused.error().message;
}

TEST(SnapshotJson, BadDocumentsNameThePath) {
  const auto good = nlohmann::json::parse(snapshotToJson(buildShop().snapshot).dump());
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    std::string error;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j = nlohmann::json::array(); },
       "(top level): expected a JSON object"},
      {[](nlohmann::json& j) { j.erase("processes"); }, "processes: missing"},
      {[](nlohmann::json& j) { j["processes"] = 3; }, "processes: expected an array"},
      {[](nlohmann::json& j) { j["processes"][1]["states"].erase("CLOSE_WAIT"); },
       "processes[1].states.CLOSE_WAIT: missing"},
      {[](nlohmann::json& j) { j["processes"][1]["states"]["LISTEN"] = -1; },
       "processes[1].states.LISTEN: expected an integer between 0 and 18446744073709551615"},
      {[](nlohmann::json& j) { j["processes"][0]["pid"] = "100"; },
       "processes[0].pid: expected an integer between 0 and 2147483647"},
      {[](nlohmann::json& j) { j["processes"][0]["netns"] = "net:[1]"; },
       "processes[0].netns: \"net:[1]\" is not one of \"namespaces\""},
      {[](nlohmann::json& j) { j["processes"][2]["listen_ports"] = {70000}; },
       "processes[2].listen_ports[0]: expected an integer between 0 and 65535"},
      {[](nlohmann::json& j) { j["time_wait"][0]["destination"] = "10.0.0.9"; },
       "time_wait[0].destination: \"10.0.0.9\" is not an address:port"},
      {[](nlohmann::json& j) { j["time_wait"][0]["source"] = "ten"; },
       "time_wait[0].source: \"ten\" is not an IP address"},
      {[](nlohmann::json& j) { j["time_wait"][1]["side"] = "both"; },
       "time_wait[1].side: \"both\" is neither server nor client"},
      {[](nlohmann::json& j) { j["namespaces"][0]["ephemeral_ports"]["low"] = 70000; },
       "namespaces[0].ephemeral_ports.low: expected an integer between 0 and 65535"},
      {[](nlohmann::json& j) {
         j["namespaces"][0]["tcp_hash"] = {{"buckets", 512}};
       },
       "namespaces[0].tcp_hash.shared_with_host: missing"},
      {[](nlohmann::json& j) {
         j["namespaces"][0]["tcp_hash"] = {{"buckets", 512}, {"shared_with_host", 1}};
       },
       "namespaces[0].tcp_hash.shared_with_host: expected true or false"},
      {[](nlohmann::json& j) {
         j["namespaces"][0]["tcp_hash"] = {{"buckets", 0}, {"shared_with_host", true}};
       },
       "namespaces[0].tcp_hash.buckets: a table has at least one bucket"},
      {[](nlohmann::json& j) { j["states"]["TIME_WAIT"] = 7; },
       "states: the totals differ from the namespaces' sum"},
      {[](nlohmann::json& j) { j["processes"][0]["close_wait_kinds"]["abandoned"] = 2; },
       "processes[0].close_wait_kinds: the kinds add up to 2, not to the 3 CLOSE_WAIT sockets of "
       "\"states\""},
      {[](nlohmann::json& j) { j["processes"][1]["close_wait_kinds"].erase("unread_data"); },
       "processes[1].close_wait_kinds.unread_data: missing"},
      {[](nlohmann::json& j) { j["processes"][0]["close_wait_oldest_age_seconds"] = -1; },
       "processes[0].close_wait_oldest_age_seconds: a negative age"},
  };
  for (const Case& c : cases) {
    nlohmann::json j = good;
    c.edit(j);
    auto doc = snapshotFromJson(j);
    ASSERT_FALSE(doc.ok()) << c.error;
    EXPECT_EQ(doc.error().message, c.error);
  }
  // Unknown keys are ignored: a newer daemon may add some.
  nlohmann::json j = good;
  j["something_new"] = {1, 2};
  j["processes"][0]["new_field"] = true;
  EXPECT_TRUE(snapshotFromJson(j).ok());
}

}  // namespace
}  // namespace waitwatch::api
