// SPDX-License-Identifier: Apache-2.0
// Fuzz entry over what an HTTP client sends: the bytes go, unchanged, over a real loopback TCP
// connection to the daemon's own HTTP stack (HttpServer on libmicrohttpd, which parses the
// request line, the query string and the headers, then routeRequest and DaemonApi), serving a
// published poll. What must hold for any bytes: an answer or a close within seconds (never a
// hang), a well-formed status line, never a 500, and a 200 only for a GET or HEAD of one of
// the three paths.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "fuzz_entries.hpp"
#include "service/api.hpp"
#include "service/http_server.hpp"
#include "support/sample_poll.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::fuzz {
namespace {

struct Server {
  std::shared_ptr<PollMetrics> poll = std::make_shared<PollMetrics>();
  std::shared_ptr<DaemonApi> api;
  std::unique_ptr<HttpServer> http;
  std::uint16_t port = 0;
  std::string error;
};

// One server for the whole run: the daemon's settings, but a short idle timeout and room for
// the connections that inputs leave half sent until it frees them (all from 127.0.0.1).
Server& server() {
  static Server* s = [] {
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = std::max<rlim_t>(files.rlim_cur, std::min<rlim_t>(files.rlim_max, 8192));
    ::setrlimit(RLIMIT_NOFILE, &files);
    auto* out = new Server;
    out->poll->publish(testing::sampleView(), MetricsOptions{});
    out->api = std::make_shared<DaemonApi>(
        out->poll, std::vector<std::shared_ptr<const prometheus::Collectable>>{out->poll});
    auto fd = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
    if (!fd) {
      out->error = fd.error().message;
      return out;
    }
    out->port = localEndpoint(fd->get())->port;
    auto http = HttpServer::start(
        std::move(*fd), [api = out->api](const HttpRequest& r) { return api->handle(r); },
        HttpServerOptions{.threads = 2,
                          .maxConnections = 2000,
                          .maxConnectionsPerIp = 2000,
                          .idleTimeoutSeconds = 1,
                          .connectionMemoryLimit = 32 * 1024});
    if (!http) {
      out->error = http.error().message;
    } else {
      out->http = std::move(*http);
    }
    return out;
  }();
  return *s;
}

struct Exchange {
  std::string reply;
  bool timedOut = false;
  bool connected = false;
};

// Whether `reply` holds a whole final response (interim 1xx ones are skipped): its headers
// and Content-Length bytes of body (none for HEAD).
bool complete(std::string_view reply, bool head) {
  for (;;) {
    const auto end = reply.find("\r\n\r\n");
    if (end == std::string_view::npos) return false;
    const std::string_view headers = reply.substr(0, end + 2);
    if (startsWith(headers, "HTTP/1.1 1") || startsWith(headers, "HTTP/1.0 1")) {
      reply.remove_prefix(end + 4);
      continue;
    }
    if (head) return true;
    std::size_t length = 0;
    for (std::string_view name : {"\r\nContent-Length: ", "\r\ncontent-length: "}) {
      const auto at = headers.find(name);
      if (at == std::string_view::npos) continue;
      for (std::size_t i = at + name.size();
           i < headers.size() && headers[i] >= '0' && headers[i] <= '9'; ++i)
        length = length * 10 + static_cast<std::size_t>(headers[i] - '0');
    }
    return reply.size() >= end + 4 + length;
  }
}

// Sends `request`, half-closes, and reads until the server closes, a whole final response is
// in, or `timeout` passes (an idle keep-alive connection is the server's to time out).
Exchange exchange(std::string_view request, bool head, std::chrono::milliseconds timeout) {
  Exchange x;
  Server& s = server();
  if (!s.http) return x;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return x;
  timeval tv{};
  tv.tv_sec = 2;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(s.port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) return x;
  x.connected = true;
  std::size_t off = 0;
  while (off < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early: its answer (if any) is still readable
    off += static_cast<std::size_t>(n);
  }
  ::shutdown(fd.get(), SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    if (complete(x.reply, head)) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      x.timedOut = true;
      break;
    }
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) == 0) continue;
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      x.reply.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    break;  // closed (or reset)
  }
  return x;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path a server may route: the request target up to '?', %XX-decoded, up to a NUL.
std::string decodedPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::string out;
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c == '%' && i + 2 < target.size() && hexValue(target[i + 1]) >= 0 &&
        hexValue(target[i + 2]) >= 0) {
      c = static_cast<char>(hexValue(target[i + 1]) * 16 + hexValue(target[i + 2]));
      i += 2;
    }
    if (c == '\0') break;
    out.push_back(c);
  }
  return out;
}

}  // namespace

const char* httpRequest(const std::uint8_t* data, std::size_t size) {
  if (!server().http) return "the HTTP server did not start";
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  // The request line of the first request: METHOD SP TARGET SP VERSION, after any empty lines
  // a client may send first. libmicrohttpd hands lines, the method and the target over as C
  // strings: a NUL ends them (a line "\0junk" is an empty line; "GET\0junk /metrics" is served
  // as GET /metrics; harmless, since routes match exactly).
  auto cString = [](std::string_view s) { return s.substr(0, s.find('\0')); };
  std::string_view rest = request;
  std::string_view line;
  for (;;) {
    const auto nl = rest.find('\n');
    line = rest.substr(0, nl);
    const std::string_view c = cString(line);
    if ((!c.empty() && c != "\r") || nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  const auto sp1 = line.find(' ');
  const std::string_view method = cString(line.substr(0, sp1));
  const std::string_view after = sp1 == std::string_view::npos ? "" : line.substr(sp1 + 1);
  const std::string path = decodedPath(cString(after.substr(0, after.find(' '))));

  // Every input ends in an answer or a close: a request the server is still waiting on (a
  // promised body that never comes) is closed at the idle timeout (1 s here). Neither within
  // 3 s is a failure, however loaded the machine: a handler that hangs must not pass.
  const Exchange x = exchange(request, method == "HEAD", std::chrono::milliseconds(3000));
  if (!x.connected) return "cannot connect to the server";
  if (x.reply.empty() && x.timedOut) return "neither an answer nor a close within 3 s";
  if (x.reply.empty()) return nullptr;  // closed without an answer (an incomplete request)
  const std::string_view r = x.reply;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!(startsWith(r, "HTTP/1.1 ") || startsWith(r, "HTTP/1.0 ")) || r.size() < 13 ||
      !digit(r[9]) || !digit(r[10]) || !digit(r[11]) || r[12] != ' ') {
    return "reply does not start with an HTTP status line";
  }
  const int status = (r[9] - '0') * 100 + (r[10] - '0') * 10 + (r[11] - '0');
  // 500 is what DaemonApi answers when a handler throws; 501 and 505 are libmicrohttpd's
  // refusals of what it does not implement.
  if (status == 500 || status == 502 || status == 503 || status == 504) {
    return "server error for a client's request";
  }
  if (status == 200) {
    if (sp1 == std::string_view::npos) return "200 without a request line";
    if (method != "GET" && method != "HEAD") return "200 for a method other than GET and HEAD";
    if (path != "/metrics" && path != "/api/v1/snapshot" && path != "/api/v1/alerts") {
      return "200 for a path that is not a route";
    }
  }
  return nullptr;
}

const char* httpServerAlive() {
  if (!server().http) return "the HTTP server did not start";
  const auto start = std::chrono::steady_clock::now();
  const Exchange x = exchange("GET /metrics HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
                              false, std::chrono::milliseconds(3000));
  if (!startsWith(x.reply, "HTTP/1.1 200 ")) return "the server no longer answers a scrape";
  if (x.reply.find("waitwatch_sockets{") == std::string::npos) return "scrape without metrics";
  if (std::chrono::steady_clock::now() - start > std::chrono::seconds(2)) {
    return "a scrape took more than 2 s";
  }
  return nullptr;
}

}  // namespace waitwatch::fuzz
