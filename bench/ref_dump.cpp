// SPDX-License-Identifier: Apache-2.0
// The floor: one NETLINK_SOCK_DIAG dump of every TCP socket (IPv4 and IPv6), counting records
// and nothing else. Everything waitwatch does per poll is compared with this.
//
//   ref_dump [--repeat N] [--states HEXMASK] [--interval-ms MS] [--family 4|6]
// prints one JSON line: {"sockets":N,"runs_ms":[...],"median_ms":M,"cpu_ms":[...]}
// cpu_ms is the process CPU time (user + system) each dump took; with --interval-ms the dumps
// start MS apart (one long-lived socket, as a daemon polling at that rate would have). A dump is
// one pass over the hash per family (inet_diag has no dump of both at once); --family makes it
// one pass, so that the IPv6 pass over an IPv4-only population times a walk that returns nothing.
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

long dumpFamily(int fd, unsigned char family, unsigned states, std::vector<char>& buf) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = states;
  if (send(fd, &msg, sizeof msg, 0) < 0) {
    perror("send");
    std::exit(1);
  }
  long count = 0;
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      perror("recv");
      std::exit(1);
    }
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return count;
      if (h->nlmsg_type == NLMSG_ERROR) {
        std::fprintf(stderr, "netlink error\n");
        std::exit(1);
      }
      ++count;
    }
  }
}

double cpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  unsigned states = 0xFFF;
  long intervalMs = 0;
  bool ipv4 = true;
  bool ipv6 = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (a == "--states" && i + 1 < argc) {
      states = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 16));
    } else if (a == "--interval-ms" && i + 1 < argc) {
      intervalMs = std::atol(argv[++i]);
    } else if (a == "--family" && i + 1 < argc &&
               (argv[i + 1] == std::string("4") || argv[i + 1] == std::string("6"))) {
      ipv4 = argv[++i][0] == '4';
      ipv6 = !ipv4;
    } else {
      std::fprintf(stderr,
                   "usage: ref_dump [--repeat N] [--states HEXMASK] [--interval-ms MS] "
                   "[--family 4|6]\n");
      return 2;
    }
  }
  if (repeat < 1 || intervalMs < 0) {
    std::fprintf(stderr, "ref_dump: --repeat must be at least 1, --interval-ms not negative\n");
    return 2;
  }
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  std::vector<char> buf(1 << 16);
  std::vector<double> runs;
  std::vector<double> cpu;
  long sockets = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeat; ++r) {
    if (intervalMs > 0)
      std::this_thread::sleep_until(start + std::chrono::milliseconds(intervalMs * r));
    const double c0 = cpuMs();
    const auto t0 = std::chrono::steady_clock::now();
    sockets = (ipv4 ? dumpFamily(fd, AF_INET, states, buf) : 0) +
              (ipv6 ? dumpFamily(fd, AF_INET6, states, buf) : 0);
    const auto t1 = std::chrono::steady_clock::now();
    cpu.push_back(cpuMs() - c0);
    runs.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  std::printf("{\"sockets\":%ld,\"runs_ms\":[", sockets);
  for (std::size_t i = 0; i < runs.size(); ++i)
    std::printf("%s%.3f", i ? "," : "", runs[i]);
  std::printf("],\"median_ms\":%.3f,\"cpu_ms\":[", sorted[sorted.size() / 2]);
  for (std::size_t i = 0; i < cpu.size(); ++i)
    std::printf("%s%.3f", i ? "," : "", cpu[i]);
  std::printf("]}\n");
  close(fd);
  return 0;
}
