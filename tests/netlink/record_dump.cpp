// SPDX-License-Identifier: Apache-2.0
// Records real NETLINK_SOCK_DIAG replies from this kernel as test fixtures.
//
// Run as root:  record_sock_diag_fixtures OUTDIR
// It enters a fresh network namespace of its own (unshare), builds sockets in known states
// (LISTEN, ESTABLISHED, CLOSE_WAIT, FIN_WAIT2, TIME_WAIT; IPv4, IPv6 and v4-mapped IPv6; one
// socket owned by uid 1234; a connection left in a listener's accept queue; enough
// ESTABLISHED pairs that one family's reply spans several recv() buffers), then writes:
//   tcp4.NN.bin, tcp6.NN.bin        every recv() buffer of a full dump, one file per buffer
//   tcp4-cw-tw.NN.bin               an IPv4 dump filtered to CLOSE_WAIT + TIME_WAIT
//   error-einval.00.bin             the kernel's NLMSG_ERROR for a request naming family 255
//   manifest.txt                    what each socket must decode to, from this program's own
//                                   knowledge (fstat inode, SO_COOKIE, bytes it sent), not from
//                                   parsing the dump
//   netstat.txt, snmp.txt           /proc/thread-self/net/{netstat,snmp} of the namespace
// It deliberately shares no code with the parser under test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::cerr << "record_sock_diag_fixtures: " << what << ": " << std::strerror(errno) << "\n";
  std::exit(1);
}

int check(int rc, const std::string& what) {
  if (rc < 0) die(what);
  return rc;
}

// Every fd stays open until the process exits: the sockets must exist while the dump runs.
struct Addr {
  int family;
  std::string ip;
  int port;
};

sockaddr_storage toSockaddr(const Addr& a, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET, a.ip.c_str(), &s->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET6, a.ip.c_str(), &s->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  return ss;
}

std::string endpoint(const Addr& a) {
  return a.family == AF_INET ? a.ip + ":" + std::to_string(a.port)
                             : "[" + a.ip + "]:" + std::to_string(a.port);
}

unsigned long inodeOf(int fd) {
  struct stat st {};
  check(fstat(fd, &st), "fstat");
  return st.st_ino;
}

unsigned long long cookieOf(int fd) {
  unsigned long long c = 0;
  socklen_t len = sizeof c;
  check(getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len), "SO_COOKIE");
  return c;
}

int listenOn(const Addr& a, int backlog, bool v6only = true) {
  int fd = check(socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.family == AF_INET6) {
    int v = v6only ? 1 : 0;
    check(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v), "IPV6_V6ONLY");
  }
  socklen_t len;
  auto ss = toSockaddr(a, len);
  check(bind(fd, reinterpret_cast<sockaddr*>(&ss), len), "bind " + endpoint(a));
  check(listen(fd, backlog), "listen");
  return fd;
}

int connectFrom(const Addr& from, const Addr& to) {
  int fd = check(socket(from.family, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len;
  auto ss = toSockaddr(from, len);
  check(bind(fd, reinterpret_cast<sockaddr*>(&ss), len), "bind " + endpoint(from));
  auto dst = toSockaddr(to, len);
  check(connect(fd, reinterpret_cast<sockaddr*>(&dst), len), "connect " + endpoint(to));
  return fd;
}

int acceptOne(int listener) {
  return check(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC), "accept");
}

void settle() {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

void bringUpLoopback() {
  int fd = check(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket");
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "lo");
  check(ioctl(fd, SIOCGIFFLAGS, &ifr), "SIOCGIFFLAGS lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  check(ioctl(fd, SIOCSIFFLAGS, &ifr), "SIOCSIFFLAGS lo");
  close(fd);
}

// The cgroup v2 id of this process: the kernel tags full sockets with it (INET_DIAG_CGROUP_ID).
// Found independently of the dump, through the file handle of the cgroup directory.
std::string ownCgroupId() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  std::ifstream mi("/proc/self/mountinfo");
  std::string mount;
  while (std::getline(mi, line)) {
    std::istringstream in(line);
    std::vector<std::string> f;
    for (std::string w; in >> w;)
      f.push_back(w);
    for (size_t i = 0; i + 1 < f.size(); ++i) {
      if (f[i] == "-" && f[i + 1] == "cgroup2") mount = f[4];
    }
  }
  if (path.empty() || mount.empty()) return "-";
  alignas(file_handle) unsigned char space[sizeof(file_handle) + 64] = {};
  auto* fh = reinterpret_cast<file_handle*>(space);
  fh->handle_bytes = 64;
  int mountId = 0;
  if (name_to_handle_at(AT_FDCWD, (mount + path).c_str(), fh, &mountId, 0) != 0) return "-";
  unsigned long long id = 0;
  std::memcpy(&id, space + sizeof(file_handle), sizeof id);
  return std::to_string(id);
}

struct Expect {
  std::string family, state, local, remote, uid, inode, cookie, recvq, sendq, timer, cgroup;
};
std::vector<Expect> manifest;
std::string cgroupId;

void expect(int family, const char* state, const Addr& local, const Addr& remote,
            const std::string& uid, const std::string& inode, const std::string& cookie,
            const std::string& recvq, const std::string& sendq, const std::string& timer,
            bool full = true) {
  manifest.push_back({family == AF_INET ? "4" : "6", state, endpoint(local), endpoint(remote), uid,
                      inode, cookie, recvq, sendq, timer, full ? cgroupId : "none"});
}

void expectFd(int fd, int family, const char* state, const Addr& local, const Addr& remote,
              const std::string& uid, const std::string& recvq, const std::string& sendq) {
  expect(family, state, local, remote, uid, std::to_string(inodeOf(fd)),
         std::to_string(cookieOf(fd)), recvq, sendq, "0");
}

// One dump, every recv() buffer written to DIR/NAME.NN.bin.
void record(const std::string& dir, const std::string& name, uint8_t family, uint32_t states) {
  int fd = check(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), "netlink");
  struct {
    nlmsghdr h;
    inet_diag_req_v2 r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 7;
  req.r.sdiag_family = family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = states;
  sockaddr_nl k{};
  k.nl_family = AF_NETLINK;
  check(
      static_cast<int>(sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&k), sizeof k)),
      "sendto");
  std::vector<char> buf(64 * 1024);
  for (int part = 0;; ++part) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) die("recv");
    char file[512];
    std::snprintf(file, sizeof file, "%s/%s.%02d.bin", dir.c_str(), name.c_str(), part);
    std::ofstream(file, std::ios::binary).write(buf.data(), n);
    // Done when the buffer holds NLMSG_DONE or NLMSG_ERROR.
    bool done = false;
    for (size_t off = 0; off + sizeof(nlmsghdr) <= static_cast<size_t>(n);) {
      nlmsghdr h;
      std::memcpy(&h, buf.data() + off, sizeof h);
      if (h.nlmsg_len < sizeof h) break;
      if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) done = true;
      off += (h.nlmsg_len + 3u) & ~size_t{3};
    }
    if (done) break;
  }
  close(fd);
}

void recordError(const std::string& dir) {
  int fd = check(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), "netlink");
  struct {
    nlmsghdr h;
    uint8_t family;  // a struct sock_diag_req with an impossible family: EINVAL
    uint8_t protocol;
    uint16_t pad;
  } req{};
  req.family = 255;
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 9;
  sockaddr_nl k{};
  k.nl_family = AF_NETLINK;
  check(
      static_cast<int>(sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&k), sizeof k)),
      "sendto");
  std::vector<char> buf(8192);
  ssize_t n = recv(fd, buf.data(), buf.size(), 0);
  if (n < 0) die("recv");
  std::ofstream(dir + "/error-einval.00.bin", std::ios::binary).write(buf.data(), n);
  close(fd);
}

void copyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from);
  std::ofstream out(to);
  out << in.rdbuf();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr
        << "usage: record_sock_diag_fixtures OUTDIR   (root: enters a new network namespace)\n";
    return 2;
  }
  const std::string dir = argv[1];
  check(unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)");
  bringUpLoopback();
  settle();  // ::1 appears on lo once it is up
  cgroupId = ownCgroupId();

  const int v4 = AF_INET, v6 = AF_INET6;
  const Addr any4{v4, "0.0.0.0", 0}, any6{v6, "::", 0};

  // IPv4 LISTEN 127.0.0.1:8080, backlog 16, with two accepted ESTABLISHED pairs and one
  // connection left in the accept queue (listener Recv-Q 1, the child has no inode yet).
  const Addr l4{v4, "127.0.0.1", 8080};
  int lis4 = listenOn(l4, 16);
  for (int p : {40001, 40002}) {
    Addr c{v4, "127.0.0.1", p};
    int cfd = connectFrom(c, l4);
    int sfd = acceptOne(lis4);
    expectFd(cfd, v4, "ESTABLISHED", c, l4, "0", "0", "0");
    expectFd(sfd, v4, "ESTABLISHED", l4, c, "0", "0", "0");
  }
  const Addr queued{v4, "127.0.0.1", 40003};
  int qfd = connectFrom(queued, l4);
  expectFd(qfd, v4, "ESTABLISHED", queued, l4, "0", "0", "0");
  expect(v4, "ESTABLISHED", l4, queued, "0", "0", "-", "0", "0", "0");
  expectFd(lis4, v4, "LISTEN", l4, any4, "0", "1", "16");

  // IPv4 CLOSE_WAIT with 100 unread bytes (Recv-Q 101: the FIN counts as one) and its
  // FIN_WAIT2 peer; then a TIME_WAIT on the client side.
  const Addr l4b{v4, "127.0.0.1", 8081};
  int lis4b = listenOn(l4b, 8);
  expectFd(lis4b, v4, "LISTEN", l4b, any4, "0", "0", "8");
  {
    Addr c{v4, "127.0.0.1", 40010};
    int cfd = connectFrom(c, l4b);
    int sfd = acceptOne(lis4b);
    char data[100] = {};
    check(static_cast<int>(send(cfd, data, sizeof data, 0)), "send");
    check(shutdown(cfd, SHUT_WR), "shutdown");
    settle();
    expectFd(cfd, v4, "FIN_WAIT2", c, l4b, "0", "0", "0");
    expectFd(sfd, v4, "CLOSE_WAIT", l4b, c, "0", "101", "0");
  }
  {
    Addr c{v4, "127.0.0.1", 40020};
    int cfd = connectFrom(c, l4b);
    int sfd = acceptOne(lis4b);
    const std::string cookie = std::to_string(cookieOf(cfd));
    close(cfd);
    settle();
    close(sfd);
    settle();
    expect(v4, "TIME_WAIT", c, l4b, "0", "0", cookie, "0", "0", "3", false);
  }

  // IPv6 LISTEN [::1]:8443; an ESTABLISHED pair whose client socket belongs to uid 1234.
  const Addr l6{v6, "::1", 8443};
  int lis6 = listenOn(l6, 32);
  expectFd(lis6, v6, "LISTEN", l6, any6, "0", "0", "32");
  {
    Addr c{v6, "::1", 40100};
    setfsuid(1234);  // a socket's owner is the creator's fsuid
    int cfd = connectFrom(c, l6);
    setfsuid(0);
    int sfd = acceptOne(lis6);
    expectFd(cfd, v6, "ESTABLISHED", c, l6, "1234", "0", "0");
    expectFd(sfd, v6, "ESTABLISHED", l6, c, "0", "0", "0");
  }
  {  // CLOSE_WAIT with 7 unread bytes
    Addr c{v6, "::1", 40110};
    int cfd = connectFrom(c, l6);
    int sfd = acceptOne(lis6);
    check(static_cast<int>(send(cfd, "abcdefg", 7, 0)), "send");
    check(shutdown(cfd, SHUT_WR), "shutdown");
    settle();
    expectFd(cfd, v6, "FIN_WAIT2", c, l6, "0", "0", "0");
    expectFd(sfd, v6, "CLOSE_WAIT", l6, c, "0", "8", "0");
  }
  {  // TIME_WAIT
    Addr c{v6, "::1", 40120};
    int cfd = connectFrom(c, l6);
    int sfd = acceptOne(lis6);
    const std::string cookie = std::to_string(cookieOf(cfd));
    close(cfd);
    settle();
    close(sfd);
    settle();
    expect(v6, "TIME_WAIT", c, l6, "0", "0", cookie, "0", "0", "3", false);
  }

  // A dual-stack listener [::]:9000 and an IPv4 client: the accepted socket is AF_INET6 with
  // v4-mapped addresses.
  const Addr l6any{v6, "::", 9000};
  int lisDual = listenOn(l6any, 4, /*v6only=*/false);
  expectFd(lisDual, v6, "LISTEN", l6any, any6, "0", "0", "4");
  {
    Addr c{v4, "127.0.0.1", 40200};
    int cfd = connectFrom(c, Addr{v4, "127.0.0.1", 9000});
    int sfd = acceptOne(lisDual);
    expectFd(cfd, v4, "ESTABLISHED", c, Addr{v4, "127.0.0.1", 9000}, "0", "0", "0");
    expectFd(sfd, v6, "ESTABLISHED", Addr{v6, "::ffff:127.0.0.1", 9000},
             Addr{v6, "::ffff:127.0.0.1", 40200}, "0", "0", "0");
  }

  // Bulk: enough IPv4 ESTABLISHED pairs that the IPv4 reply spans several recv() buffers.
  const Addr l4bulk{v4, "127.0.0.2", 8090};
  int lisBulk = listenOn(l4bulk, 512);
  expectFd(lisBulk, v4, "LISTEN", l4bulk, any4, "0", "0", "512");
  for (int i = 0; i < 200; ++i) {
    Addr c{v4, "127.0.0.3", 41000 + i};
    int cfd = connectFrom(c, l4bulk);
    int sfd = acceptOne(lisBulk);
    expectFd(cfd, v4, "ESTABLISHED", c, l4bulk, "0", "0", "0");
    expectFd(sfd, v4, "ESTABLISHED", l4bulk, c, "0", "0", "0");
  }
  settle();

  record(dir, "tcp4", AF_INET, 0xFFE);
  record(dir, "tcp6", AF_INET6, 0xFFE);
  record(dir, "tcp4-cw-tw", AF_INET, (1u << 8) | (1u << 6));
  recordError(dir);
  copyFile("/proc/thread-self/net/netstat", dir + "/netstat.txt");
  copyFile("/proc/thread-self/net/snmp", dir + "/snmp.txt");

  std::ofstream m(dir + "/manifest.txt");
  m << "# Written by record_sock_diag_fixtures alongside the tcp4/tcp6 dumps, from what it knows\n"
       "# of each socket it made ('-' = not known to it, cgroup 'none' = attribute absent).\n"
       "# family state local remote uid inode cookie recvq sendq timer cgroup\n";
  for (const auto& e : manifest) {
    m << e.family << ' ' << e.state << ' ' << e.local << ' ' << e.remote << ' ' << e.uid << ' '
      << e.inode << ' ' << e.cookie << ' ' << e.recvq << ' ' << e.sendq << ' ' << e.timer << ' '
      << e.cgroup << '\n';
  }
  std::cout << "recorded " << manifest.size() << " sockets into " << dir << "\n";
  return 0;
}
