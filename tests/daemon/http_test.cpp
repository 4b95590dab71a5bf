// SPDX-License-Identifier: Apache-2.0
// The HTTP server on loopback with the daemon's API: routes, status codes, JSON shapes, and
// clients that misbehave (slow-loris, a huge header) while a scrape goes on.
#include <arpa/inet.h>
#include <crypt.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "service/api.hpp"
#include "service/daemon.hpp"
#include "service/health.hpp"
#include "service/http_server.hpp"
#include "support/sample_poll.hpp"

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

TEST(ApiJson, SnapshotHasTheCliKeysAndAges) {
  const auto view = testing::sampleView();
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
  const auto view = testing::sampleView();
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
  // Sends while watching for the answer: a server that refuses a request early (a header too
  // large) answers before reading the rest and then closes, and a client that kept writing
  // would lose the answer to the reset that unread data causes.
  std::string data;
  char buf[65536];
  std::size_t off = 0;
  while (off < request.size()) {
    pollfd p{fd.get(), POLLIN | POLLOUT, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    if (p.revents & POLLIN) break;  // the answer has started: read it below
    const ssize_t n = ::send(fd.get(), request.data() + off,
                             std::min<std::size_t>(request.size() - off, 16384), MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
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

  poll_->publish(testing::sampleView(), MetricsOptions{});
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
  // Each refusal is an answer with its status: a handler that died would leave 0.
  Reply garbage = roundTrip(port_, "\x01\x02 garbage \xff\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  const std::string huge =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(256 * 1024, 'a') +
      "\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(roundTrip(port_, huge).status, 431);
  const std::string longUri =
      "GET /" + std::string(256 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(roundTrip(port_, longUri).status, 414);
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

// Basic auth in the server: the challenge, the verdicts, every method and path; bcrypt runs on
// the verifier thread while the connection is suspended.
class HttpAuthTest : public ::testing::Test {
 protected:
  void start(const std::string& hash, unsigned maxPendingLogins = 8) {
    auto fd = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
    ASSERT_TRUE(fd.ok()) << fd.error().message;
    port_ = localEndpoint(fd->get())->port;
    auth_ = std::make_shared<BasicAuth>(
        std::vector<BasicAuthUser>{BasicAuthUser{.name = "alice", .bcryptHash = hash}});
    HttpServerOptions options;
    options.auth = auth_;
    options.maxPendingLogins = maxPendingLogins;
    auto server = HttpServer::start(
        std::move(*fd),
        [](const HttpRequest& r) {
          return HttpResponse{.status = r.path == "/metrics" ? 200u : 404u,
                              .contentType = "text/plain",
                              .body = "payload\n",
                              .allow = {}};
        },
        options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
  }
  Reply request(const std::string& path, const std::string& authorization,
                const std::string& method = "GET", const std::string& body = "") {
    std::string r = method + " " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!authorization.empty()) r += "Authorization: Basic " + authorization + "\r\n";
    if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return roundTrip(port_, r + "\r\n" + body);
  }

  std::shared_ptr<BasicAuth> auth_;
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

// "secret" at bcrypt cost 4; base64 of "alice:secret" and "alice:wrong".
constexpr const char* kAliceHash = "$2b$04$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK";
constexpr const char* kAliceSecret = "YWxpY2U6c2VjcmV0";
constexpr const char* kAliceWrong = "YWxpY2U6d3Jvbmc=";

TEST_F(HttpAuthTest, EveryRequestNeedsValidCredentials) {
  start(kAliceHash);
  for (const std::string& credentials : {std::string(), std::string(kAliceWrong),
                                         std::string("bm90IGJhc2U2NA"), std::string("%%%")}) {
    SCOPED_TRACE(credentials);
    const Reply r = request("/metrics", credentials);
    EXPECT_EQ(r.status, 401);
    EXPECT_NE(r.headers.find("WWW-Authenticate: Basic realm=\"waitwatch\""), std::string::npos)
        << r.headers;
    EXPECT_EQ(r.body.find("payload"), std::string::npos);
  }
  const Reply ok = request("/metrics", kAliceSecret);  // bcrypt on the verifier thread
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "payload\n");
  EXPECT_EQ(auth_->lookup("alice", "secret"), BasicAuth::Verdict::Allowed);
  EXPECT_EQ(request("/metrics", kAliceSecret).status, 200);  // from the cache
  EXPECT_EQ(request("/other", "").status, 401);
  EXPECT_EQ(request("/other", kAliceSecret).status, 404);
  EXPECT_EQ(request("/metrics", "", "POST", "hello").status, 401);
  EXPECT_EQ(request("/metrics", kAliceSecret, "POST", "hello").status, 200);
  // Users removed on reload: the server serves without authentication again.
  auth_->setUsers({});
  EXPECT_EQ(request("/metrics", "").status, 200);
}

// Stopping the server while logins wait for bcrypt: every suspended connection is resumed
// (libmicrohttpd aborts on a stop with suspended ones) and the stop does not wait for the queue.
TEST_F(HttpAuthTest, StopsPromptlyWithLoginsWaitingForBcrypt) {
  // Cost 14: ~1 s per verification here (timed below, on this machine as loaded as it is), so
  // the 8 logins the server holds are 8 verifications of work.
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  ASSERT_NE(crypt_gensalt_rn("$2b$", 14, nullptr, 0, setting, sizeof setting), nullptr);
  crypt_data data{};
  const auto hashStart = std::chrono::steady_clock::now();
  const char* hash = crypt_rn("secret", setting, &data, sizeof data);
  const auto verification = std::chrono::steady_clock::now() - hashStart;
  ASSERT_NE(hash, nullptr);
  constexpr int kPlaces = 8;
  constexpr int kClients = 16;
  start(hash, kPlaces);
  std::vector<std::thread> clients;
  std::array<std::atomic<int>, kClients> statuses{};
  for (auto& s : statuses)
    s = -1;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([this, i, &statuses] {
      // Another wrong password each ("alice:wrong0" ...), so none comes from the cache.
      static const char* kGuesses[] = {
          "YWxpY2U6d3Jvbmcw",     "YWxpY2U6d3Jvbmcx",     "YWxpY2U6d3Jvbmcy",
          "YWxpY2U6d3Jvbmcz",     "YWxpY2U6d3Jvbmc0",     "YWxpY2U6d3Jvbmc1",
          "YWxpY2U6d3Jvbmc2",     "YWxpY2U6d3Jvbmc3",     "YWxpY2U6d3Jvbmc4",
          "YWxpY2U6d3Jvbmc5",     "YWxpY2U6d3JvbmcxMA==", "YWxpY2U6d3JvbmcxMQ==",
          "YWxpY2U6d3JvbmcxMg==", "YWxpY2U6d3JvbmcxMw==", "YWxpY2U6d3JvbmcxNA==",
          "YWxpY2U6d3JvbmcxNQ=="};
      statuses[static_cast<std::size_t>(i)] = request("/metrics", kGuesses[i]).status;
    });
  }
  // The server holds 8 logins (the one being verified among them): every request has reached it
  // once the other 8 have been answered (refused with 429, or verified and denied, which frees
  // a place). The stop then finds each one answered or held.
  auto answered = [&] {
    return std::count_if(statuses.begin(), statuses.end(),
                         [](const auto& s) { return s == 429 || s == 401; });
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (answered() < kClients - kPlaces && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(answered(), kClients - kPlaces) << kClients << " guesses at once, 8 places";
  const auto stopStart = std::chrono::steady_clock::now();
  server_.reset();
  // The held logins are 8 verifications of work: the stop waits at most for the one in progress
  // and (up to 3 s) for the answers to go out, never for the queue.
  EXPECT_LT(std::chrono::steady_clock::now() - stopStart, 8 * verification)
      << "one verification took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(verification).count() << " ms";
  for (auto& t : clients)
    t.join();
  // Beyond the places: 429 at once. Held: 503 when stopped, 401 when verified first. Never 200,
  // never a connection closed without an answer.
  for (const auto& status : statuses)
    EXPECT_TRUE(status == 401 || status == 429 || status == 503) << status.load();
}

}  // namespace
}  // namespace waitwatch
