// SPDX-License-Identifier: Apache-2.0
// The sampler and the namespace helpers against a real private network namespace (root).
#include "netlink/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "netlink/netns_info.hpp"
#include "netlink/sampler.hpp"
#include "support/tcp_wait.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

std::uint64_t threadNetnsInode() {
  struct stat st {};
  EXPECT_EQ(::stat("/proc/thread-self/ns/net", &st), 0);
  return st.st_ino;
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

// A private network namespace made on a helper thread (so the test's own threads never move),
// holding a listener on 127.0.0.1:7777, an ESTABLISHED pair, a CLOSE_WAIT / FIN_WAIT2 pair and
// an IPv6 listener; with its own sysctl values. Lives while `fd` and the sockets are open.
struct PrivateNetns {
  UniqueFd fd;
  std::vector<UniqueFd> sockets;
  std::uint64_t inode = 0;

  PrivateNetns() {
    std::thread t([this] { build(); });
    t.join();
  }

 private:
  UniqueFd tcp(int family) { return UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

  void build() {
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    auto nsFd = openAt(AT_FDCWD, "/proc/thread-self/ns/net");
    ASSERT_TRUE(nsFd.ok());
    fd = std::move(*nsFd);
    inode = threadNetnsInode();

    UniqueFd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ASSERT_EQ(::ioctl(ctl.get(), SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ASSERT_EQ(::ioctl(ctl.get(), SIOCSIFFLAGS, &ifr), 0);

    writeFile("/proc/sys/net/ipv4/ip_local_port_range", "40000 40999");
    writeFile("/proc/sys/net/ipv4/ip_local_reserved_ports", "40500");
    writeFile("/proc/sys/net/ipv4/tcp_max_tw_buckets", "777");

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(7777);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    UniqueFd listener = tcp(AF_INET);
    ASSERT_EQ(::bind(listener.get(), sa, sizeof addr), 0);
    ASSERT_EQ(::listen(listener.get(), 8), 0);
    UniqueFd established = tcp(AF_INET);
    ASSERT_EQ(::connect(established.get(), sa, sizeof addr), 0);
    UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    UniqueFd closing = tcp(AF_INET);
    ASSERT_EQ(::connect(closing.get(), sa, sizeof addr), 0);
    UniqueFd closeWait(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_EQ(::shutdown(closing.get(), SHUT_WR), 0);

    sockaddr_in6 addr6{};
    addr6.sin6_family = AF_INET6;
    addr6.sin6_port = htons(7778);
    addr6.sin6_addr = in6addr_any;
    UniqueFd listener6 = tcp(AF_INET6);
    ASSERT_EQ(::bind(listener6.get(), reinterpret_cast<sockaddr*>(&addr6), sizeof addr6), 0);
    ASSERT_EQ(::listen(listener6.get(), 8), 0);

    ASSERT_TRUE(testing::waitForTcpState(closing.get(), testing::kTcpFinWait2));
    for (auto* s : {&listener, &established, &accepted, &closing, &closeWait, &listener6}) {
      sockets.push_back(std::move(*s));
    }
  }
};

// A temporary directory standing in for /run/netns, with the namespace bind-mounted under a
// name; unmounted and removed even when the test fails.
struct TempRunNetns {
  std::filesystem::path dir;
  std::vector<std::string> mounts;

  TempRunNetns() {
    char tmpl[] = "/tmp/waitwatch-netns-test-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void bind(const std::string& name, int nsFd) {
    const std::string target = (dir / name).string();
    std::ofstream(target).close();
    const std::string source = "/proc/self/fd/" + std::to_string(nsFd);
    ASSERT_EQ(::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0)
        << std::strerror(errno);
    mounts.push_back(target);
  }
  ~TempRunNetns() {
    for (const auto& m : mounts)
      ::umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates a network namespace)";
  }
};

StateCounts countAll(SockDiagSampler& s, const DumpOptions& opts, DumpStats* stats = nullptr) {
  StateCounts counts;
  auto r = s.dump(
      opts, [&](const SocketRecord& rec) { counts[rec.state] += 1; },
      [&] { counts = StateCounts{}; });
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (r.ok() && stats) *stats = *r;
  return counts;
}

TEST_F(NetnsTest, SamplerDumpsOnlyThatNamespaceAndComesBack) {
  PrivateNetns ns;
  const auto before = threadNetnsInode();
  ASSERT_NE(before, ns.inode);
  auto sampler = SockDiagSampler::openInNamespace(ns.fd.get());
  ASSERT_TRUE(sampler.ok()) << sampler.error().message;
  EXPECT_EQ(threadNetnsInode(), before);

  DumpStats stats;
  StateCounts c = countAll(*sampler, {}, &stats);
  StateCounts want;
  want[TcpState::Listen] = 2;
  want[TcpState::Established] = 2;
  want[TcpState::FinWait2] = 1;
  want[TcpState::CloseWait] = 1;
  EXPECT_EQ(c, want);
  EXPECT_EQ(stats.sockets, 6u);
  EXPECT_EQ(stats.retries, 0u);
  EXPECT_GE(stats.recvCalls, 2u);  // one reply per family at least

  // Kernel-side filter, and one family only; the same socket serves repeated dumps.
  c = countAll(*sampler, {.states = stateBit(TcpState::CloseWait)});
  StateCounts cw;
  cw[TcpState::CloseWait] = 1;
  EXPECT_EQ(c, cw);
  c = countAll(*sampler, {.ipv4 = false});
  StateCounts v6;
  v6[TcpState::Listen] = 1;
  EXPECT_EQ(c, v6);

  std::set<std::uint16_t> ports;
  bool cgroup = false;
  auto r = sampler->dump(
      {.states = stateBit(TcpState::Listen)},
      [&](const SocketRecord& rec) {
        ports.insert(rec.local.port);
        cgroup = cgroup || rec.hasCgroupId;
      },
      [] {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ports, (std::set<std::uint16_t>{7777, 7778}));
  EXPECT_TRUE(cgroup);
}

TEST_F(NetnsTest, BadNamespaceFdFailsAndLeavesTheThreadWhereItWas) {
  const auto before = threadNetnsInode();
  auto notNs = openAt(AT_FDCWD, "/proc/self/stat");
  ASSERT_TRUE(notNs.ok());
  auto s = SockDiagSampler::openInNamespace(notNs->get());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("setns"), std::string::npos) << s.error().message;
  EXPECT_EQ(threadNetnsInode(), before);
}

void expectPrivateInfo(const NetnsKernelInfo& info) {
  EXPECT_EQ(info.problems, "");
  ASSERT_TRUE(info.ephemeral.has_value());
  EXPECT_EQ(info.ephemeral->low(), 40000);
  EXPECT_EQ(info.ephemeral->high(), 40999);
  EXPECT_EQ(info.ephemeral->usableCount(), 999u);  // 1000 ports minus the reserved one
  EXPECT_EQ(info.maxTimeWaitBuckets, 777u);
  EXPECT_TRUE(info.counters.valid);
  EXPECT_EQ(info.counters.activeOpens, 2u);  // the namespace's own two connect()s
  EXPECT_EQ(info.counters.passiveOpens, 2u);
}

TEST_F(NetnsTest, KernelInfoComesFromTheNamespace) {
  PrivateNetns ns;
  const auto before = threadNetnsInode();
  auto info = readNetnsKernelInfo(ns.fd.get());
  ASSERT_TRUE(info.ok()) << info.error().message;
  expectPrivateInfo(*info);
  EXPECT_EQ(threadNetnsInode(), before);

  // From a second thread too: /proc/thread-self (not /proc/self, which follows the main
  // thread) must show the namespace the reading thread entered.
  std::thread t([&] {
    auto other = readNetnsKernelInfo(ns.fd.get());
    ASSERT_TRUE(other.ok()) << other.error().message;
    expectPrivateInfo(*other);
  });
  t.join();

  // And the caller's own namespace is read as itself again.
  const NetnsKernelInfo own = readCurrentNetnsKernelInfo();
  auto buckets = readFile("/proc/sys/net/ipv4/tcp_max_tw_buckets");
  ASSERT_TRUE(buckets.ok());
  EXPECT_EQ(std::to_string(own.maxTimeWaitBuckets) + "\n", *buckets);
  EXPECT_NE(own.maxTimeWaitBuckets, 777u);
}

// A namespace made while its parent's net.ipv4.tcp_child_ehash_entries is 0 shares the host's
// TCP hash table; one made with it set gets a table of its own of that size
// (net/ipv4/tcp_ipv4.c, tcp_set_hashinfo()), and the sysctl tells which.
TEST_F(NetnsTest, TcpHashTableIsReadAsSharedOrOwn) {
  if (::access("/proc/sys/net/ipv4/tcp_ehash_entries", F_OK) != 0) {
    GTEST_SKIP() << "no net.ipv4.tcp_ehash_entries (Linux before 6.1: one table for all)";
  }
  UniqueFd parent;
  UniqueFd shared;
  UniqueFd own;
  std::thread t([&] {
    const auto enter = [](UniqueFd& into) {
      ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
      auto fd = openAt(AT_FDCWD, "/proc/thread-self/ns/net");
      ASSERT_TRUE(fd.ok());
      into = std::move(*fd);
    };
    ASSERT_NO_FATAL_FAILURE(enter(parent));
    // Explicit, whatever the caller's namespace has.
    ASSERT_NO_FATAL_FAILURE(writeFile("/proc/sys/net/ipv4/tcp_child_ehash_entries", "0"));
    ASSERT_NO_FATAL_FAILURE(enter(shared));
    ASSERT_EQ(::setns(parent.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_NO_FATAL_FAILURE(writeFile("/proc/sys/net/ipv4/tcp_child_ehash_entries", "512"));
    ASSERT_NO_FATAL_FAILURE(enter(own));
  });
  t.join();
  ASSERT_TRUE(own.valid());

  auto sharedInfo = readNetnsKernelInfo(shared.get());
  auto ownInfo = readNetnsKernelInfo(own.get());
  ASSERT_TRUE(sharedInfo.ok() && ownInfo.ok());
  EXPECT_EQ(sharedInfo->problems, "");
  EXPECT_EQ(ownInfo->problems, "");
  ASSERT_TRUE(sharedInfo->tcpHashEntries.has_value());
  ASSERT_TRUE(ownInfo->tcpHashEntries.has_value());
  EXPECT_EQ(*ownInfo->tcpHashEntries, 512);
  EXPECT_LT(*sharedInfo->tcpHashEntries, 0);
  // The parent was made with the caller's setting: where that shares too, it is the same table.
  auto parentInfo = readNetnsKernelInfo(parent.get());
  ASSERT_TRUE(parentInfo.ok() && parentInfo->tcpHashEntries.has_value());
  if (*parentInfo->tcpHashEntries < 0) {
    EXPECT_EQ(*parentInfo->tcpHashEntries, *sharedInfo->tcpHashEntries);
  }
}

TEST_F(NetnsTest, NamesComeFromRunNetnsAndDuplicatesFold) {
  PrivateNetns ns;
  TempRunNetns run;
  run.bind("ww-b", ns.fd.get());
  run.bind("ww-a", ns.fd.get());  // a second name for the same namespace
  std::ofstream((run.dir / "stray-file").string()).close();

  auto all = listNetworkNamespaces("/proc", run.dir.string());
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::set<std::uint64_t> inodes;
  const NetnsHandle* mine = nullptr;
  for (const auto& h : *all) {
    EXPECT_TRUE(inodes.insert(h.ref.inode).second) << "duplicate " << h.ref.inode;
    EXPECT_TRUE(h.fd.valid());
    if (h.ref.inode == ns.inode) mine = &h;
  }
  ASSERT_NE(mine, nullptr) << "a namespace with no process in it is found through runNetns";
  EXPECT_EQ(mine->ref.name, "ww-a");  // the smallest of its names
  auto own = currentNetworkNamespace("/proc", run.dir.string());
  ASSERT_TRUE(own.ok());
  EXPECT_TRUE(inodes.contains(own->ref.inode));
  EXPECT_EQ(own->ref.name, "");

  auto named = openNamedNetworkNamespace("ww-b", run.dir.string());
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->ref, (NetnsRef{ns.inode, "ww-b", {}}));
  auto sampler = SockDiagSampler::openInNamespace(named->fd.get());
  ASSERT_TRUE(sampler.ok());
  EXPECT_EQ(countAll(*sampler, {}).total(), 6u);

  auto missing = openNamedNetworkNamespace("nope", run.dir.string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().errnum, ENOENT);
  EXPECT_NE(missing.error().message.find("no network namespace named 'nope'"), std::string::npos);
  auto stray = openNamedNetworkNamespace("stray-file", run.dir.string());
  ASSERT_FALSE(stray.ok());
  EXPECT_NE(stray.error().message.find("is not a network namespace"), std::string::npos);
  auto escape = openNamedNetworkNamespace("../etc", run.dir.string());
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.error().message.find("not a valid network namespace name"), std::string::npos);
}

// An unnamed namespace is labelled by what holds it: here a process in a systemd-style service
// cgroup (made under the unified hierarchy, as systemd would) that entered a namespace of its
// own. The namespace waitwatch runs in is "host" unless `ip netns` names it.
TEST(NetnsAliases, AnUnnamedNamespaceIsNamedByTheServiceThatHoldsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates a cgroup and a network namespace)";
  std::string root = "/sys/fs/cgroup/unified";
  if (::access((root + "/cgroup.procs").c_str(), W_OK) != 0) root = "/sys/fs/cgroup";
  const std::string unit = "ww-alias-" + std::to_string(::getpid()) + ".service";
  const std::string cgroup = root + "/" + unit;
  ASSERT_EQ(::mkdir(cgroup.c_str(), 0755), 0) << cgroup << ": " << std::strerror(errno);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    std::ofstream procs(cgroup + "/cgroup.procs");
    procs << "0" << std::flush;
    // "x": in the cgroup and the namespace; "!": it could not get there.
    const char* say = procs && ::unshare(CLONE_NEWNET) == 0 ? "x" : "!";
    [[maybe_unused]] const auto n = ::write(ready[1], say, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);  // a child that dies before writing ends the read with EOF
  struct Cleanup {
    pid_t child;
    int fd;
    std::string cgroup;
    ~Cleanup() {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      ::close(fd);
      ::rmdir(cgroup.c_str());
    }
  } cleanup{child, ready[0], cgroup};
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 'x') << "the child could not enter " << cgroup << " and a namespace of its own";
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(child) + "/ns/net").c_str(), &st), 0);
  struct stat own {};
  ASSERT_EQ(::stat("/proc/thread-self/ns/net", &own), 0);

  NetnsAliasCache aliases;
  for (int pass = 0; pass < 2; ++pass) {  // the second from the cache
    auto all = listNetworkNamespaces("/proc", "/run/netns", nullptr, &aliases);
    ASSERT_TRUE(all.ok()) << all.error().message;
    std::string childLabel;
    std::string ownLabel;
    for (const auto& h : *all) {
      if (h.ref.inode == st.st_ino) childLabel = h.ref.label();
      if (h.ref.inode == own.st_ino) ownLabel = h.ref.label();
    }
    EXPECT_EQ(childLabel, unit) << "pass " << pass;
    EXPECT_TRUE(ownLabel == "host" || !ownLabel.starts_with("net:[")) << ownLabel;
  }
  EXPECT_EQ(aliases.count(st.st_ino), 1u);
}

}  // namespace
}  // namespace waitwatch
