// SPDX-License-Identifier: Apache-2.0
// churn: short-lived TCP connections on loopback, to see who a TIME_WAIT socket is charged to.
// The side that closes a connection first ends in TIME_WAIT.
//
//   churn --serve PORT [--close-first] [--name COMM]
//       A server. Without --close-first it reads each connection until the client closes it and
//       then closes its side (the client holds the TIME_WAIT); with it, it closes each
//       connection as soon as it accepts it (the server holds the TIME_WAIT).
//   churn --connect PORT [--wait-eof] [--name COMM]
//       A client. Each stdin line "open N" opens N connections and keeps them; "close" closes
//       every open one; "churn N" opens and closes N connections one after another, each closed
//       before the next opens (well under a millisecond each). The client closes first, or with
//       --wait-eof (against a --close-first server) only after it read the server's FIN.
//
// Both set their comm to COMM (prctl), print {"pid": PID, "port": PORT} and READY, then answer
// each stdin line with one JSON line ({"done": N} for a client). They exit when stdin closes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "churn: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

unsigned long number(const std::string& flag, std::string_view text) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0 || v > 65535) {
    std::fprintf(stderr, "churn: %s: \"%.*s\" is not a number from 1 to 65535\n", flag.c_str(),
                 static_cast<int>(text.size()), text.data());
    std::exit(2);
  }
  return v;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Reads until the peer's FIN (or an error).
void drain(int fd) {
  char buf[512];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

[[noreturn]] void serve(std::uint16_t port, bool closeFirst) {
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  const int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in at = loopback(port);
  if (::bind(ls, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) die("bind");
  if (::listen(ls, 4096) != 0) die("listen");
  std::printf("{\"pid\": %d, \"port\": %u}\nREADY\n", ::getpid(), port);
  std::fflush(stdout);
  // Connections are served on a thread; the main thread ends the process when stdin closes.
  std::thread([ls, closeFirst] {
    for (;;) {
      const int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        die("accept");
      }
      if (!closeFirst) drain(fd);
      ::close(fd);
    }
  }).detach();
  for (std::string line; std::getline(std::cin, line);) {
    std::printf("{}\n");
    std::fflush(stdout);
  }
  std::exit(0);
}

int connectTo(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const sockaddr_in to = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) die("connect");
  return fd;
}

// Closes `fd`, after the server's FIN when `waitEof`: closing with it unread would not be a
// second close but a reset.
void closeConnection(int fd, bool waitEof) {
  if (waitEof) drain(fd);
  ::close(fd);
}

[[noreturn]] void client(std::uint16_t port, bool waitEof) {
  std::printf("{\"pid\": %d, \"port\": %u}\nREADY\n", ::getpid(), port);
  std::fflush(stdout);
  std::vector<int> open;
  for (std::string line; std::getline(std::cin, line);) {
    unsigned long done = 0;
    if (line.rfind("open ", 0) == 0) {
      for (unsigned long n = number("open", line.substr(5)); done < n; ++done)
        open.push_back(connectTo(port));
    } else if (line == "close") {
      for (int fd : open)
        closeConnection(fd, waitEof);
      done = open.size();
      open.clear();
    } else if (line.rfind("churn ", 0) == 0) {
      for (unsigned long n = number("churn", line.substr(6)); done < n; ++done) {
        closeConnection(connectTo(port), waitEof);
      }
    } else {
      std::fprintf(stderr, "churn: unknown command \"%s\"\n", line.c_str());
      std::exit(2);
    }
    std::printf("{\"done\": %lu}\n", done);
    std::fflush(stdout);
  }
  std::exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  bool server = false;
  bool closeFirst = false;
  bool waitEof = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--serve" || a == "--connect") && i + 1 < argc) {
      server = a == "--serve";
      port = static_cast<std::uint16_t>(number(a, argv[++i]));
    } else if (a == "--close-first") {
      closeFirst = true;
    } else if (a == "--wait-eof") {
      waitEof = true;
    } else if (a == "--name" && i + 1 < argc) {
      // The thread group leader's comm is the process's (/proc/<pid>/comm).
      if (::prctl(PR_SET_NAME, argv[++i], 0, 0, 0) != 0) die("prctl");
    } else {
      std::fprintf(stderr,
                   "usage: churn --serve PORT [--close-first] [--name COMM]\n"
                   "       churn --connect PORT [--wait-eof] [--name COMM]\n");
      return 2;
    }
  }
  if (port == 0) {
    std::fprintf(stderr, "churn: --serve PORT or --connect PORT is needed\n");
    return 2;
  }
  if (server) serve(port, closeFirst);
  client(port, waitEof);
}
