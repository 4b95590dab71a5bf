// SPDX-License-Identifier: Apache-2.0
// The whole `waitwatch` command against a private, named network namespace holding known
// sockets: exact counts, and the same counts as `ss -tan` run inside that namespace (root).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/run.hpp"
#include "core/tcp_state.hpp"
#include "support/tcp_wait.hpp"
#include "sys/file.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::cli {
namespace {

constexpr int kEstablishedPairs = 5;
constexpr int kCloseWait = 30;
constexpr int kTimeWait = 20;

// A network namespace made on a helper thread (the test's threads never move), bind-mounted
// as a temporary /run/netns stand-in under a unique name; torn down even when a test fails.
class NamedPrivateNetns {
 public:
  NamedPrivateNetns() {
    char tmpl[] = "/tmp/waitwatch-cli-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    runDir_ = tmpl;
    name_ = "ww-cli-" + std::to_string(::getpid());
    std::thread t([this] { build(); });
    t.join();
  }
  ~NamedPrivateNetns() {
    if (mounted_) ::umount2(mountPoint().c_str(), MNT_DETACH);
    std::error_code ec;
    if (!runDir_.empty()) std::filesystem::remove_all(runDir_, ec);
  }
  NamedPrivateNetns(const NamedPrivateNetns&) = delete;
  NamedPrivateNetns& operator=(const NamedPrivateNetns&) = delete;

  [[nodiscard]] bool ready() const { return mounted_ && ok_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string runDir() const { return runDir_.string(); }
  [[nodiscard]] std::string mountPoint() const { return (runDir_ / name_).string(); }
  [[nodiscard]] std::uint64_t inode() const { return inode_; }

 private:
  static UniqueFd tcp() { return UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

  void build() {
    if (::unshare(CLONE_NEWNET) != 0) return;
    auto ns = openAt(AT_FDCWD, "/proc/thread-self/ns/net");
    if (!ns) return;
    struct stat st {};
    ::fstat(ns->get(), &st);
    inode_ = st.st_ino;
    std::ofstream(mountPoint()).close();
    const std::string src = "/proc/self/fd/" + std::to_string(ns->get());
    if (::mount(src.c_str(), mountPoint().c_str(), nullptr, MS_BIND, nullptr) != 0) return;
    mounted_ = true;

    UniqueFd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    if (::ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) != 0) return;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) != 0) return;

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(8080);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    UniqueFd listener = tcp();
    if (::bind(listener.get(), sa, sizeof addr) != 0 || ::listen(listener.get(), 128) != 0) return;
    auto pair = [&](UniqueFd& client, UniqueFd& server) {
      client = tcp();
      if (::connect(client.get(), sa, sizeof addr) != 0) return false;
      server = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      return server.valid();
    };
    for (int i = 0; i < kEstablishedPairs; ++i) {
      UniqueFd c, s;
      if (!pair(c, s)) return;
      keep_.push_back(std::move(c));
      keep_.push_back(std::move(s));
    }
    for (int i = 0; i < kCloseWait; ++i) {  // client half-closes, server never reads or closes
      UniqueFd c, s;
      if (!pair(c, s)) return;
      const int one = 1;
      ::setsockopt(s.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      if (::shutdown(c.get(), SHUT_WR) != 0) return;
      keep_.push_back(std::move(c));
      keep_.push_back(std::move(s));
    }
    for (int i = 0; i < kTimeWait; ++i) {  // client closes first: TIME_WAIT on its side
      UniqueFd c, s;
      if (!pair(c, s)) return;
      c.reset();
      // The server has the client's FIN before it closes: the client ends in TIME_WAIT.
      if (!testing::waitForTcpState(s.get(), testing::kTcpCloseWait)) return;
      s.reset();
    }
    keep_.push_back(std::move(listener));
    // Every half-closed client reached FIN_WAIT2 (the counts the tests expect).
    for (std::size_t i = 2 * kEstablishedPairs; i < keep_.size() - 1; i += 2) {
      if (!testing::waitForTcpState(keep_[i].get(), testing::kTcpFinWait2)) return;
    }
    ok_ = true;
  }

  std::filesystem::path runDir_;
  std::string name_;
  std::uint64_t inode_ = 0;
  bool mounted_ = false;
  bool ok_ = false;
  std::vector<UniqueFd> keep_;
};

struct Output {
  int status = 0;
  std::string out;
  std::string err;
};

Output runCli(const std::vector<std::string_view>& args, const std::string& runNetns) {
  std::ostringstream o;
  std::ostringstream e;
  Output r;
  r.status = run(args, o, e, Environment{.procRoot = "/proc", .runNetns = runNetns});
  r.out = o.str();
  r.err = e.str();
  return r;
}

// Counts by JSON state name from `ss -tan` run inside the namespace.
nlohmann::json ssCounts(const std::string& nsPath) {
  nlohmann::json counts = nlohmann::json::object();
  for (TcpState s : kAllTcpStates)
    counts[std::string(stateName(s))] = 0;
  const std::string cmd = "nsenter --net=" + nsPath + " ss -tanH";
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  if (!p) return counts;
  std::array<char, 512> line{};
  while (std::fgets(line.data(), line.size(), p.get()) != nullptr) {
    std::istringstream in(line.data());
    std::string state;
    in >> state;
    if (auto s = parseTcpState(state)) {
      counts[std::string(stateName(*s))] = counts[std::string(stateName(*s))].get<int>() + 1;
    }
  }
  return counts;
}

class CliNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates a network namespace)";
  }
};

TEST_F(CliNetnsTest, JsonCountsAreExactAndMatchSs) {
  NamedPrivateNetns ns;
  ASSERT_TRUE(ns.ready());
  const Output r = runCli({"--netns", ns.name(), "--json"}, ns.runDir());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto j = nlohmann::json::parse(r.out);
  const auto& states = j.at("states");
  EXPECT_EQ(states["LISTEN"], 1);
  EXPECT_EQ(states["ESTABLISHED"], 2 * kEstablishedPairs);
  EXPECT_EQ(states["CLOSE_WAIT"], kCloseWait);
  EXPECT_EQ(states["FIN_WAIT2"], kCloseWait);
  EXPECT_EQ(states["TIME_WAIT"], kTimeWait);
  EXPECT_EQ(states["SYN_SENT"], 0);
  EXPECT_EQ(states, ssCounts(ns.mountPoint()));

  ASSERT_EQ(j.at("namespaces").size(), 1u);
  EXPECT_EQ(j["namespaces"][0]["name"], ns.name());
  EXPECT_EQ(j["namespaces"][0]["inode"], ns.inode());
  EXPECT_EQ(j["namespaces"][0]["states"], states);
}

TEST_F(CliNetnsTest, AllNamespacesIncludeTheNamedOneAndTotalsAddUp) {
  NamedPrivateNetns ns;
  ASSERT_TRUE(ns.ready());
  const Output r = runCli({"--netns=all", "--json"}, ns.runDir());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  bool found = false;
  nlohmann::json sum = nlohmann::json::object();
  for (const auto& n : j.at("namespaces")) {
    if (n["inode"] == ns.inode()) {
      found = true;
      EXPECT_EQ(n["name"], ns.name());
      EXPECT_EQ(n["states"]["CLOSE_WAIT"], kCloseWait);
      EXPECT_EQ(n["states"]["TIME_WAIT"], kTimeWait);
    }
    for (const auto& [k, v] : n["states"].items())
      sum[k] = sum.value(k, 0) + v.get<int>();
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(sum, j["states"]);

  // The table: one row for this test process, which holds every socket of the namespace.
  const Output table = runCli({"--netns", ns.name()}, ns.runDir());
  ASSERT_EQ(table.status, 0) << table.err;
  std::istringstream rows(table.out);
  std::string header;
  std::string row;
  std::getline(rows, header);
  std::getline(rows, row);
  std::istringstream cells(row);
  std::vector<std::string> c;
  for (std::string cell; cells >> cell;)
    c.push_back(cell);
  ASSERT_GE(c.size(), 7u) << table.out;
  EXPECT_EQ(c[0], std::to_string(::getpid())) << table.out;
  // ESTAB, CLOSE-WAIT, KIND (none of them read since the peer closed), FDS (this process's
  // open fds of its limit), FIN-WAIT, LISTEN, PORTS.
  const std::vector<std::string> tail(c.end() - 7, c.end());
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  EXPECT_EQ(tail[3].substr(tail[3].find('/')), "/" + std::to_string(nofile.rlim_cur)) << table.out;
  const auto open = std::stoul(tail[3].substr(0, tail[3].find('/')));
  EXPECT_GE(open, static_cast<unsigned long>(2 * kEstablishedPairs + kCloseWait)) << table.out;
  EXPECT_EQ(tail,
            (std::vector<std::string>{std::to_string(2 * kEstablishedPairs),
                                      std::to_string(kCloseWait), std::to_string(kCloseWait) + "a",
                                      tail[3], std::to_string(kCloseWait), "1", "8080r"}))
      << table.out;
  EXPECT_NE(table.out.find("TOTAL  "), std::string::npos) << table.out;
}

// A real process in a real cgroup named as Docker names its containers' scopes, and Docker's
// config.v2.json for that container in a fixture root: the process shows by the container's
// name, in the table and the JSON.
TEST(CliContainers, AProcessInADockerScopeShowsByItsContainersName) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (creates a cgroup)";
  // The unified hierarchy: /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on cgroup v2.
  std::string unified;
  for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    if (::access((std::string(dir) + "/cgroup.subtree_control").c_str(), F_OK) == 0) {
      unified = dir;
      break;
    }
  }
  if (unified.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  const std::string id = "5eed" + std::string(60, 'e');
  const std::filesystem::path scope = std::filesystem::path(unified) /
                                      ("waitwatch-test-" + std::to_string(::getpid()) + ".slice") /
                                      ("docker-" + id + ".scope");
  std::error_code ec;
  ASSERT_TRUE(std::filesystem::create_directories(scope, ec)) << scope << ": " << ec.message();
  char rootTemplate[] = "/tmp/waitwatch-container-root-XXXXXX";
  ASSERT_NE(::mkdtemp(rootTemplate), nullptr);
  const std::filesystem::path root = rootTemplate;
  std::filesystem::create_directories(root / "var/lib/docker/containers" / id);
  std::ofstream(root / "var/lib/docker/containers" / id / "config.v2.json")
      << R"({"ID":")" << id
      << R"(","Name":"/shop-web-1","Config":{"Labels":{"com.docker.compose.project":"shop",)"
         R"("com.docker.compose.service":"web"}}})";

  // A child holding a listening socket, moved into the scope; it waits for its pipe to close.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  int pipeFds[2];
  ASSERT_EQ(::pipe2(pipeFds, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipeFds[1]);
    char b;
    while (::read(pipeFds[0], &b, 1) > 0) {
    }
    ::_exit(0);
  }
  ::close(pipeFds[0]);
  UniqueFd release(pipeFds[1]);
  struct Cleanup {
    pid_t child;
    std::filesystem::path scope;
    std::filesystem::path root;
    ~Cleanup() {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      std::error_code ec;
      std::filesystem::remove(scope, ec);
      std::filesystem::remove(scope.parent_path(), ec);
      std::filesystem::remove_all(root, ec);
    }
  } cleanup{child, scope, root};
  std::ofstream(scope / "cgroup.procs") << child;
  listener.reset();  // the child holds the only copy

  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string_view> args = {"--json", "--port", port};
  ASSERT_EQ(run(args, out, err, Environment{.procRoot = "/proc", .containerRoot = root.string()}),
            0)
      << err.str();
  const auto j = nlohmann::json::parse(out.str());
  bool found = false;
  for (const auto& p : j["processes"]) {
    if (p["pid"] != child) continue;
    found = true;
    EXPECT_EQ(p["container_runtime"], "docker") << p.dump();
    EXPECT_EQ(p["container_id"], id) << p.dump();
    EXPECT_EQ(p["container"], "docker:5eedeeeeeeee") << p.dump();
    EXPECT_EQ(p["container_name"], "shop-web-1") << p.dump();
    EXPECT_EQ(p["pod_name"], "") << p.dump();
  }
  EXPECT_TRUE(found) << out.str();
  std::ostringstream table;
  const std::vector<std::string_view> tableArgs = {"--port", port};
  ASSERT_EQ(
      run(tableArgs, table, err, Environment{.procRoot = "/proc", .containerRoot = root.string()}),
      0);
  EXPECT_NE(table.str().find(" docker:shop-web-1 "), std::string::npos) << table.str();
}

}  // namespace
}  // namespace waitwatch::cli
