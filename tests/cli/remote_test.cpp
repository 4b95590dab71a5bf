// SPDX-License-Identifier: Apache-2.0
// `waitwatch --from`: the real HTTP client (libcurl) against a real listener on loopback that
// answers like waitwatchd's /api/v1/snapshot and /api/v1/alerts. No root needed.
#include "cli/remote.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "cli/run.hpp"
#include "support/shop.hpp"
#include "support/text_lines.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::cli {
namespace {

using testing::splitLines;

struct Answer {
  int status = 200;
  std::string body;
};

// A one-thread HTTP/1.1 server on 127.0.0.1: one request per connection, answers by path.
class FakeDaemon {
 public:
  explicit FakeDaemon(std::map<std::string, Answer> answers) : answers_(std::move(answers)) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_.get(), 16) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    ::shutdown(listener_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }
  FakeDaemon(const FakeDaemon&) = delete;
  FakeDaemon& operator=(const FakeDaemon&) = delete;

  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      ++requests_;
      const auto sp1 = request.find(' ');
      const auto sp2 = request.find(' ', sp1 + 1);
      const std::string path = request.substr(sp1 + 1, sp2 - sp1 - 1);
      auto it = answers_.find(path);
      const Answer a = it != answers_.end() ? it->second : Answer{404, "not found\n"};
      const std::string reply = "HTTP/1.1 " + std::to_string(a.status) +
                                " X\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(a.body.size()) + "\r\nConnection: close\r\n\r\n" +
                                a.body;
      std::size_t sent = 0;
      while (sent < reply.size()) {
        // MSG_NOSIGNAL: a client that stops reading must not end the test with SIGPIPE.
        const ssize_t n = ::send(c.get(), reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
    }
  }

  std::map<std::string, Answer> answers_;
  UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
};

// What waitwatchd would serve for the shop, with ages and one alert.
std::map<std::string, Answer> daemonAnswers() {
  auto shop = testing::buildShop();
  shop.snapshot.pollInterval = Duration(5000);
  const std::vector<SocketAge> ages = {
      {Duration(3 * 3600'000 + 12 * 60'000), true}, {Duration(95'000), false}, {}};
  const nlohmann::ordered_json header{{"version", "0.1.0"}, {"time_unix_seconds", 1700000000.0}};
  const nlohmann::ordered_json trailer{{"alerts_firing", 1}};
  const auto snapshot = api::snapshotToJson(
      shop.snapshot,
      api::SnapshotJsonOptions{.closeWaitOldest = ages, .header = &header, .trailer = &trailer});
  const std::string alerts = R"({"time_unix_seconds":1700000000.0,"alerts":[
      {"rule":"close-wait-leak","type":"close_wait","severity":"critical","state":"firing",
       "message":"nginx[100] (nginx.service) holds 3 CLOSE_WAIT sockets on :8080, the oldest stuck for 3h12m",
       "since_unix_seconds":1699988480.0,"count":3}]})";
  return {{"/api/v1/snapshot", {200, snapshot.dump()}}, {"/api/v1/alerts", {200, alerts}}};
}

struct Output {
  int status = 0;
  std::string out;
  std::string err;
};

Output runCli(std::vector<std::string_view> args) {
  std::ostringstream o;
  std::ostringstream e;
  Output r;
  r.status = run(args, o, e);
  r.out = o.str();
  r.err = e.str();
  return r;
}

TEST(CliRemote, TheDaemonsViewWithAgesAndAlerts) {
  FakeDaemon daemon(daemonAnswers());
  const std::string url = daemon.url();
  const Output r = runCli({"--from", url});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto t = splitLines(r.out);
  ASSERT_GE(t.size(), 12u) << r.out;
  EXPECT_EQ(t[0].rfind("waitwatchd 0.1.0 at " + url + ", poll of ", 0), 0u) << t[0];
  EXPECT_NE(t[0].find("(every 5s)"), std::string::npos) << t[0];
  EXPECT_EQ(t[2], "1 alert firing");
  EXPECT_EQ(t[3].rfind("  critical  close-wait-leak  since ", 0), 0u) << t[3];
  EXPECT_EQ(t[4],
            "    nginx[100] (nginx.service) holds 3 CLOSE_WAIT sockets on :8080, the oldest stuck "
            "for 3h12m");
  EXPECT_EQ(t[6],
            "PID  USER      UNIT/CONTAINER       COMMAND  ESTAB  CLOSE-WAIT   OLDEST  KIND  "
            "FIN-WAIT  LISTEN  OTHER  PORTS");
  EXPECT_EQ(t[7],
            "100  www-data  nginx.service        nginx        2           3  >=3h12m  3a    "
            "       0       2      0  80w 8080r");
  EXPECT_EQ(t[8],
            "101  www-data  nginx.service        nginx        0           1    1m35s  1a    "
            "       0       1      0  80w");
  EXPECT_NE(r.out.find("10.0.0.1  10.0.0.9:5432r          4     2  0.02% of 28232"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("TOTAL  18 TCP sockets: ESTAB 4, SYN-SENT 1, FIN-WAIT-2 1, TIME-WAIT 6, "
                       "CLOSE-WAIT 4, LISTEN 2\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(daemon.requests(), 2);
}

TEST(CliRemote, JsonAndFilters) {
  FakeDaemon daemon(daemonAnswers());
  const Output r = runCli({"--from", daemon.url(), "--json", "--state", "close-wait"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["source"], daemon.url());
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["states"]["CLOSE_WAIT"], 4);
  EXPECT_EQ(j["states"]["ESTABLISHED"], 0);
  ASSERT_EQ(j["processes"].size(), 2u);
  EXPECT_EQ(j["processes"][0]["pid"], 100);
  EXPECT_EQ(j["processes"][0]["close_wait_oldest_age_seconds"], 11520.0);
  EXPECT_EQ(j["processes"][1]["pid"], 101);
  EXPECT_EQ(j["processes"][1]["close_wait_oldest_age_seconds"], 95.0);
  ASSERT_EQ(j["alerts"].size(), 1u);
  EXPECT_EQ(j["alerts"][0]["rule"], "close-wait-leak");

  const Output p = runCli({"--from", daemon.url(), "--pid", "101"});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_NE(p.out.find("\n101  www-data"), std::string::npos) << p.out;
  EXPECT_EQ(p.out.find("\n100  www-data"), std::string::npos) << p.out;
}

// A pid or unit the daemon's snapshot has no process of is said on stderr, not shown as an
// empty table; the run fails when none of them is there.
TEST(CliRemote, PidsAndUnitsNotInTheSnapshotAreSaid) {
  FakeDaemon daemon(daemonAnswers());
  const std::string url = daemon.url();
  const Output missing = runCli({"--from", url, "--pid", "999999"});
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.out, "");
  EXPECT_EQ(missing.err, "waitwatch: process 999999 is not in the snapshot of " + url +
                             " (no such process there, or it holds no TCP socket)\n");
  const Output unit = runCli({"--from", url, "--unit", "nosuch.service", "--json"});
  EXPECT_EQ(unit.status, 1);
  EXPECT_EQ(unit.out, "");
  EXPECT_NE(unit.err.find("unit or container 'nosuch.service' is not in the snapshot"),
            std::string::npos)
      << unit.err;
  // A process that is there but has no socket in the states asked for is not "missing".
  const Output filtered = runCli({"--from", url, "--pid", "101", "--state", "time-wait"});
  EXPECT_EQ(filtered.status, 0) << filtered.err;
  EXPECT_EQ(filtered.err.find("is not in the snapshot"), std::string::npos) << filtered.err;
  // One of two found: shown, the other said, success.
  const Output some = runCli({"--from", url, "--pid", "101", "--pid", "999999"});
  EXPECT_EQ(some.status, 0) << some.err;
  EXPECT_NE(some.out.find("\n101  www-data"), std::string::npos) << some.out;
  EXPECT_NE(some.err.find("process 999999 is not in the snapshot"), std::string::npos) << some.err;
}

TEST(CliRemote, ErrorsAreOneLineAndExitOne) {
  {
    // Nothing listens on a port whose socket was just closed.
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    s.reset();
    const Output r = runCli({"--from", url});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("waitwatch: " + url + "/api/v1/snapshot: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("onnect"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("is waitwatchd running"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  struct Case {
    std::map<std::string, Answer> answers;
    std::string error;  // after "waitwatch: URL"
  };
  auto good = daemonAnswers();
  auto noPoll = good;
  noPoll["/api/v1/snapshot"] = {503, "no poll has completed yet\n"};
  auto notJson = good;
  notJson["/api/v1/snapshot"] = {200, "<html>hello</html>"};
  auto badSnapshot = good;
  badSnapshot["/api/v1/snapshot"] = {200, R"({"namespaces":[],"processes":{}})"};
  // A server that sends more than any snapshot is cut off at 64 MiB, not buffered further.
  auto huge = good;
  huge["/api/v1/snapshot"] = {200, std::string((64u << 20) + 4096, ' ')};
  auto badAlerts = good;
  badAlerts["/api/v1/alerts"] = {200, R"({"alerts":[1]})"};
  const std::vector<Case> cases = {
      {noPoll, "/api/v1/snapshot: HTTP 503: no poll has completed yet"},
      {notJson,
       "/api/v1/snapshot: the answer is not JSON (18 bytes, starting \"<html>hello</html>\")"},
      {badSnapshot, "/api/v1/snapshot: processes: expected an array"},
      {badAlerts, "/api/v1/alerts: alerts[0]: expected an object"},
      {{}, "/api/v1/snapshot: HTTP 404: not found"},
      {huge,
       "/api/v1/snapshot: the answer is larger than 64 MiB, more than a waitwatchd snapshot of "
       "fewer than ~300,000 TIME_WAIT destinations: not a waitwatchd?"},
  };
  for (const Case& c : cases) {
    FakeDaemon daemon(c.answers);
    const Output r = runCli({"--from", daemon.url()});
    EXPECT_EQ(r.status, 1) << c.error;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "waitwatch: " + daemon.url() + c.error + "\n");
  }
}

}  // namespace
}  // namespace waitwatch::cli
