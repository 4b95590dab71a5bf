// SPDX-License-Identifier: Apache-2.0
// The cost of recording every active close (common/bpf/closes.bpf.c): connections opened and
// closed on loopback as fast as one client can, with the BPF close recorder loaded and without,
// in alternating rounds, each round in a fresh network namespace (its own TIME_WAIT buckets and
// ports). Prints one JSON object: per round, closes, wall time and the CPU the process used
// (client, server and the recorder's reader thread; the program runs in the closing thread).
//
//   close_bench [--closes N] [--rounds R]
//
// Needs root (namespaces; CAP_BPF and CAP_PERFMON for the program).
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bpf/close_recorder.hpp"

namespace {

using waitwatch::bpf::CloseBatch;
using waitwatch::bpf::CloseRecorder;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "close_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double cpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A fresh network namespace with loopback up: its own ports and TIME_WAIT buckets.
void freshNamespace() {
  if (::unshare(CLONE_NEWNET) != 0) die("unshare(CLONE_NEWNET)");
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (fd < 0 || ::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) die("SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) die("SIOCSIFFLAGS lo");
  ::close(fd);
}

struct Round {
  bool recorded = false;
  unsigned long closes = 0;
  double wallSeconds = 0;
  double cpuSeconds = 0;
  std::size_t events = 0;
  std::uint64_t lost = 0;
};

// N connections, each opened, then closed by the client first (it holds the TIME_WAIT); the
// server thread reads to the end and closes second.
Round runRound(unsigned long closes, CloseRecorder* recorder) {
  freshNamespace();
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(9000);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (ls < 0 || ::bind(ls, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0 ||
      ::listen(ls, 4096) != 0) {
    die("listen");
  }
  CloseBatch events;
  if (recorder != nullptr) recorder->take(events);  // what earlier rounds left
  std::thread server([ls, closes] {
    char buf[64];
    for (unsigned long i = 0; i < closes; ++i) {
      const int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) die("accept");
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      ::close(fd);
    }
  });
  const double cpu0 = cpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (unsigned long i = 0; i < closes; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
      die("connect");
    }
    ::close(fd);
  }
  server.join();
  Round r;
  r.recorded = recorder != nullptr;
  r.closes = closes;
  if (recorder != nullptr) {
    recorder->take(events);
    r.events = events.closes.size();
    r.lost = recorder->lost();
  }
  r.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpuSeconds = cpuSeconds() - cpu0;
  ::close(ls);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long closes = 20000;
  int rounds = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--closes") {
      closes = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (a == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: close_bench [--closes N] [--rounds R]\n");
      return 2;
    }
  }
  // The recorder lives only in the rounds that use it: destroying it detaches the program.
  std::unique_ptr<waitwatch::bpf::CloseRecorder> recorder;
  std::printf("{\"closes_per_round\": %lu, \"rounds\": [", closes);
  for (int i = 0; i < rounds * 2; ++i) {
    const bool record = i % 2 == 1;
    if (record && !recorder) {
      auto r = waitwatch::bpf::CloseRecorder::load(closes * 2);
      if (!r) {
        std::fprintf(stderr, "close_bench: %s\n", r.error().message.c_str());
        return 1;
      }
      recorder = std::make_unique<waitwatch::bpf::CloseRecorder>(std::move(*r));
    } else if (!record) {
      recorder.reset();
    }
    const Round r = runRound(closes, recorder.get());
    std::printf(
        "%s{\"recorded\": %s, \"closes\": %lu, \"wall_s\": %.4f, \"cpu_s\": %.4f, "
        "\"events\": %zu, \"lost\": %llu}",
        i == 0 ? "" : ", ", r.recorded ? "true" : "false", r.closes, r.wallSeconds, r.cpuSeconds,
        r.events, static_cast<unsigned long long>(r.lost));
    std::fflush(stdout);
  }
  std::printf("]}\n");
  return 0;
}
