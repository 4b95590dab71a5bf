// SPDX-License-Identifier: Apache-2.0
// fdleak: a server that leaks every connection it accepts, at a steady rate, until it runs out
// of file descriptors. A client process it forks connects --rate times a second and closes
// each connection at once, so the server's socket goes to CLOSE_WAIT and stays there: the
// server never reads or closes it, as a leaking service does. The server runs with
// RLIMIT_NOFILE = --nofile, and records when accept() first fails with EMFILE.
//
// Prints {"pid": PID} and READY, then answers each stdin line with one JSON line:
// {"open_fds": N, "now_ms": T, "emfile_ms": T or null} (CLOCK_MONOTONIC milliseconds, the
// clock of std::chrono::steady_clock). Exits when stdin closes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

constexpr const char* kTool = "fdleak";
using leak_tool::monotonicMs;
[[noreturn]] void die(const std::string& what) {
  leak_tool::die(kTool, what);
}
unsigned long number(const char* flag, const char* text) {
  return leak_tool::number(kTool, flag, text);
}

// Connects `rate` times a second and closes each connection right away.
[[noreturn]] void client(std::uint16_t port, unsigned long rate) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto step = std::chrono::microseconds(1'000'000 / rate);
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) die("connect");
    ::close(fd);
    next += step;
    std::this_thread::sleep_until(next);
  }
}

int openFds() {
  int n = 0;
  for (int fd = 0; fd < 65536; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  unsigned long rate = 0;
  unsigned long nofile = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") {
      port = static_cast<std::uint16_t>(number("--port", argv[i + 1]));
    } else if (flag == "--rate") {
      rate = number("--rate", argv[i + 1]);
    } else if (flag == "--nofile") {
      nofile = number("--nofile", argv[i + 1]);
    } else {
      std::fprintf(stderr, "fdleak: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (port == 0 || rate == 0 || nofile == 0 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: fdleak --port PORT --rate PER_SECOND --nofile LIMIT\n");
    return 2;
  }

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener < 0) die("socket");
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) die("bind");
  if (::listen(listener, 4096) != 0) die("listen");

  const pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(listener);
    client(port, rate);
  }
  // The soft limit only: raising the hard one would need CAP_SYS_RESOURCE.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) die("getrlimit");
  limit.rlim_cur = nofile;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) die("setrlimit(" + std::to_string(nofile) + ")");
  std::printf("{\"pid\": %d, \"client\": %d}\nREADY\n", static_cast<int>(::getpid()),
              static_cast<int>(child));
  std::fflush(stdout);

  std::int64_t emfileMs = -1;
  std::string line;
  for (;;) {
    pollfd p[2] = {{0, POLLIN, 0}, {emfileMs < 0 ? listener : -1, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (p[1].revents != 0) {
      for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) continue;  // kept open, never read: it goes to CLOSE_WAIT
        if (errno == EMFILE) {
          emfileMs = monotonicMs();
          ::kill(child, SIGKILL);
          ::waitpid(child, nullptr, 0);
        }
        break;
      }
    }
    if (p[0].revents != 0) {
      char buf[256];
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') continue;
        const std::string emfile = emfileMs < 0 ? "null" : std::to_string(emfileMs);
        std::printf("{\"open_fds\": %d, \"now_ms\": %lld, \"emfile_ms\": %s}\n", openFds(),
                    static_cast<long long>(monotonicMs()), emfile.c_str());
        std::fflush(stdout);
      }
    }
  }
  ::kill(child, SIGKILL);
  return 0;
}
