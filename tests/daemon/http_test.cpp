// The HTTP server on loopback with the daemon's API: routes, status codes, JSON shapes, and
// clients that misbehave (slow-loris, a huge header) while a scrape goes on.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "service/api.hpp"
#include "service/daemon.hpp"
#include "service/health.hpp"
#include "service/http_server.hpp"
#include "test_snapshot.hpp"

namespace waitwatch {
namespace {

TEST(ApiRoutes, ExactPathsGetAndHeadOnly) {
  EXPECT_EQ(routeRequest("GET", "/metrics"), ApiRoute::Metrics);
  EXPECT_EQ(routeRequest("HEAD", "/metrics"), ApiRoute::Metrics);
  EXPECT_EQ(routeRequest("GET", "/api/v1/snapshot"), ApiRoute::Snapshot);
  EXPECT_EQ(routeRequest("GET", "/api/v1/alerts"), ApiRoute::Alerts);
  EXPECT_EQ(routeRequest("GET", "/metrics/"), ApiRoute::NotFound);
  EXPECT_EQ(routeRequest("GET", "/"), ApiRoute::NotFound);
  EXPECT_EQ(routeRequest("GET", "/api/v1/snapshot/x"), ApiRoute::NotFound);
  EXPECT_EQ(routeRequest("GET", ""), ApiRoute::NotFound);
  EXPECT_EQ(routeRequest("POST", "/metrics"), ApiRoute::MethodNotAllowed);
  EXPECT_EQ(routeRequest("get", "/metrics"), ApiRoute::MethodNotAllowed);
  EXPECT_EQ(routeRequest("DELETE", "/nope"), ApiRoute::MethodNotAllowed);
}

TEST(StatusLine, CountsSocketsProcessesAndAlerts) {
  const Snapshot s = test::sampleSnapshot();
  EXPECT_EQ(statusLine(s, 1), "17 sockets, 2 processes with CLOSE_WAIT, 1 alert firing");
  EXPECT_EQ(statusLine(Snapshot{}, 0), "0 sockets, 0 processes with CLOSE_WAIT, 0 alerts firing");
}

TEST(ApiJson, SnapshotHasTheCliKeysAndAges) {
  const auto view = test::sampleView();
  const auto j = snapshotJson(*view);
  EXPECT_EQ(j["states"]["CLOSE_WAIT"], 3);
  EXPECT_EQ(j["states"].size(), 11u);
  ASSERT_EQ(j["processes"].size(), 3u);
  const auto& p = j["processes"][1];
  EXPECT_EQ(p["pid"], 101);
  EXPECT_EQ(p["comm"], "nginx");
  EXPECT_EQ(p["user"], "www-data");
  EXPECT_EQ(p["unit"], "nginx.service");
  EXPECT_EQ(p["container"], "");
  EXPECT_EQ(p["netns"], "net:[4026531840]");
  EXPECT_EQ(p["states"]["CLOSE_WAIT"], 1);
  EXPECT_EQ(p["listen_ports"].dump(), "[8080]");
  EXPECT_DOUBLE_EQ(p["close_wait_oldest_age_seconds"].get<double>(), 30.5);
  EXPECT_EQ(p["close_wait_oldest_age_is_lower_bound"], true);
  EXPECT_FALSE(p.contains("cmdline"));  // the API shows no command lines
  EXPECT_FALSE(j["processes"][2].contains("close_wait_oldest_age_seconds"));
  EXPECT_EQ(j["namespaces"][0]["time_wait_created_total"], 12);
  EXPECT_EQ(j["time_wait"][0]["destination"], "10.0.0.9:5432");
  EXPECT_EQ(j["unattributed"]["no_permission"], 4);
}

TEST(ApiJson, AlertDetails) {
  const auto view = test::sampleView();
  const auto j = alertsJson(*view);
  ASSERT_EQ(j["alerts"].size(), 1u);
  const auto& a = j["alerts"][0];
  EXPECT_EQ(a["rule"], "close-wait-leak");
  EXPECT_EQ(a["type"], "close_wait");
  EXPECT_EQ(a["severity"], "warning");
  EXPECT_EQ(a["group"]["pid"], 100);
  EXPECT_EQ(a["count"], 2);
  EXPECT_DOUBLE_EQ(a["oldest_age_seconds"].get<double>(), 120.0);
  EXPECT_EQ(a["local_ports"][0]["port"], 8080);
  EXPECT_EQ(a["reasons"].dump(), R"(["old_sockets"])");
}

// ----- a real server on loopback

struct Reply {
  int status = 0;  // 0: the server closed without a status line
  std::string headers;
  std::string body;
};

UniqueFd connectTo(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return fd;
}

Reply roundTrip(std::uint16_t port, const std::string& request) {
  Reply r;
  UniqueFd fd = connectTo(port);
  if (!fd) return r;
  std::size_t off = 0;
  while (off < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  std::string data;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;)
    data.append(buf, n);
  if (data.rfind("HTTP/1.", 0) != 0 || data.size() < 12) return r;
  r.status = std::stoi(data.substr(9, 3));
  const auto split = data.find("\r\n\r\n");
  r.headers = data.substr(0, split);
  if (split != std::string::npos) r.body = data.substr(split + 4);
  return r;
}

Reply get(std::uint16_t port, const std::string& path, const std::string& method = "GET") {
  return roundTrip(port, method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fd = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
    ASSERT_TRUE(fd.ok()) << fd.error().message;
    port_ = localEndpoint(fd->get())->port;
    api_ = std::make_shared<DaemonApi>(
        poll_,
        std::vector<std::shared_ptr<const prometheus::Collectable>>{poll_, health_.registry()});
    auto server = HttpServer::start(
        std::move(*fd), [api = api_](const HttpRequest& r) { return api->handle(r); },
        HttpServerOptions{.threads = 2,
                          .maxConnections = 256,
                          .idleTimeoutSeconds = 10,
                          .connectionMemoryLimit = 16 * 1024});
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
  }

  std::shared_ptr<PollMetrics> poll_ = std::make_shared<PollMetrics>();
  HealthMetrics health_{"9.9.9"};
  std::shared_ptr<DaemonApi> api_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(HttpServerTest, ServesMetricsAndJson) {
  // Before the first poll: health metrics only, and the JSON views say so.
  Reply early = get(port_, "/metrics");
  EXPECT_EQ(early.status, 200);
  EXPECT_NE(early.body.find(R"(waitwatch_build_info{version="9.9.9"} 1)"), std::string::npos);
  EXPECT_EQ(early.body.find("waitwatch_sockets"), std::string::npos);
  EXPECT_EQ(get(port_, "/api/v1/snapshot").status, 503);

  poll_->publish(test::sampleView(), MetricsOptions{});
  Reply m = get(port_, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(m.body.find(R"(waitwatch_sockets{netns="net:[4026531840]",state="CLOSE_WAIT"} 3)"),
            std::string::npos);
  Reply s = get(port_, "/api/v1/snapshot");
  ASSERT_EQ(s.status, 200);
  EXPECT_NE(s.headers.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(s.body)["processes"].size(), 3u);
  Reply a = get(port_, "/api/v1/alerts");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(nlohmann::json::parse(a.body)["alerts"][0]["rule"], "close-wait-leak");
  Reply head = get(port_, "/metrics", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  EXPECT_EQ(get(port_, "/").status, 404);
  EXPECT_EQ(get(port_, "/metrics?x=1").status, 200);  // a query string does not change the route
  EXPECT_EQ(get(port_, "/../etc/passwd").status, 404);
  Reply post = roundTrip(port_,
                         "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         "Connection: close\r\n\r\nhello");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(get(port_, "/metrics", "DELETE").status, 405);
}

TEST_F(HttpServerTest, GarbageAndHugeHeadersAreRefused) {
  Reply garbage = roundTrip(port_, "\x01\x02 garbage \xff\r\n\r\n");
  EXPECT_TRUE(garbage.status == 400 || garbage.status == 0) << garbage.status;
  const std::string huge =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(256 * 1024, 'a') +
      "\r\nConnection: close\r\n\r\n";
  Reply big = roundTrip(port_, huge);
  EXPECT_TRUE(big.status == 431 || big.status == 413 || big.status == 0) << big.status;
  EXPECT_EQ(get(port_, "/metrics").status, 200);  // and the server still serves
}

TEST_F(HttpServerTest, SlowClientsDoNotStallScrapes) {
  // 100 slow-loris clients: each sent half a request and waits. They hold no thread.
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 100; ++i) {
    UniqueFd fd = connectTo(port_);
    ASSERT_TRUE(fd.valid());
    const std::string partial = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    ASSERT_GT(::send(fd.get(), partial.data(), partial.size(), MSG_NOSIGNAL), 0);
    slow.push_back(std::move(fd));
  }
  for (int i = 0; i < 10; ++i) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(get(port_, "/metrics").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  }
}

TEST(HttpListen, AddressInUseIsAClearError) {
  auto first = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
  ASSERT_TRUE(first.ok());
  const auto port = localEndpoint(first->get())->port;
  auto second = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), port});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().errnum, EADDRINUSE);
  EXPECT_EQ(second.error().message,
            "cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}

}  // namespace
}  // namespace waitwatch
