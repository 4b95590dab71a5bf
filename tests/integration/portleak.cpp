// SPDX-License-Identifier: Apache-2.0
// portleak: a client that leaks every connection it makes, at a steady rate, until it runs out
// of source ports. A server process it forks accepts each connection and closes it at once, so
// the client's socket goes to CLOSE_WAIT and keeps its source port: the client never reads or
// closes it, as a leaking connection pool does. The client records when connect() first fails
// with EADDRNOTAVAIL (no free port toward that destination), then stops connecting.
//
// Prints {"pid": PID, "server": PID} and READY, then answers each stdin line with one JSON line:
// {"open": N, "now_ms": T, "eaddrnotavail_ms": T or null} (CLOCK_MONOTONIC milliseconds, the
// clock of std::chrono::steady_clock). Exits when stdin closes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "leak_tool.hpp"

namespace {

constexpr const char* kTool = "portleak";
using leak_tool::monotonicMs;
[[noreturn]] void die(const std::string& what) {
  leak_tool::die(kTool, what);
}
unsigned long number(const char* flag, const char* text) {
  return leak_tool::number(kTool, flag, text);
}

// Accepts every connection and closes it at once: the peer is left in CLOSE_WAIT.
[[noreturn]] void server(int listener) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  unsigned long rate = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") {
      port = static_cast<std::uint16_t>(number("--port", argv[i + 1]));
    } else if (flag == "--rate") {
      rate = number("--rate", argv[i + 1]);
    } else {
      std::fprintf(stderr, "portleak: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (port == 0 || rate == 0 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: portleak --port PORT --rate PER_SECOND\n");
    return 2;
  }

  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) die("bind");
  if (::listen(listener, 4096) != 0) die("listen");
  const pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    server(listener);
  }
  ::close(listener);
  std::printf("{\"pid\": %d, \"server\": %d}\nREADY\n", static_cast<int>(::getpid()),
              static_cast<int>(child));
  std::fflush(stdout);

  const auto step = std::chrono::microseconds(1'000'000 / rate);
  auto next = std::chrono::steady_clock::now();
  std::int64_t failedMs = -1;
  int open = 0;
  for (;;) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next - std::chrono::steady_clock::now());
    pollfd in{0, POLLIN, 0};
    const int timeout =
        failedMs >= 0 ? -1 : static_cast<int>(std::max<std::int64_t>(0, wait.count()));
    if (::poll(&in, 1, timeout) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (in.revents != 0) {
      char buf[256];
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') continue;
        const std::string failed = failedMs < 0 ? "null" : std::to_string(failedMs);
        std::printf("{\"open\": %d, \"now_ms\": %lld, \"eaddrnotavail_ms\": %s}\n", open,
                    static_cast<long long>(monotonicMs()), failed.c_str());
        std::fflush(stdout);
      }
      continue;
    }
    if (failedMs >= 0 || std::chrono::steady_clock::now() < next) continue;
    next += step;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
      if (errno != EADDRNOTAVAIL) die("connect");
      failedMs = monotonicMs();
      ::close(fd);
      continue;
    }
    ++open;  // kept, never read: it goes to CLOSE_WAIT when the server closes
  }
  ::kill(child, SIGKILL);
  return 0;
}
