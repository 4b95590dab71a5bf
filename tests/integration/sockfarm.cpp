// SPDX-License-Identifier: Apache-2.0
// sockfarm: builds TCP sockets in exact states inside the current network namespace, holds them
// in forked holder processes, prints what it built as one JSON line then "READY", and keeps
// everything until stdin closes or SIGTERM. Used by the integration tests and the benchmarks.
// tests/integration/README.md describes the states that exist afterwards; --help the flags.
//
// How each state is made (see /work/shared/FIELD-NOTES.md for why):
//  - every client socket binds an explicit (address, port) that is never used twice, so no
//    4-tuple repeats, no connect() scans for a free port, and tcp_tw_reuse never recycles a
//    TIME_WAIT socket of ours;
//  - CLOSE_WAIT / FIN_WAIT2: the client shuts down its write side, we wait until it reaches
//    FIN_WAIT2 (the server's ACK of the FIN is delayed, ~5-40 ms), then the side we do not keep
//    is removed with TCP_REPAIR + close(), which sends nothing: the kept side stays in its state
//    forever (FIN_WAIT2 with an open fd has no timeout) and no peer socket is left behind;
//  - TIME_WAIT: one connection at a time, each step confirmed, so exactly N exist.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/address.hpp"
#include "core/tcp_state.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::sockfarm {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kUsageError = 2;
constexpr int kTcpRepair = 19;                    // TCP_REPAIR (linux/tcp.h)
constexpr std::size_t kFdsPerMessage = 250;       // below SCM_MAX_FD (253)
constexpr std::uint32_t kMaxUnreadBytes = 65536;  // fits the default loopback receive window

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what);
}
[[noreturn]] void failErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Options

enum class Family : std::uint8_t { V4, V6 };
constexpr std::array<Family, 2> kFamilies = {Family::V4, Family::V6};
std::string_view familyName(Family f) {
  return f == Family::V4 ? "ipv4" : "ipv6";
}

struct Options {
  bool v4 = true;
  bool v6 = false;
  std::uint16_t listenPort = 8080;
  std::uint32_t extraListeners = 0;
  std::uint64_t established = 0;  // sockets, built as connected pairs
  std::uint64_t closeWait = 0;
  std::uint64_t closeWaitUnread = 0;
  std::uint64_t closeWaitEof = 0;
  std::uint32_t unreadBytes = 0;
  std::uint64_t finWait2 = 0;
  std::uint64_t timeWait = 0;        // client side, toward twDest
  std::uint64_t serverTimeWait = 0;  // server side, local port = listenPort
  std::optional<Endpoint> twDest;
  std::optional<IpAddress> twSource;
  std::uint32_t holders = 1;
  std::uint32_t shared = 0;
  bool exitOne = false;
  std::optional<std::uint32_t> uid;
  std::optional<std::pair<std::uint16_t, std::uint16_t>> sourcePorts;
  std::uint32_t batch = 1024;
  bool details = false;
  bool allowHostNetns = false;
  std::uint32_t timeoutMs = 20000;
};

constexpr const char* kUsage = R"(usage: sockfarm [options]
Builds TCP sockets in exact states in the current network namespace (run it with
`ip netns exec NAME` or `unshare -n`), prints one JSON line describing them and a line "READY",
and holds them until stdin reaches EOF or SIGTERM/SIGINT. Counts are sockets in that state.

  --family 4|6|46            address families (default 4); with 46 every count is built in each
  --listen-port PORT         the listener every connection goes to (default 8080)
  --listen N                 N more idle listeners on PORT+1..PORT+N
  --established N            N ESTABLISHED sockets (connected pairs held by one holder; an odd
                             last one has no peer)
  --close-wait N             N CLOSE_WAIT sockets (server side, Recv-Q 1: the unread FIN)
  --close-wait-unread N:B    N more CLOSE_WAIT sockets with B unread bytes (Recv-Q B+1), B<=65536
  --close-wait-eof N         N more CLOSE_WAIT sockets read to end-of-stream (Recv-Q 0)
  --fin-wait2 N              N FIN_WAIT2 sockets (client side)
  --time-wait N              N client-side TIME_WAIT sockets toward --tw-dest
  --tw-dest ADDR:PORT        TIME_WAIT destination (default the main listener; another address
                             or port gets a listener of its own)
  --tw-source ADDR           first TIME_WAIT source address (default 127.0.0.1 / ::1); further
                             sources follow (127.0.0.2...) when the source port range runs out
  --server-time-wait N       N server-side TIME_WAIT sockets (local port = --listen-port)
  --holders N                spread the sockets over N holder processes (default 1)
  --shared N                 N more CLOSE_WAIT sockets held by holder 0 and by a child it forks
  --exit-one                 the last holder exits (its sockets aborted) before READY
  --uid UID                  create every socket as UID, and run the holders as UID
  --source-ports LO-HI       client source ports (default net.ipv4.ip_local_port_range)
  --batch N                  connections in flight per batch (default 1024, max 4096)
  --details                  list every socket (inode, cookie, endpoints) in the JSON
  --timeout-ms MS            give up when one step takes longer (default 20000)
  --allow-host-netns         run even where interfaces other than lo exist (normally refused:
                             that is the host's or a container's namespace)
  --help

stdin commands after READY, one per line: "exit I" (holder or sharer I aborts its sockets and
exits; answered by {"event":"exited",...}), "stop".
)";

template <typename T>
std::optional<T> parseNumber(std::string_view text) {
  T value{};
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::optional<Endpoint> parseEndpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto address = IpAddress::parse(host);
  auto port = parseNumber<std::uint16_t>(text.substr(colon + 1));
  if (!address || !port || *port == 0) return std::nullopt;
  return Endpoint{*address, *port};
}

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw UsageError(std::string(flag) + " needs a value");
      return argv[++i];
    };
    auto count = [&]() -> std::uint64_t {
      const auto text = value();
      auto n = parseNumber<std::uint64_t>(text);
      if (!n || *n > 10'000'000) {
        throw UsageError(std::string(flag) + ": \"" + std::string(text) +
                         "\" is not a count (0..10000000)");
      }
      return *n;
    };
    auto count32 = [&](std::uint64_t max) -> std::uint32_t {
      const auto text = value();
      auto n = parseNumber<std::uint32_t>(text);
      if (!n || *n > max) {
        throw UsageError(std::string(flag) + ": \"" + std::string(text) +
                         "\" is not a number in 0.." + std::to_string(max));
      }
      return *n;
    };
    if (flag == "--family") {
      const auto v = value();
      if (v == "4") {
        o.v4 = true, o.v6 = false;
      } else if (v == "6") {
        o.v4 = false, o.v6 = true;
      } else if (v == "46" || v == "64") {
        o.v4 = o.v6 = true;
      } else {
        throw UsageError("--family: \"" + std::string(v) + "\" is not 4, 6 or 46");
      }
    } else if (flag == "--listen-port") {
      const auto text = value();
      auto p = parseNumber<std::uint16_t>(text);
      if (!p || *p == 0)
        throw UsageError("--listen-port: \"" + std::string(text) + "\" is not a port");
      o.listenPort = *p;
    } else if (flag == "--listen") {
      o.extraListeners = count32(1000);
    } else if (flag == "--established") {
      o.established = count();
    } else if (flag == "--close-wait") {
      o.closeWait = count();
    } else if (flag == "--close-wait-eof") {
      o.closeWaitEof = count();
    } else if (flag == "--close-wait-unread") {
      const auto text = value();
      const auto colon = text.find(':');
      auto n = parseNumber<std::uint64_t>(text.substr(0, colon));
      auto b = colon == std::string_view::npos ? std::nullopt
                                               : parseNumber<std::uint32_t>(text.substr(colon + 1));
      if (!n || !b || *b == 0 || *b > kMaxUnreadBytes || *n > 10'000'000) {
        throw UsageError("--close-wait-unread: \"" + std::string(text) +
                         "\" is not COUNT:BYTES with BYTES in 1..65536");
      }
      o.closeWaitUnread = *n;
      o.unreadBytes = *b;
    } else if (flag == "--fin-wait2") {
      o.finWait2 = count();
    } else if (flag == "--time-wait") {
      o.timeWait = count();
    } else if (flag == "--server-time-wait") {
      o.serverTimeWait = count();
    } else if (flag == "--tw-dest") {
      const auto text = value();
      o.twDest = parseEndpoint(text);
      if (!o.twDest) throw UsageError("--tw-dest: \"" + std::string(text) + "\" is not ADDR:PORT");
    } else if (flag == "--tw-source") {
      const auto text = value();
      o.twSource = IpAddress::parse(text);
      if (!o.twSource)
        throw UsageError("--tw-source: \"" + std::string(text) + "\" is not an address");
    } else if (flag == "--holders") {
      o.holders = count32(1000);
      if (o.holders == 0) throw UsageError("--holders: must be at least 1");
    } else if (flag == "--shared") {
      o.shared = count32(100000);
    } else if (flag == "--exit-one") {
      o.exitOne = true;
    } else if (flag == "--uid") {
      o.uid = count32(0xfffffffe);
    } else if (flag == "--source-ports") {
      const auto text = value();
      const auto dash = text.find('-');
      auto lo = parseNumber<std::uint16_t>(text.substr(0, dash));
      auto hi = dash == std::string_view::npos ? std::nullopt
                                               : parseNumber<std::uint16_t>(text.substr(dash + 1));
      if (!lo || !hi || *lo == 0 || *lo > *hi) {
        throw UsageError("--source-ports: \"" + std::string(text) + "\" is not LO-HI");
      }
      o.sourcePorts = std::make_pair(*lo, *hi);
    } else if (flag == "--batch") {
      o.batch = count32(4096);
      if (o.batch == 0) throw UsageError("--batch: must be at least 1");
    } else if (flag == "--details") {
      o.details = true;
    } else if (flag == "--timeout-ms") {
      o.timeoutMs = count32(3'600'000);
    } else if (flag == "--allow-host-netns") {
      o.allowHostNetns = true;
    } else {
      throw UsageError("unknown option \"" + std::string(flag) + "\" (see --help)");
    }
  }
  if (o.twDest) {
    const bool v6 = o.twDest->address.family == AddressFamily::V6;
    if ((v6 && !o.v6) || (!v6 && !o.v4) || (o.v4 && o.v6)) {
      throw UsageError("--tw-dest: its family must be the only one built (use --family 4 or 6)");
    }
  }
  if (o.twSource && ((o.twSource->family == AddressFamily::V6) != o.v6 || (o.v4 && o.v6))) {
    throw UsageError("--tw-source: its family must be the only one built (use --family 4 or 6)");
  }
  if (static_cast<std::uint32_t>(o.listenPort) + o.extraListeners > 65535) {
    throw UsageError("--listen: ports past 65535");
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Small socket helpers

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

SockAddr toSockAddr(const Endpoint& e) {
  SockAddr s;
  if (e.address.family == AddressFamily::V4) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(e.port);
    std::memcpy(&in.sin_addr, e.address.bytes.data(), 4);
    std::memcpy(&s.storage, &in, sizeof in);
    s.length = sizeof in;
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(e.port);
    std::memcpy(&in6.sin6_addr, e.address.bytes.data(), 16);
    std::memcpy(&s.storage, &in6, sizeof in6);
    s.length = sizeof in6;
  }
  return s;
}

Endpoint fromSockAddr(const sockaddr_storage& s) {
  Endpoint e;
  if (s.ss_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, &s, sizeof in);
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &in.sin_addr, 4);
    e.address = IpAddress::v4(b);
    e.port = ntohs(in.sin_port);
  } else if (s.ss_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &s, sizeof in6);
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &in6.sin6_addr, 16);
    e.address = IpAddress::v6(b);
    e.port = ntohs(in6.sin6_port);
  }
  return e;
}

Endpoint localEndpoint(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len) != 0) failErrno("getsockname");
  return fromSockAddr(s);
}

Endpoint remoteEndpoint(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&s), &len) != 0) failErrno("getpeername");
  return fromSockAddr(s);
}

int tcpState(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) failErrno("TCP_INFO");
  return info.tcpi_state;
}

std::uint64_t socketCookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) failErrno("SO_COOKIE");
  return cookie;
}

std::uint64_t socketInode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) failErrno("fstat");
  return st.st_ino;
}

void setIntOption(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) failErrno(what);
}

// Closes a socket without sending anything: in repair mode tcp_close() skips FIN and RST.
void closeSilently(UniqueFd fd) {
  setIntOption(fd.get(), IPPROTO_TCP, kTcpRepair, 1, "TCP_REPAIR");
  fd.reset();
}

// Closes with RST (SO_LINGER 0): the socket is gone at once, no FIN_WAIT/TIME_WAIT left behind.
void abortSocket(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

UniqueFd newTcpSocket(Family f) {
  const int fd =
      ::socket(f == Family::V4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) failErrno("socket");
  return UniqueFd(fd);
}

class Deadline {
 public:
  explicit Deadline(std::uint32_t ms) : end_(Clock::now() + std::chrono::milliseconds(ms)) {}
  [[nodiscard]] bool expired() const { return Clock::now() >= end_; }
  [[nodiscard]] int remainingMs() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1000));
  }

 private:
  Clock::time_point end_;
};

bool waitReadable(int fd, const Deadline& deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, deadline.remainingMs());
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) failErrno("poll");
    if (deadline.expired()) return false;
  }
}

UniqueFd acceptOne(int listener, const Deadline& deadline) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) failErrno("accept");
    if (!waitReadable(listener, deadline)) fail("timed out waiting for a connection to accept");
  }
}

// Polls until every fd in `fds` is in `want` (checked with TCP_INFO).
void waitForState(const std::vector<int>& fds, int want, const Deadline& deadline,
                  const char* what) {
  std::size_t done = 0;  // fds[0, done) are known to be in `want`
  while (done < fds.size()) {
    const int s = tcpState(fds[done]);
    if (s == want) {
      ++done;
      continue;
    }
    if (s == TCP_CLOSE) fail(std::string("a socket was reset while waiting for ") + what);
    if (deadline.expired()) {
      fail(std::string("timed out waiting for ") + what + " (state " + std::to_string(s) + ")");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// ---------------------------------------------------------------------------------------------
// Namespace set-up: lo up, sysctls, the host-namespace guard

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeSmallFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) fail("cannot write " + path);
}

// A private namespace made for the farm has only lo. Anything else (eth0, a bridge, a veth) means
// a namespace that real traffic uses: the host's, or a container's. /proc/1/ns/net is no guide
// (it may be unreadable, or pid 1 may itself be in a private namespace).
std::vector<std::string> otherInterfaces() {
  std::vector<std::string> names;
  struct if_nameindex* list = ::if_nameindex();
  if (list == nullptr) failErrno("if_nameindex");
  for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
    if (std::string_view(i->if_name) != "lo") names.emplace_back(i->if_name);
  }
  ::if_freenameindex(list);
  return names;
}

std::uint64_t netnsInode() {
  struct stat self {};
  if (::stat("/proc/self/ns/net", &self) != 0) failErrno("stat /proc/self/ns/net");
  return self.st_ino;
}

// Returns true when it had to bring lo up.
bool bringLoopbackUp() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) failErrno("socket for ioctl");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &req) != 0) failErrno("SIOCGIFFLAGS lo");
  if (req.ifr_flags & IFF_UP) return false;
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &req) != 0) failErrno("bringing lo up");
  return true;
}

std::uint64_t timeWaitOverflowCounter() {
  // /proc/net/netstat: "TcpExt: name name ...\nTcpExt: value value ...".
  std::istringstream in(readSmallFile("/proc/net/netstat"));
  std::string header, values;
  while (std::getline(in, header) && std::getline(in, values)) {
    if (header.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream h(header), v(values);
    std::string name, value;
    while (h >> name && v >> value) {
      if (name == "TCPTimeWaitOverflow") return parseNumber<std::uint64_t>(value).value_or(0);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Source endpoints: every client socket binds one that was never used before.

IpAddress nextAddress(IpAddress a) {
  const std::size_t last = a.family == AddressFamily::V4 ? 3 : 15;
  for (std::size_t i = last + 1; i-- > 0;) {
    if (++a.bytes[i] != 0) break;
  }
  return a;
}

class SourceAllocator {
 public:
  SourceAllocator(IpAddress first, std::uint16_t lo, std::uint16_t hi, bool rollOver,
                  std::vector<std::uint16_t> avoidPorts, std::string name)
      : address_(first),
        first_(first),
        lo_(lo),
        hi_(hi),
        port_(lo),
        rollOver_(rollOver),
        avoid_(std::move(avoidPorts)),
        name_(std::move(name)) {
    skipAvoided();
  }

  Endpoint next() {
    if (exhausted_) fail(exhaustedMessage());
    Endpoint e{address_, port_};
    if (port_ == hi_) {
      if (!rollOver_) {
        exhausted_ = true;
      } else {
        address_ = nextAddress(address_);
        // Stay inside 127.0.0.0/8 and away from x.x.x.0 / x.x.x.255.
        while (address_.bytes[3] == 0 || address_.bytes[3] == 255)
          address_ = nextAddress(address_);
        if (address_.bytes[0] != 127 || address_.bytes[1] != first_.bytes[1]) exhausted_ = true;
        usedAddresses_++;
        port_ = lo_;
      }
    } else {
      ++port_;
    }
    skipAvoided();
    return e;
  }
  [[nodiscard]] std::uint32_t addressesUsed() const { return usedAddresses_; }
  [[nodiscard]] IpAddress first() const { return first_; }

 private:
  void skipAvoided() {
    while (std::find(avoid_.begin(), avoid_.end(), port_) != avoid_.end() && port_ < hi_)
      ++port_;
  }
  [[nodiscard]] std::string exhaustedMessage() const {
    return "out of " + name_ + " source endpoints (" + first_.toString() + " ports " +
           std::to_string(lo_) + "-" + std::to_string(hi_) +
           (rollOver_ ? ", and the following addresses" : "") +
           "): ask for fewer sockets or "
           "widen --source-ports";
  }

  IpAddress address_;
  IpAddress first_;
  std::uint16_t lo_, hi_, port_;
  bool rollOver_;
  bool exhausted_ = false;
  std::uint32_t usedAddresses_ = 1;
  std::vector<std::uint16_t> avoid_;
  std::string name_;
};

// Binds `fd` to the next free source endpoint (skipping ones something else holds).
Endpoint bindNextSource(int fd, SourceAllocator& sources) {
  for (int attempt = 0; attempt < 65536; ++attempt) {
    const Endpoint e = sources.next();
    const SockAddr a = toSockAddr(e);
    if (::bind(fd, a.get(), a.length) == 0) return e;
    if (errno != EADDRINUSE) failErrno("bind " + e.toString());
  }
  fail("every source endpoint tried was in use");
}

void startConnect(int fd, const SockAddr& dest) {
  if (::connect(fd, dest.get(), dest.length) == 0) return;
  if (errno != EINPROGRESS) failErrno("connect");
}

// ---------------------------------------------------------------------------------------------
// Holders: forked processes that keep sockets open. They receive fds over a SEQPACKET channel.

enum class Kind : std::uint32_t {
  Listen = 0,
  Established,
  CloseWait,
  CloseWaitUnread,
  CloseWaitEof,  // end-of-stream read before it was handed over
  FinWait2,
  Shared,  // CLOSE_WAIT, also held by the holder's forked sharer
  Count
};
constexpr std::size_t kKinds = static_cast<std::size_t>(Kind::Count);

enum class MsgType : std::uint32_t { Fds = 1, Sync, ForkSharer, Reply };
struct Msg {
  MsgType type{};
  Kind kind{};
  std::uint32_t count = 0;
  std::int32_t pid = 0;                      // Reply: the holder's (or sharer's) pid
  std::array<std::uint64_t, kKinds> held{};  // Reply: fds held per kind
};

int signalFdFor(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals)
    sigaddset(&set, s);
  const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) failErrno("signalfd");
  return fd;
}

// The holder's and the sharer's loop: wait for a signal or for the coordinator to vanish, then
// abort every socket (so nothing lingers in FIN_WAIT or TIME_WAIT) and exit.
[[noreturn]] void holdUntilTold(std::array<std::vector<int>, kKinds>& fds, int channel,
                                int lifeline) {
  const int sig = signalFdFor({SIGTERM, SIGINT});
  std::array<std::vector<int>, kKinds>* held = &fds;
  for (;;) {
    std::array<pollfd, 3> p{{{sig, POLLIN, 0}, {lifeline, POLLIN, 0}, {channel, POLLIN, 0}}};
    const nfds_t n = channel >= 0 ? 3 : 2;
    if (::poll(p.data(), n, -1) < 0 && errno != EINTR) break;
    if (p[0].revents || p[1].revents) break;
    if (n == 3 && p[2].revents) {
      // Messages after the sync are only ForkSharer; anything else (EOF) ends the holder.
      Msg m{};
      const ssize_t r = ::recv(channel, &m, sizeof m, 0);
      if (r != static_cast<ssize_t>(sizeof m) || m.type != MsgType::ForkSharer) break;
      const pid_t child = ::fork();
      if (child < 0) break;
      if (child == 0) {
        // The sharer: keeps only the shared sockets (both processes now hold the same fds).
        for (std::size_t k = 0; k < kKinds; ++k) {
          if (k == static_cast<std::size_t>(Kind::Shared)) continue;
          for (int fd : (*held)[k])
            ::close(fd);
          (*held)[k].clear();
        }
        ::close(channel);
        ::close(sig);
        holdUntilTold(*held, -1, lifeline);
      }
      Msg reply{};
      reply.type = MsgType::Reply;
      reply.pid = child;
      reply.held[static_cast<std::size_t>(Kind::Shared)] =
          (*held)[static_cast<std::size_t>(Kind::Shared)].size();
      if (::send(channel, &reply, sizeof reply, MSG_NOSIGNAL) != sizeof reply) break;
    }
  }
  for (auto& list : *held) {
    for (int fd : list)
      abortSocket(fd);
  }
  ::_exit(0);
}

// Raises RLIMIT_NOFILE to `want`. Past the hard limit that needs CAP_SYS_RESOURCE, which even
// root may lack (containers, some VMs): then the error says how to spread the load.
void raiseFileLimit(std::uint64_t want, const std::string& who) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) failErrno("getrlimit");
  if (rl.rlim_cur >= want) return;
  rlimit raised{static_cast<rlim_t>(want), std::max(rl.rlim_max, static_cast<rlim_t>(want))};
  if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {
    failErrno(who + " needs " + std::to_string(want) + " file descriptors, above the hard " +
              "RLIMIT_NOFILE of " + std::to_string(rl.rlim_max) +
              " (raising it needs CAP_SYS_RESOURCE): use more --holders or a smaller --batch");
  }
}

[[noreturn]] void holderMain(int channel, int lifeline, std::uint64_t fdsNeeded,
                             std::optional<std::uint32_t> uid) {
  try {
    ::signal(SIGCHLD, SIG_IGN);  // the sharer is reaped automatically
    raiseFileLimit(fdsNeeded + 64, "a holder");
    if (uid) {
      if (::setresgid(*uid, *uid, *uid) != 0 || ::setresuid(*uid, *uid, *uid) != 0) {
        failErrno("dropping to --uid");
      }
      ::prctl(PR_SET_DUMPABLE, 1);  // like any process of that user
    }
    std::array<std::vector<int>, kKinds> fds;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kFdsPerMessage));
    for (;;) {
      Msg m{};
      iovec iov{&m, sizeof m};
      msghdr h{};
      h.msg_iov = &iov;
      h.msg_iovlen = 1;
      h.msg_control = control.data();
      h.msg_controllen = control.size();
      const ssize_t r = ::recvmsg(channel, &h, MSG_CMSG_CLOEXEC);
      if (r == 0) ::_exit(0);  // the coordinator is gone
      if (r != static_cast<ssize_t>(sizeof m)) failErrno("holder recvmsg");
      if (h.msg_flags & MSG_CTRUNC) fail("holder: file descriptors were dropped (RLIMIT_NOFILE?)");
      if (m.type == MsgType::Fds) {
        std::size_t got = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
          if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
          const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t i = 0; i < n; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds[static_cast<std::size_t>(m.kind)].push_back(fd);
          }
          got += n;
        }
        if (got != m.count) fail("holder: received fewer fds than announced");
      } else if (m.type == MsgType::Sync) {
        Msg reply{};
        reply.type = MsgType::Reply;
        reply.pid = ::getpid();
        for (std::size_t k = 0; k < kKinds; ++k)
          reply.held[k] = fds[k].size();
        if (::send(channel, &reply, sizeof reply, MSG_NOSIGNAL) != sizeof reply) {
          failErrno("holder reply");
        }
        holdUntilTold(fds, channel, lifeline);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sockfarm holder %d: %s\n", ::getpid(), e.what());
    ::_exit(1);
  }
}

std::string stateKey(TcpState s) {
  return std::string(stateName(s));
}

struct SocketDetail {
  TcpState state{};
  std::uint64_t inode = 0;
  std::uint64_t cookie = 0;
  Endpoint local, remote;
  std::uint32_t recvQ = 0;
  bool shared = false;
};

json detailJson(const SocketDetail& d) {
  return json{{"state", stateKey(d.state)},
              {"inode", d.inode},
              {"cookie", d.cookie},
              {"local", d.local.toString()},
              {"remote", d.state == TcpState::Listen ? std::string() : d.remote.toString()},
              {"recv_q", d.recvQ},
              {"shared", d.shared}};
}

// One holder (or sharer) as the coordinator sees it.
struct Holder {
  std::uint32_t index = 0;
  std::string role = "holder";
  pid_t pid = -1;
  pid_t parent = -1;
  bool child = true;  // a child of the coordinator (sharers are children of holder 0)
  bool alive = true;
  UniqueFd channel;
  UniqueFd pidfd;
  std::array<std::vector<UniqueFd>, kKinds> outbox;
  std::array<std::uint64_t, kKinds> sent{};
  std::array<StateCounts, 2> states{};  // sockets it holds, by family (ipv4, ipv6) and state
  std::vector<std::uint16_t> listenPorts;
  std::vector<SocketDetail> details;
};

void sendFds(Holder& h, Kind kind) {
  auto& box = h.outbox[static_cast<std::size_t>(kind)];
  if (box.empty()) return;
  Msg m{};
  m.type = MsgType::Fds;
  m.kind = kind;
  m.count = static_cast<std::uint32_t>(box.size());
  std::vector<char> control(CMSG_SPACE(sizeof(int) * box.size()));
  iovec iov{&m, sizeof m};
  msghdr hdr{};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  hdr.msg_control = control.data();
  hdr.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&hdr);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * box.size());
  for (std::size_t i = 0; i < box.size(); ++i) {
    const int fd = box[i].get();
    std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
  }
  for (;;) {
    if (::sendmsg(h.channel.get(), &hdr, MSG_NOSIGNAL) >= 0) break;
    if (errno != EINTR) failErrno("passing sockets to holder " + std::to_string(h.index));
  }
  h.sent[static_cast<std::size_t>(kind)] += box.size();
  box.clear();  // our copies close; the holder's keep the sockets alive
}

Msg receiveReply(Holder& h, const Deadline& deadline) {
  if (!waitReadable(h.channel.get(), deadline)) {
    fail("holder " + std::to_string(h.index) + " did not answer");
  }
  Msg m{};
  if (::recv(h.channel.get(), &m, sizeof m, 0) != static_cast<ssize_t>(sizeof m) ||
      m.type != MsgType::Reply) {
    fail("holder " + std::to_string(h.index) + " died or answered garbage");
  }
  return m;
}

int pidfdOpen(pid_t pid) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) failErrno("pidfd_open");
  return static_cast<int>(fd);
}

// ---------------------------------------------------------------------------------------------
// The farm

class Farm {
 public:
  explicit Farm(Options o) : o_(std::move(o)) {}

  void run();

 private:
  struct FamilyPlan {
    Family family;
    IpAddress loopback;                  // 127.0.0.1 / ::1
    Endpoint mainListen;                 // where every connection goes
    Endpoint twDest;                     // TIME_WAIT destination
    std::vector<Endpoint> listeners;     // all listeners of this family
    std::vector<UniqueFd> listenFds;     // parallel to listeners
    SourceAllocator* clients = nullptr;  // client sides of CLOSE_WAIT/FIN_WAIT2/ESTABLISHED
    SourceAllocator* tw = nullptr;       // client sides of TIME_WAIT
  };

  void prepareNamespace();
  void forkHolders();
  void buildFamily(FamilyPlan& plan);
  void buildHalfClosed(FamilyPlan& plan, Kind kind, std::uint64_t count, std::uint32_t unread);
  void buildEstablished(FamilyPlan& plan);
  void buildTimeWait(FamilyPlan& plan, bool serverSide, std::uint64_t count);
  void give(Holder& h, Kind kind, UniqueFd fd, TcpState state, Family f, std::uint32_t recvQ);
  void flushOutboxes();
  Holder& holderFor(Kind kind, std::uint64_t index);
  void finishHolders();
  void exitHolder(Holder& h, const Deadline& deadline);
  [[nodiscard]] std::array<StateCounts, 2> totals() const;
  json report() const;
  void serve();
  void shutdownAll();

  Options o_;
  std::uint16_t portLo_ = 32768, portHi_ = 60999;
  bool loBroughtUp_ = false;
  std::uint32_t twBucketsBefore_ = 0, twBucketsAfter_ = 0;
  std::uint64_t twOverflowBefore_ = 0;
  UniqueFd lifelineWrite_;
  UniqueFd lifelineRead_;
  std::vector<Holder> holders_;  // holders first, then the sharer
  std::array<std::uint64_t, kKinds> kindCounter_{};
  std::vector<FamilyPlan> plans_;
  std::vector<json> listenerJson_;
  std::vector<json> timeWaitDetails_;
  std::array<std::uint64_t, 2> shared_{};    // CLOSE_WAIT sockets of Kind::Shared, by family
  std::array<std::uint64_t, 2> timeWait_{};  // TIME_WAIT sockets built, by family
  std::vector<std::uint16_t> allListenPorts_;
  std::unordered_map<std::string, double> timingsMs_;
  Clock::time_point firstTimeWait_{};
  bool anyTimeWait_ = false;
  std::vector<std::string> twSources_;
};

void Farm::prepareNamespace() {
  if (const auto others = otherInterfaces(); !others.empty() && !o_.allowHostNetns) {
    throw UsageError("refusing to run in a network namespace with interfaces other than lo (" +
                     others.front() +
                     "...): run it with `ip netns exec NAME` or `unshare -n` "
                     "(or pass --allow-host-netns)");
  }
  loBroughtUp_ = bringLoopbackUp();
  if (o_.sourcePorts) {
    portLo_ = o_.sourcePorts->first;
    portHi_ = o_.sourcePorts->second;
  } else {
    std::istringstream range(readSmallFile("/proc/sys/net/ipv4/ip_local_port_range"));
    unsigned lo = 0, hi = 0;
    if (!(range >> lo >> hi) || lo == 0 || lo > hi || hi > 65535) {
      fail("cannot parse /proc/sys/net/ipv4/ip_local_port_range");
    }
    portLo_ = static_cast<std::uint16_t>(lo);
    portHi_ = static_cast<std::uint16_t>(hi);
  }
  // TIME_WAIT sockets past tcp_max_tw_buckets (per namespace) are silently dropped: raise it.
  const std::string bucketsPath = "/proc/sys/net/ipv4/tcp_max_tw_buckets";
  std::istringstream buckets(readSmallFile(bucketsPath));
  if (!(buckets >> twBucketsBefore_)) fail("cannot parse " + bucketsPath);
  const int families = (o_.v4 ? 1 : 0) + (o_.v6 ? 1 : 0);
  const std::uint64_t twWanted =
      (o_.timeWait + o_.serverTimeWait) * static_cast<unsigned>(families);
  twBucketsAfter_ = twBucketsBefore_;
  if (twWanted + 1024 > twBucketsBefore_) {
    twBucketsAfter_ =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(twWanted + 1024, 0x7fffffff));
    writeSmallFile(bucketsPath, std::to_string(twBucketsAfter_));
  }
  twOverflowBefore_ = timeWaitOverflowCounter();

  // The coordinator holds a batch of pairs, the batch's kept sockets on their way to the
  // holders (outboxes are flushed after every batch) and the listeners at once.
  raiseFileLimit(static_cast<std::uint64_t>(o_.batch) * 3 + 2 * (o_.extraListeners + 2) + 256,
                 "sockfarm");
}

// How many sockets holder `h` ends up with, so it can raise its own RLIMIT_NOFILE first.
std::uint64_t shareOf(std::uint64_t n, std::uint32_t holders, std::uint32_t h) {
  return n / holders + (h < n % holders ? 1 : 0);
}

void Farm::forkHolders() {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) failErrno("pipe");
  lifelineRead_.reset(pipeFds[0]);
  lifelineWrite_.reset(pipeFds[1]);
  const std::uint64_t families = (o_.v4 ? 1u : 0u) + (o_.v6 ? 1u : 0u);
  for (std::uint32_t i = 0; i < o_.holders; ++i) {
    std::uint64_t need = 0;
    for (std::uint64_t n : {o_.closeWait, o_.closeWaitUnread, o_.closeWaitEof, o_.finWait2}) {
      need += shareOf(n, o_.holders, i);
    }
    need += 2 * shareOf((o_.established + 1) / 2, o_.holders, i);
    need += o_.extraListeners + 2;
    if (i == 0) need += o_.shared + 2;
    need *= families;
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && need + 64 > rl.rlim_max) {
      // Find out now rather than after minutes of building: can we go past the hard limit?
      rlimit probe{rl.rlim_cur, static_cast<rlim_t>(need + 64)};
      if (::setrlimit(RLIMIT_NOFILE, &probe) != 0) {
        throw UsageError("holder " + std::to_string(i) + " would hold " + std::to_string(need) +
                         " sockets, above the hard RLIMIT_NOFILE of " +
                         std::to_string(rl.rlim_max) +
                         " (raising it needs CAP_SYS_RESOURCE): use more --holders");
      }
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      failErrno("socketpair");
    }
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) failErrno("fork");
    if (pid == 0) {
      // Keep stdio (stdin/stdout to /dev/null so the caller sees EOF when the coordinator
      // exits), the channel and the lifeline; close everything else inherited.
      const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
      }
      std::vector<int> keep = {0, 1, 2, pair[1], lifelineRead_.get()};
      std::sort(keep.begin(), keep.end());
      for (std::size_t k = 0; k + 1 < keep.size(); ++k) {
        if (keep[k + 1] > keep[k] + 1) {
          ::close_range(static_cast<unsigned>(keep[k] + 1), static_cast<unsigned>(keep[k + 1] - 1),
                        0);
        }
      }
      ::close_range(static_cast<unsigned>(keep.back() + 1), ~0U, 0);
      holderMain(pair[1], lifelineRead_.get(), need, o_.uid);
    }
    ::close(pair[1]);
    Holder h;
    h.index = i;
    h.pid = pid;
    h.parent = ::getpid();
    h.channel.reset(pair[0]);
    h.pidfd.reset(pidfdOpen(pid));
    holders_.push_back(std::move(h));
  }
}

// Sends every pending fd, so that the coordinator's own fd count stays within a batch.
void Farm::flushOutboxes() {
  for (auto& h : holders_) {
    for (std::size_t k = 0; k < kKinds; ++k)
      sendFds(h, static_cast<Kind>(k));
  }
}

Holder& Farm::holderFor(Kind kind, std::uint64_t index) {
  if (kind == Kind::Shared) return holders_[0];
  return holders_[index % o_.holders];
}

void Farm::give(Holder& h, Kind kind, UniqueFd fd, TcpState state, Family f, std::uint32_t recvQ) {
  const std::size_t fi = f == Family::V4 ? 0 : 1;
  h.states[fi][state]++;
  if (kind == Kind::Shared) shared_[fi]++;
  if (kind == Kind::Listen) h.listenPorts.push_back(localEndpoint(fd.get()).port);
  if (o_.details) {
    SocketDetail d;
    d.state = state;
    d.inode = socketInode(fd.get());
    d.cookie = socketCookie(fd.get());
    d.local = localEndpoint(fd.get());
    if (state != TcpState::Listen) d.remote = remoteEndpoint(fd.get());
    d.recvQ = recvQ;
    d.shared = kind == Kind::Shared;
    h.details.push_back(d);
  }
  auto& box = h.outbox[static_cast<std::size_t>(kind)];
  box.push_back(std::move(fd));
  if (box.size() >= kFdsPerMessage) sendFds(h, kind);
}

// CLOSE_WAIT (kept: server side) and FIN_WAIT2 (kept: client side), in batches: connect a batch,
// accept it, half-close every client, wait until every client is in FIN_WAIT2 (the ACK of a FIN
// is delayed; removing a peer before that loses the socket), then remove the other side silently.
void Farm::buildHalfClosed(FamilyPlan& plan, Kind kind, std::uint64_t count, std::uint32_t unread) {
  const bool keepServer = kind != Kind::FinWait2;
  const SockAddr dest = toSockAddr(plan.mainListen);
  const int listener = plan.listenFds[0].get();
  const std::vector<char> payload(unread, 'x');
  std::vector<UniqueFd> clients, servers;
  std::vector<int> raw;
  for (std::uint64_t done = 0; done < count;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(o_.batch, count - done));
    const Deadline deadline(o_.timeoutMs);
    clients.clear();
    servers.clear();
    for (std::size_t i = 0; i < n; ++i) {
      UniqueFd c = newTcpSocket(plan.family);
      bindNextSource(c.get(), *plan.clients);
      startConnect(c.get(), dest);
      clients.push_back(std::move(c));
    }
    for (std::size_t i = 0; i < n; ++i)
      servers.push_back(acceptOne(listener, deadline));
    raw.clear();
    for (auto& c : clients) {
      if (unread > 0) {
        if (tcpState(c.get()) != TCP_ESTABLISHED) fail("a client did not connect");
        const ssize_t w = ::send(c.get(), payload.data(), payload.size(), MSG_NOSIGNAL);
        if (w != static_cast<ssize_t>(payload.size())) failErrno("sending the unread bytes");
      }
      if (::shutdown(c.get(), SHUT_WR) != 0) failErrno("shutdown");
      raw.push_back(c.get());
    }
    waitForState(raw, TCP_FIN_WAIT2, deadline, "clients to reach FIN_WAIT2");
    if (unread > 0) {
      for (auto& s : servers) {
        int queued = 0;
        if (::ioctl(s.get(), SIOCINQ, &queued) != 0) failErrno("SIOCINQ");
        if (static_cast<std::uint32_t>(queued) != unread) {
          fail("a CLOSE_WAIT socket holds " + std::to_string(queued) + " unread bytes, not " +
               std::to_string(unread));
        }
      }
    }
    if (kind == Kind::CloseWaitEof) {
      // The FIN is queued (the client is in FIN_WAIT2): a read returns end-of-stream at once,
      // and moves copied_seq past the FIN.
      char byte = 0;
      for (auto& srv : servers) {
        ssize_t r = -1;
        while (!deadline.expired() && (r = ::recv(srv.get(), &byte, 1, MSG_DONTWAIT)) < 0 &&
               errno == EAGAIN) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (r != 0) fail("a CLOSE_WAIT socket did not read end-of-stream");
      }
    }
    auto& kept = keepServer ? servers : clients;
    auto& dropped = keepServer ? clients : servers;
    for (auto& d : dropped)
      closeSilently(std::move(d));
    const TcpState state = keepServer ? TcpState::CloseWait : TcpState::FinWait2;
    // Recv-Q as inet_diag reports it: the FIN counts as one byte.
    const std::uint32_t recvQ = keepServer && kind != Kind::CloseWaitEof ? unread + 1 : 0;
    for (auto& k : kept) {
      const std::uint64_t index = kindCounter_[static_cast<std::size_t>(kind)]++;
      give(holderFor(kind, index), kind, std::move(k), state, plan.family, recvQ);
    }
    flushOutboxes();
    done += n;
  }
}

// ESTABLISHED: pairs, both ends to the same holder (so a holder that exits takes its pairs
// with it and no other holder's socket changes state). An odd last socket has no peer.
void Farm::buildEstablished(FamilyPlan& plan) {
  const std::uint64_t pairs = (o_.established + 1) / 2;
  const SockAddr dest = toSockAddr(plan.mainListen);
  const int listener = plan.listenFds[0].get();
  std::vector<UniqueFd> clients;
  std::unordered_map<Endpoint, std::size_t, EndpointHash> byEndpoint;
  std::uint64_t pairIndex = 0;
  for (std::uint64_t done = 0; done < pairs;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(o_.batch, pairs - done));
    const Deadline deadline(o_.timeoutMs);
    clients.clear();
    byEndpoint.clear();
    for (std::size_t i = 0; i < n; ++i) {
      UniqueFd c = newTcpSocket(plan.family);
      byEndpoint.emplace(bindNextSource(c.get(), *plan.clients), i);
      startConnect(c.get(), dest);
      clients.push_back(std::move(c));
    }
    for (std::size_t i = 0; i < n; ++i) {
      UniqueFd s = acceptOne(listener, deadline);
      const auto it = byEndpoint.find(remoteEndpoint(s.get()));
      if (it == byEndpoint.end()) fail("accepted a connection that is not ours");
      UniqueFd& c = clients[it->second];
      if (tcpState(c.get()) != TCP_ESTABLISHED) fail("a client is not ESTABLISHED");
      Holder& h = holderFor(Kind::Established, pairIndex);
      const bool lastOdd = pairIndex * 2 + 1 == o_.established;
      if (lastOdd) {
        closeSilently(std::move(s));
      } else {
        give(h, Kind::Established, std::move(s), TcpState::Established, plan.family, 0);
      }
      give(h, Kind::Established, std::move(c), TcpState::Established, plan.family, 0);
      ++pairIndex;
    }
    flushOutboxes();
    done += n;
  }
}

// TIME_WAIT, one connection at a time, each step confirmed: the closing side sends its FIN
// (shutdown), the other reads EOF and shuts down too; both sockets must end in CLOSE (the
// closing side's TIME_WAIT now lives on as a timewait socket) before the next one starts.
void Farm::buildTimeWait(FamilyPlan& plan, bool serverSide, std::uint64_t count) {
  const Endpoint destination = serverSide ? plan.mainListen : plan.twDest;
  const SockAddr dest = toSockAddr(destination);
  int listener = -1;
  for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
    if (plan.listeners[i] == destination) listener = plan.listenFds[i].get();
  }
  SourceAllocator& sources = serverSide ? *plan.clients : *plan.tw;
  char byte = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const Deadline deadline(o_.timeoutMs);
    UniqueFd c = newTcpSocket(plan.family);
    const Endpoint source = bindNextSource(c.get(), sources);
    startConnect(c.get(), dest);
    UniqueFd s = acceptOne(listener, deadline);
    if (!anyTimeWait_) {
      anyTimeWait_ = true;
      firstTimeWait_ = Clock::now();
    }
    UniqueFd& closer = serverSide ? s : c;
    UniqueFd& other = serverSide ? c : s;
    const std::uint64_t cookie = o_.details ? socketCookie(closer.get()) : 0;
    if (::shutdown(closer.get(), SHUT_WR) != 0) failErrno("shutdown");
    for (;;) {
      const ssize_t r = ::recv(other.get(), &byte, 1, 0);
      if (r == 0) break;
      if (r < 0 && errno == EAGAIN) {
        if (!waitReadable(other.get(), deadline)) fail("timed out waiting for a FIN");
        continue;
      }
      fail("unexpected data or error while waiting for a FIN");
    }
    if (::shutdown(other.get(), SHUT_WR) != 0) failErrno("shutdown");
    waitForState({closer.get(), other.get()}, TCP_CLOSE, deadline, "a TIME_WAIT handshake");
    if (o_.details) {
      json d{{"side", serverSide ? "server" : "client"},
             {"cookie", cookie},
             {"local", serverSide ? destination.toString() : source.toString()},
             {"remote", serverSide ? source.toString() : destination.toString()}};
      timeWaitDetails_.push_back(std::move(d));
    }
    timeWait_[plan.family == Family::V4 ? 0 : 1]++;
    if (!serverSide && (twSources_.empty() || twSources_.back() != source.address.toString())) {
      twSources_.push_back(source.address.toString());
    }
  }
}

void Farm::buildFamily(FamilyPlan& plan) {
  auto timed = [&](const std::string& name, auto&& fn) {
    const auto start = Clock::now();
    fn();
    timingsMs_[name] += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  timed("fin_wait2", [&] { buildHalfClosed(plan, Kind::FinWait2, o_.finWait2, 0); });
  timed("close_wait", [&] {
    buildHalfClosed(plan, Kind::CloseWait, o_.closeWait, 0);
    buildHalfClosed(plan, Kind::CloseWaitUnread, o_.closeWaitUnread, o_.unreadBytes);
    buildHalfClosed(plan, Kind::CloseWaitEof, o_.closeWaitEof, 0);
    buildHalfClosed(plan, Kind::Shared, o_.shared, 0);
  });
  timed("established", [&] { buildEstablished(plan); });
  // Last, so that they are as young as possible at READY (TIME_WAIT lasts 60 s).
  timed("time_wait", [&] {
    buildTimeWait(plan, false, o_.timeWait);
    buildTimeWait(plan, true, o_.serverTimeWait);
  });
}

void Farm::finishHolders() {
  // Listeners go to holders last: the coordinator accepted on them until now.
  for (auto& plan : plans_) {
    for (std::size_t i = 0; i < plan.listeners.size(); ++i) {
      const bool extra = i >= 1 && plan.listeners[i].port != plan.twDest.port;
      Holder& h = extra ? holders_[(i) % o_.holders] : holders_[0];
      json l{{"address", plan.listeners[i].address.toString()},
             {"port", plan.listeners[i].port},
             {"family", familyName(plan.family)},
             {"holder", h.index}};
      if (o_.details) {
        l["inode"] = socketInode(plan.listenFds[i].get());
        l["cookie"] = socketCookie(plan.listenFds[i].get());
      }
      listenerJson_.push_back(std::move(l));
      give(h, Kind::Listen, std::move(plan.listenFds[i]), TcpState::Listen, plan.family, 0);
    }
    plan.listenFds.clear();
  }
  const Deadline deadline(o_.timeoutMs);
  flushOutboxes();
  for (auto& h : holders_) {
    Msg sync{};
    sync.type = MsgType::Sync;
    if (::send(h.channel.get(), &sync, sizeof sync, MSG_NOSIGNAL) != sizeof sync) {
      failErrno("sync with holder " + std::to_string(h.index));
    }
  }
  for (auto& h : holders_) {
    const Msg reply = receiveReply(h, deadline);
    if (reply.held != h.sent)
      fail("holder " + std::to_string(h.index) + " holds other sockets than sent");
  }
  if (o_.shared > 0) {
    Holder& h0 = holders_[0];
    Msg m{};
    m.type = MsgType::ForkSharer;
    if (::send(h0.channel.get(), &m, sizeof m, MSG_NOSIGNAL) != sizeof m) failErrno("fork sharer");
    const Msg reply = receiveReply(h0, deadline);
    if (reply.pid <= 0) fail("holder 0 could not fork the sharer");
    Holder s;
    s.index = static_cast<std::uint32_t>(holders_.size());
    s.role = "sharer";
    s.pid = reply.pid;
    s.parent = h0.pid;
    s.child = false;
    s.pidfd.reset(pidfdOpen(reply.pid));
    if (reply.held[static_cast<std::size_t>(Kind::Shared)] != shared_[0] + shared_[1]) {
      fail("the sharer holds other sockets than holder 0 shared");
    }
    for (std::size_t f = 0; f < 2; ++f)
      s.states[f][TcpState::CloseWait] = shared_[f];
    for (const auto& d : h0.details) {
      if (d.shared) s.details.push_back(d);
    }
    holders_.push_back(std::move(s));
  }
  // The coordinator keeps no socket: everything now lives in the holders.
  if (o_.exitOne) exitHolder(holders_[o_.holders - 1], deadline);
}

void Farm::exitHolder(Holder& h, const Deadline& deadline) {
  if (!h.alive) return;
  ::kill(h.pid, SIGTERM);
  if (!waitReadable(h.pidfd.get(), deadline)) {
    ::kill(h.pid, SIGKILL);
    waitReadable(h.pidfd.get(), Deadline(5000));
  }
  if (h.child) ::waitpid(h.pid, nullptr, 0);
  h.alive = false;
  h.channel.reset();
}

StateCounts operator+(StateCounts a, const StateCounts& b) {
  return a += b;
}
StateCounts sum(const std::array<StateCounts, 2>& t) {
  return t[0] + t[1];
}

json statesJson(const StateCounts& c) {
  json j = json::object();
  for (TcpState s : kAllTcpStates)
    j[stateKey(s)] = c[s];
  return j;
}

// What exists now, by family: every socket once (a shared one counts once while either owner
// lives), nothing of an exited holder.
std::array<StateCounts, 2> Farm::totals() const {
  std::array<StateCounts, 2> t{};
  bool sharedAlive = false;
  for (const auto& h : holders_) {
    if (h.role == "sharer" || h.index == 0) sharedAlive = sharedAlive || h.alive;
    if (h.role == "sharer" || !h.alive) continue;
    for (std::size_t f = 0; f < 2; ++f) {
      t[f] += h.states[f];
      if (h.index == 0) t[f][TcpState::CloseWait] -= shared_[f];
    }
  }
  for (std::size_t f = 0; f < 2; ++f) {
    if (sharedAlive) t[f][TcpState::CloseWait] += shared_[f];
    t[f][TcpState::TimeWait] += timeWait_[f];
  }
  return t;
}

json Farm::report() const {
  const auto byFamily = totals();
  StateCounts total = byFamily[0];
  total += byFamily[1];

  json holders = json::array();
  for (const auto& h : holders_) {
    json j{{"index", h.index},
           {"role", h.role},
           {"pid", h.pid},
           {"parent", h.parent},
           {"alive", h.alive},
           {"states", statesJson(h.states[0] + h.states[1])},
           {"states_ipv6", statesJson(h.states[1])}};
    auto ports = h.listenPorts;
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    j["listen_ports"] = ports;
    if (o_.details) {
      json list = json::array();
      for (const auto& d : h.details)
        list.push_back(detailJson(d));
      j["sockets"] = std::move(list);
    }
    holders.push_back(std::move(j));
  }
  json timings = json::object();
  for (const auto& [k, v] : timingsMs_)
    timings[k] = std::round(v * 10) / 10;
  json out{{"pid", ::getpid()},
           {"netns_inode", netnsInode()},
           {"uid", o_.uid.value_or(::getuid())},
           {"lo_brought_up", loBroughtUp_},
           {"states", statesJson(total)},
           {"states_ipv4", statesJson(byFamily[0])},
           {"states_ipv6", statesJson(byFamily[1])},
           {"close_wait_eof", {{"sockets", o_.closeWaitEof}, {"recv_q", 0}}},
           {"close_wait_unread",
            {{"sockets", o_.closeWaitUnread},
             {"bytes", o_.unreadBytes},
             {"recv_q", o_.closeWaitUnread ? o_.unreadBytes + 1 : 0}}},
           {"listeners", listenerJson_},
           {"holders", std::move(holders)},
           {"sysctl", {{"net.ipv4.tcp_max_tw_buckets", twBucketsAfter_}}},
           {"timings_ms", timings}};
  json tw{{"sources", twSources_}};
  if (!plans_.empty()) tw["destination"] = plans_[0].twDest.toString();
  if (anyTimeWait_) {
    const double age =
        std::chrono::duration<double, std::milli>(Clock::now() - firstTimeWait_).count();
    tw["oldest_age_ms"] = std::round(age);
  }
  if (o_.details) tw["sockets"] = timeWaitDetails_;
  out["time_wait"] = std::move(tw);
  return out;
}

void Farm::shutdownAll() {
  for (auto& h : holders_) {
    if (h.alive) ::kill(h.pid, SIGTERM);
  }
  const Deadline deadline(5000);
  for (auto& h : holders_)
    exitHolder(h, deadline);
}

void printLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// After READY: stdin commands, signals, and holders that die on their own.
void Farm::serve() {
  const int sig = signalFdFor({SIGTERM, SIGINT});
  UniqueFd sigGuard(sig);
  std::string pending;
  bool stdinOpen = true;
  for (;;) {
    std::vector<pollfd> p;
    p.push_back({sig, POLLIN, 0});
    if (stdinOpen) p.push_back({0, POLLIN, 0});
    const std::size_t firstHolder = p.size();
    for (const auto& h : holders_)
      p.push_back({h.alive ? h.pidfd.get() : -1, POLLIN, 0});
    if (::poll(p.data(), p.size(), -1) < 0) {
      if (errno == EINTR) continue;
      failErrno("poll");
    }
    if (p[0].revents) return;
    for (std::size_t i = 0; i < holders_.size(); ++i) {
      if (p[firstHolder + i].revents == 0) continue;
      Holder& h = holders_[i];
      if (h.child) ::waitpid(h.pid, nullptr, 0);
      h.alive = false;
      printLine(json{{"event", "died"}, {"holder", h.index}, {"pid", h.pid}}.dump());
    }
    if (stdinOpen && p[1].revents) {
      char buf[256];
      const ssize_t r = ::read(0, buf, sizeof buf);
      if (r <= 0) return;  // stdin closed: stop
      pending.append(buf, static_cast<std::size_t>(r));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        std::istringstream words(line);
        std::string cmd, arg;
        words >> cmd >> arg;
        if (cmd == "stop") return;
        auto index = parseNumber<std::uint32_t>(arg);
        if (cmd == "exit" && index && *index < holders_.size()) {
          Holder& h = holders_[*index];
          const bool wasAlive = h.alive;
          exitHolder(h, Deadline(o_.timeoutMs));
          printLine(json{{"event", "exited"},
                         {"holder", h.index},
                         {"pid", h.pid},
                         {"was_alive", wasAlive},
                         {"states", statesJson(sum(totals()))}}
                        .dump());
        } else if (!cmd.empty()) {
          printLine(json{{"event", "error"}, {"message", "unknown command: " + line}}.dump());
        }
      }
    }
  }
}

void Farm::run() {
  const auto start = Clock::now();
  prepareNamespace();
  forkHolders();

  std::vector<std::uint16_t> avoid;
  for (std::uint32_t i = 0; i <= o_.extraListeners; ++i) {
    avoid.push_back(static_cast<std::uint16_t>(o_.listenPort + i));
  }
  if (o_.twDest) avoid.push_back(o_.twDest->port);

  // Client endpoints: IPv4 clients from 127.0.1.1 on, TIME_WAIT clients from 127.0.0.1 (or
  // --tw-source) on, each rolling over to the next address when the port range runs out.
  // IPv6 has only ::1 on lo: one shared range, no roll-over.
  std::vector<std::unique_ptr<SourceAllocator>> allocators;
  const auto v4Loopback = IpAddress::v4({127, 0, 0, 1});
  const auto v6Loopback = *IpAddress::parse("::1");
  if (o_.uid && ::setfsuid(*o_.uid) < 0) failErrno("setfsuid");
  for (Family f : kFamilies) {
    if ((f == Family::V4 && !o_.v4) || (f == Family::V6 && !o_.v6)) continue;
    FamilyPlan plan;
    plan.family = f;
    plan.loopback = f == Family::V4 ? v4Loopback : v6Loopback;
    plan.mainListen = Endpoint{plan.loopback, o_.listenPort};
    plan.twDest = o_.twDest.value_or(plan.mainListen);
    if (f == Family::V4) {
      allocators.push_back(std::make_unique<SourceAllocator>(IpAddress::v4({127, 0, 1, 1}), portLo_,
                                                             portHi_, true, avoid, "client"));
      plan.clients = allocators.back().get();
      allocators.push_back(std::make_unique<SourceAllocator>(
          o_.twSource.value_or(v4Loopback), portLo_, portHi_, true, avoid, "TIME_WAIT"));
      plan.tw = allocators.back().get();
    } else {
      allocators.push_back(std::make_unique<SourceAllocator>(
          o_.twSource.value_or(v6Loopback), portLo_, portHi_, false, avoid, "IPv6"));
      plan.clients = plan.tw = allocators.back().get();
    }
    plan.listeners.push_back(plan.mainListen);
    for (std::uint32_t i = 1; i <= o_.extraListeners; ++i) {
      plan.listeners.push_back(
          Endpoint{plan.loopback, static_cast<std::uint16_t>(o_.listenPort + i)});
    }
    if (std::find(plan.listeners.begin(), plan.listeners.end(), plan.twDest) ==
        plan.listeners.end()) {
      plan.listeners.push_back(plan.twDest);
    }
    for (const auto& l : plan.listeners) {
      UniqueFd fd = newTcpSocket(f);
      setIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
      if (f == Family::V6) setIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
      const SockAddr a = toSockAddr(l);
      if (::bind(fd.get(), a.get(), a.length) != 0) failErrno("bind listener " + l.toString());
      if (::listen(fd.get(), 4096) != 0) failErrno("listen " + l.toString());
      plan.listenFds.push_back(std::move(fd));
    }
    plans_.push_back(std::move(plan));
  }
  for (auto& plan : plans_)
    buildFamily(plan);
  if (o_.uid) ::setfsuid(0);
  if (const auto overflow = timeWaitOverflowCounter(); overflow != twOverflowBefore_) {
    fail("TCPTimeWaitOverflow rose by " + std::to_string(overflow - twOverflowBefore_) +
         ": TIME_WAIT sockets were dropped");
  }
  finishHolders();
  timingsMs_["total"] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  printLine(report().dump());
  printLine("READY");
  serve();
  shutdownAll();
}

}  // namespace
}  // namespace waitwatch::sockfarm

int main(int argc, char** argv) {
  using namespace waitwatch::sockfarm;
  // Signals are read through signalfd; holders inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  Options options;
  try {
    options = parseOptions(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sockfarm: %s\n", e.what());
    return kUsageError;
  }
  Farm farm(std::move(options));
  try {
    farm.run();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sockfarm: %s\n", e.what());
    return kUsageError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sockfarm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
