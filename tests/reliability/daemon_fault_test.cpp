// SPDX-License-Identifier: Apache-2.0
// Faults around the real waitwatchd, as root, each in a private network namespace (and a private
// mount namespace where the journal socket is faked): journald absent or stalled, a listen
// address the daemon may not or cannot bind, the daemon without the privilege to read other
// users' /proc/<pid>/fd, and HTTP clients that trickle, send a huge header or garbage.
//
// Least privilege: DaemonPrivilegeTest (capabilities after start-up, every thread).
//
// Covered elsewhere, not repeated here (tests/daemon/daemon_integration_test.cpp):
// ReloadGoodThenBrokenConfig (a broken file at SIGHUP: old config keeps running, the journal
// entry, waitwatch_config_last_reload_successful 0) and ListenAddressInUseFailsCleanly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "core/kernel_counters.hpp"
#include "daemon_harness.hpp"
#include "netns_fixture.hpp"
#include "sys/file.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr std::uint16_t kPort = 9929;

// The value of the first sample line starting with `series` ("name{labels}"), or -1.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series);
  if (at == std::string::npos) return -1;
  const auto eol = text.find('\n', at + 1);
  const std::string line = text.substr(at + 1, eol - at - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// A socket created inside `ns` (setns on a helper thread: the network namespace of a socket
// is fixed when it is created; the fd then works from any thread).
std::vector<UniqueFd> socketsIn(const NetworkNamespace& ns, int type, std::size_t count) {
  std::vector<UniqueFd> out;
  std::thread([&] {
    UniqueFd nsFd(::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsFd || ::setns(nsFd.get(), CLONE_NEWNET) != 0) return;
    for (std::size_t i = 0; i < count; ++i)
      out.emplace_back(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  }).join();
  return out;
}
UniqueFd socketIn(const NetworkNamespace& ns, int type) {
  auto v = socketsIn(ns, type, 1);
  return v.empty() ? UniqueFd() : std::move(v.front());
}

sockaddr_in loopback(const char* address, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, address, &a.sin_addr);
  return a;
}

struct Reply {
  int status = 0;
  std::string body;
  std::chrono::milliseconds took{0};
};

// GET `path` from 127.0.0.1 inside `ns`, with a deadline.
Reply get(const NetworkNamespace& ns, const std::string& path, std::chrono::milliseconds timeout,
          std::uint16_t port = kPort) {
  Reply r;
  const auto start = std::chrono::steady_clock::now();
  UniqueFd fd = socketIn(ns, SOCK_STREAM);
  const sockaddr_in to = loopback("127.0.0.1", port);
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) return r;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return r;
  std::string data;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        start + timeout - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  if (data.rfind("HTTP/1.1 ", 0) == 0 && data.size() > 12) r.status = std::stoi(data.substr(9, 3));
  const auto split = data.find("\r\n\r\n");
  if (split != std::string::npos) r.body = data.substr(split + 4);
  return r;
}

// How the journal socket looks to the daemon.
enum class Journal {
  Absent,   // /run/systemd is an empty tmpfs: no socket at all
  Stalled,  // a datagram socket that nobody reads is bound at the journal's path
};

// How the service manager's notification socket behaves.
enum class Manager {
  Reads,      // as systemd does
  NeverReads  // stalled: the smallest receive buffer, never read, and a watchdog to ping
};

// The daemon in the test namespace and a private mount namespace (see the wrapper), optionally
// as an unprivileged user (with the ambient capabilities `runAsCaps`, e.g. "sys_ptrace,kill");
// sd_notify messages arrive on a socket of the test.
class Daemon {
 public:
  Daemon(const NetworkNamespace& ns, const std::string& config, Journal journal,
         const std::vector<std::string>& extraArgs = {}, const std::string& runAs = "",
         const std::string& runAsCaps = "", Manager manager = Manager::Reads)
      : ns_(ns), dir_(scratchDir("reliability")) {
    ::chmod(dir_.c_str(), 0755);
    std::ofstream(dir_ / "waitwatch.json") << config;
    std::ofstream(dir_ / "wrapper.sh") << R"(set -e
D="$1"; MODE="$2"; shift 2
mkdir -p /run/systemd
mount -t tmpfs tmpfs /run/systemd
if [ "$MODE" = stalled ]; then
  mkdir -p /run/systemd/journal
  : > /run/systemd/journal/socket
  mount --bind "$D/stalled.sock" /run/systemd/journal/socket
fi
exec "$@"
)";
    notify_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (manager == Manager::NeverReads) {
      const int one = 1;
      ::setsockopt(notify_.get(), SOL_SOCKET, SO_RCVBUF, &one, sizeof one);
    }
    bindUnix(notify_.get(), dir_ / "notify.sock");
    // Read sd_notify messages as they come, as a service manager does. (One that never reads
    // must not block the daemon either: StalledServiceManagerBlocksNeitherPollsNorTheStop.)
    if (manager == Manager::Reads) {
      reader_ = std::thread([this] {
        char buf[4096];
        while (!stopReading_) {
          pollfd p{notify_.get(), POLLIN, 0};
          if (::poll(&p, 1, 50) <= 0) continue;
          for (ssize_t n; (n = ::recv(notify_.get(), buf, sizeof buf, 0)) > 0;) {
            std::lock_guard lock(notesMutex_);
            notes_.emplace_back(buf, static_cast<std::size_t>(n));
          }
        }
      });
    }
    if (journal == Journal::Stalled) {
      // The smallest receive buffer the kernel allows, never read: journald hung for good.
      stalled_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      const int one = 1;
      ::setsockopt(stalled_.get(), SOL_SOCKET, SO_RCVBUF, &one, sizeof one);
      bindUnix(stalled_.get(), dir_ / "stalled.sock");
    }
    std::vector<std::string> argv = {"nsenter",
                                     "--net=/run/netns/" + ns.name(),
                                     "unshare",
                                     "-m",
                                     "--propagation",
                                     "private",
                                     "sh",
                                     (dir_ / "wrapper.sh").string(),
                                     dir_.string(),
                                     journal == Journal::Stalled ? "stalled" : "absent"};
    if (!runAs.empty()) {
      argv.emplace_back("setpriv");
      argv.emplace_back("--clear-groups");
      if (runAsCaps.empty()) {
        argv.emplace_back("--inh-caps=-all");
      } else {
        std::string plus;  // "+a,+b"
        for (std::size_t at = 0; at < runAsCaps.size();) {
          const auto comma = std::min(runAsCaps.find(',', at), runAsCaps.size());
          plus += (plus.empty() ? "+" : ",+") + runAsCaps.substr(at, comma - at);
          at = comma + 1;
        }
        argv.push_back("--inh-caps=" + plus);
        argv.push_back("--ambient-caps=" + plus);
      }
      argv.push_back("--reuid=" + runAs);
      argv.push_back("--regid=" + runAs);
      argv.emplace_back("--");
    }
    argv.push_back(waitwatchdPath());
    argv.push_back("--config");
    argv.push_back((dir_ / "waitwatch.json").string());
    bool listen = false;
    for (std::size_t i = 0; i < extraArgs.size(); ++i) {
      listen = listen || extraArgs[i].rfind("--listen", 0) == 0;
      if (extraArgs[i] != "--listen") continue;
      if (i + 1 < extraArgs.size()) {
        const auto colon = extraArgs[i + 1].rfind(':');
        port_ = static_cast<std::uint16_t>(std::stoi(extraArgs[i + 1].substr(colon + 1)));
      }
    }
    if (!listen) {
      argv.emplace_back("--listen");
      argv.push_back("127.0.0.1:" + std::to_string(kPort));
    }
    argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
    std::vector<std::string> env = {"NOTIFY_SOCKET=" + (dir_ / "notify.sock").string()};
    if (manager == Manager::NeverReads) env.emplace_back("WATCHDOG_USEC=400000");
    auto child = Child::spawn(argv, env, dir_ / "waitwatchd");
    if (child.ok()) child_.emplace(std::move(*child));
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    child_.reset();  // SIGKILL if still running
    stopReading_ = true;
    if (reader_.joinable()) reader_.join();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Child& process() { return *child_; }
  [[nodiscard]] bool started() const { return child_.has_value(); }

  std::vector<std::string> notifications() {
    std::lock_guard lock(notesMutex_);
    return notes_;
  }
  bool waitReady(std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
          for (const auto& n : notifications())
            if (n.find("READY=1") != std::string::npos) return true;
          return false;
        },
        timeout);
  }
  Reply get(const std::string& path, std::chrono::milliseconds timeout = 2000ms) {
    return testing::get(ns_, path, timeout, port_);
  }
  [[nodiscard]] fs::path configPath() const { return dir_ / "waitwatch.json"; }

 private:
  static void bindUnix(int fd, const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
    ::chmod(path.c_str(), 0666);  // an unprivileged daemon must reach it too
  }

  const NetworkNamespace& ns_;
  fs::path dir_;
  std::uint16_t port_ = kPort;
  UniqueFd notify_;
  UniqueFd stalled_;
  std::mutex notesMutex_;
  std::vector<std::string> notes_;
  std::atomic<bool> stopReading_{false};
  std::thread reader_;
  std::optional<Child> child_;
};

std::string leakConfig(const std::string& rules) {
  return R"({"poll_interval": "200ms", "alerts": {"reminder_interval": "1h"}, "rules": [)" + rules +
         "]}";
}

std::string closeWaitRule(const std::string& name, int minSockets) {
  return R"({"name": ")" + name + R"(", "type": "close_wait", "min_sockets": )" +
         std::to_string(minSockets) + R"(, "min_age": "0s", "for": "0s", "clear_for": "0s"})";
}

// Polls go on while /metrics is answered, each scrape within `limit`. (Polls are 200 ms apart,
// but the first ones walk every process on the host: on a machine where other jobs hold
// hundreds of thousands of sockets they take seconds, so progress is waited for, not timed.)
// Scrapes are answered (within `timeout`: a scrape stuck behind a blocked daemon is not) and
// polls go on. How fast a scrape is, is the benchmark's to measure, not a test's.
void expectPollsAndQuickScrapes(Daemon& d, std::chrono::milliseconds timeout) {
  const Reply first = d.get("/metrics", timeout);
  ASSERT_EQ(first.status, 200);
  const double polls = sample(first.body, "waitwatch_polls_total");
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(200ms);
    const Reply r = d.get("/metrics", timeout);
    EXPECT_EQ(r.status, 200) << "no answer within " << timeout.count() << " ms";
  }
  double now = polls;
  EXPECT_TRUE(eventually(
      [&] {
        now = sample(d.get("/metrics").body, "waitwatch_polls_total");
        return now >= polls + 4;
      },
      30s))
      << "polls stopped at " << now;
}

void expectQuickCleanStop(Daemon& d) {
  const auto start = std::chrono::steady_clock::now();
  d.process().signal(SIGTERM);
  const auto status = d.process().wait(3s);
  if (!status) {
    // Where it hangs, for the failure message.
    const CommandResult bt = runCommand(
        {"gdb", "-p", std::to_string(d.process().pid()), "-batch", "-ex", "thread apply all bt 12"},
        30s);
    FAIL() << "still running 3 s after SIGTERM\n" << bt.out.substr(0, 8000);
  }
  EXPECT_EQ(*status, 0) << d.process().stderrText();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

class DaemonFaultTest : public NetnsTest {};

TEST_F(DaemonFaultTest, JournalAbsentPollingAndMetricsGoOnDropsAreCounted) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "12"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  Daemon d(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent);
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(15s)) << d.process().stderrText();
  expectPollsAndQuickScrapes(d, 3000ms);
  const std::string metrics = d.get("/metrics").body;
  // The "started" entry and the firing alert could not be sent.
  EXPECT_GE(sample(metrics, R"(waitwatch_journal_entries_dropped_total{reason="send_failed"})"), 2);
  EXPECT_EQ(sample(metrics, "waitwatch_journal_entries_written_total"), 0);
  EXPECT_NE(metrics.find("waitwatch_alert_firing{"), std::string::npos);
  // Run by hand (stderr is no journal), the alert still reaches the operator.
  EXPECT_NE(d.process().stderrText().find("FIRING"), std::string::npos) << d.process().stderrText();
  expectQuickCleanStop(d);
}

TEST_F(DaemonFaultTest, JournalStalledNothingBlocksDropsAreCounted) {
  // 600 leaking processes and two rules: 1,200 alerts at the first poll, more than the
  // journal queue (1,024) holds while the writer is stuck on a socket nobody reads.
  auto farm = SockFarm::start(netns(), {"--close-wait", "600", "--holders", "600"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  Daemon d(netns(), leakConfig(closeWaitRule("cw-a", 1) + "," + closeWaitRule("cw-b", 1)),
           Journal::Stalled);
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(20s)) << d.process().stderrText();
  expectPollsAndQuickScrapes(d, 3000ms);
  const std::string metrics = d.get("/metrics").body;
  const double dropped =
      sample(metrics, R"(waitwatch_journal_entries_dropped_total{reason="queue_full"})");
  EXPECT_GE(dropped, 1200 + 1 - 1024 - 16) << "1,201 entries, a 1,024-entry queue";
  EXPECT_LE(sample(metrics, "waitwatch_journal_entries_written_total"), 16);
  const Reply alerts = d.get("/api/v1/alerts", 3000ms);
  ASSERT_EQ(alerts.status, 200);
  // One per holder and rule. A scrape's own connection can sit in CLOSE_WAIT in the daemon or
  // its client when a poll runs (more often on a loaded machine): those alerts are not the
  // farm's and are not counted here.
  std::size_t farmAlerts = 0;
  const auto all = nlohmann::json::parse(alerts.body).at("alerts");
  for (const auto& a : all)
    farmAlerts += a["group"]["comm"] == "sockfarm" ? 1 : 0;
  EXPECT_EQ(farmAlerts, 1200u) << all.dump().substr(0, 2000);
  // The writer is stuck in a send that never returns; stopping must not wait for it.
  expectQuickCleanStop(d);
}

// A service manager that never reads its notification socket: the queue fills after a few
// messages (net.unix.max_dgram_qlen), where a blocking sd_notify() would hold the poll loop and
// the stop. Polls keep their interval, scrapes are answered, SIGTERM ends it within a second.
TEST_F(DaemonFaultTest, StalledServiceManagerBlocksNeitherPollsNorTheStop) {
  Daemon d(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent, {}, "", "",
           Manager::NeverReads);
  ASSERT_TRUE(d.started());
  double first = -1;
  ASSERT_TRUE(eventually(
      [&] {
        first = sample(d.get("/metrics").body, "waitwatch_polls_total");
        return first >= 3;  // READY=1, STATUS= lines and pings have filled the queue by now
      },
      20s))
      << d.process().stderrText();
  // Polls go on: a loop stuck in a notification would make none more. Waited for, not timed
  // (under ASan on 2 busy cores a poll took longer than its 200 ms interval).
  double second = first;
  EXPECT_TRUE(eventually(
      [&] {
        second = sample(d.get("/metrics").body, "waitwatch_polls_total");
        return second - first >= 7;
      },
      30s))
      << first << " then " << second;
  const auto start = std::chrono::steady_clock::now();
  expectQuickCleanStop(d);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(DaemonFaultTest, ListenAddressNotPermittedOrNotAvailableFailsCleanly) {
  struct Case {
    const char* listen;
    const char* runAs;
    const char* error;
  };
  const Case cases[] = {
      // Ports below net.ipv4.ip_unprivileged_port_start (1024) need CAP_NET_BIND_SERVICE.
      {"127.0.0.1:80", "65534", "waitwatchd: cannot listen on 127.0.0.1:80: Permission denied\n"},
      // An address no interface of the namespace has.
      {"10.9.8.7:9929", "",
       "waitwatchd: cannot listen on 10.9.8.7:9929: Cannot assign requested address\n"},
  };
  for (const Case& c : cases) {
    Daemon d(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent, {"--listen", c.listen},
             c.runAs);
    ASSERT_TRUE(d.started());
    const auto status = d.process().wait(10s);
    ASSERT_TRUE(status.has_value()) << c.listen << ": still running";
    EXPECT_EQ(*status, 1) << c.listen;
    EXPECT_EQ(d.process().stderrText(), c.error);
    // Nothing half-started: no readiness, no status line, no poll.
    EXPECT_TRUE(d.notifications().empty()) << d.notifications().front();
  }
}

// The daemon as nobody (uid 65534): the holders of one sockfarm run as uid 1234 (their
// /proc/<pid>/fd is closed to it), those of another as nobody itself (readable).
TEST_F(DaemonFaultTest, UnprivilegedDaemonSaysOnceWhatItCannotSeeAndCountsStayExact) {
  auto hidden = SockFarm::start(netns(), {"--uid", "1234", "--holders", "2", "--close-wait", "20",
                                          "--established", "10", "--listen-port", "8080"});
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  auto visible = SockFarm::start(
      netns(), {"--uid", "65534", "--holders", "1", "--close-wait", "7", "--listen-port", "9090"});
  ASSERT_TRUE(visible.ok()) << visible.error().message;

  Daemon d(netns(), leakConfig(closeWaitRule("cw", 5)), Journal::Absent, {}, "65534");
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(15s)) << d.process().stderrText();
  std::this_thread::sleep_for(500ms);  // a few polls, with no HTTP client around yet

  const Reply snap = d.get("/api/v1/snapshot");
  ASSERT_EQ(snap.status, 200);
  const auto j = nlohmann::json::parse(snap.body);
  auto totals = statesFromJson(j.at("states"));
  ASSERT_TRUE(totals.ok());
  // Counts come from the dump: exact whatever the privilege.
  EXPECT_EQ((*totals)[TcpState::CloseWait], 27u);
  EXPECT_EQ((*totals)[TcpState::Established], 10u);
  EXPECT_EQ((*totals)[TcpState::Listen], 3u);  // two sockfarms and the daemon's own listener
  // Attribution covers what nobody may see: its own sockfarm holder and itself, nothing else.
  const int visiblePid = visible->holders()[0].at("pid").get<int>();
  bool sawVisible = false;
  for (const auto& p : j.at("processes")) {
    const int pid = p.at("pid").get<int>();
    auto states = statesFromJson(p.at("states"));
    ASSERT_TRUE(states.ok());
    if (pid == visiblePid) {
      sawVisible = true;
      EXPECT_EQ((*states)[TcpState::CloseWait], 7u);
      EXPECT_EQ((*states)[TcpState::Listen], 1u);
    } else {
      EXPECT_EQ(pid, d.process().pid()) << "only the daemon itself besides: " << p.dump();
      EXPECT_EQ(p.at("comm"), "waitwatchd");
    }
  }
  EXPECT_TRUE(sawVisible);

  std::this_thread::sleep_for(600ms);  // the HTTP exchange above has left the polls
  const std::string metrics = d.get("/metrics").body;
  // 20 CLOSE_WAIT + 10 ESTABLISHED + 1 LISTEN of uid 1234.
  EXPECT_EQ(sample(metrics, R"(waitwatch_unattributed_sockets{reason="no_permission"})"), 31);
  const std::string log = d.process().stderrText();
  EXPECT_EQ(occurrences(log, "could not be attributed"), 1u) << log;
  expectQuickCleanStop(d);
}

// The soft RLIMIT_NOFILE to at least `n` (within the hard limit).
void raiseOpenFileLimit(rlim_t n) {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = std::max<rlim_t>(nofile.rlim_cur, std::min<rlim_t>(nofile.rlim_max, n));
  ::setrlimit(RLIMIT_NOFILE, &nofile);
}

// Slow-loris from one address (more connections than the daemon's whole connection limit,
// each trickling a header byte), a huge header and a garbage request line: scrapes from
// another address are still answered at once.
TEST_F(DaemonFaultTest, SlowAndMalformedClientsDoNotStallScrapes) {
  raiseOpenFileLimit(4096);  // hundreds of client sockets

  Daemon d(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent);
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(15s)) << d.process().stderrText();

  constexpr int kSlow = 600;  // the daemon serves at most 512 connections in all
  const sockaddr_in server = loopback("127.0.0.1", kPort);
  const sockaddr_in attacker = loopback("127.0.0.2", 0);
  std::vector<UniqueFd> slow = socketsIn(netns(), SOCK_STREAM | SOCK_NONBLOCK, kSlow);
  ASSERT_EQ(slow.size(), static_cast<std::size_t>(kSlow));
  for (auto& fd : slow) {
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&attacker), sizeof attacker), 0);
    ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server);
  }
  auto trickle = [&](const std::string& bytes) {
    for (auto& fd : slow)
      ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  };
  std::this_thread::sleep_for(100ms);
  trickle("GET /metrics HTTP/1.1\r\nHost: x\r\n");

  auto raw = [&](const std::string& bytes) {
    UniqueFd fd = socketIn(netns(), SOCK_STREAM);
    const sockaddr_in from = loopback("127.0.0.3", 0);
    ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&from), sizeof from);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server) == 0) {
      // As much as the socket buffers take: the daemon stops reading a header past its limit.
      ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    return fd;  // left open: the daemon must cope with it half-read
  };
  UniqueFd huge =
      raw("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n");
  UniqueFd garbage =
      raw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage", 20) + "\r\n\r\n");

  std::vector<long> tookMs;
  for (int round = 0; round < 4; ++round) {
    trickle("X-a: b\r\n");  // every slow client stays active, so no idle timeout frees it
    for (int i = 0; i < 5; ++i) {
      const Reply r = d.get("/metrics", 3000ms);
      EXPECT_EQ(r.status, 200) << "round " << round;
      tookMs.push_back(static_cast<long>(r.took.count()));
      std::this_thread::sleep_for(100ms);
    }
  }
  std::sort(tookMs.begin(), tookMs.end());
  // Every scrape was answered within its 3 s (above). The burst of 600 connects fitted the daemon's
  // accept queue: no SYN was dropped, so no client (a scrape among them) had to wait for a
  // retransmission. With a backlog of 128 the namespace counted 236-330 overflows here, and one
  // scrape in a few runs took 1 s.
  const auto netstat = readFile("/proc/" + std::to_string(d.process().pid()) + "/net/netstat");
  ASSERT_TRUE(netstat.ok());
  KernelTcpCounters counters;
  ASSERT_TRUE(parseNetstatCounters(*netstat, counters).ok());
  EXPECT_EQ(counters.listenOverflows, 0u) << "TcpExt ListenOverflows in the daemon's namespace";
  std::cout << "[ info ] 20 scrapes beside " << kSlow << " slow-loris connections: median "
            << tookMs[tookMs.size() / 2] << " ms, max " << tookMs.back() << " ms\n";
  // (The daemon's memory under this load is measured by tests/reliability/load.sh slow, beside
  // its figures in docs/reliability.md, not bounded in a test.)
  expectQuickCleanStop(d);
}

// Slow-loris from several addresses: each one under the per-address cap, together more than
// the 512 connections the daemon serves. Every byte resets libmicrohttpd's idle timeout, so
// only the request deadline (HttpServerOptions::requestDeadlineSeconds, 5 s) frees the slots:
// once it has passed, scrapes from elsewhere are answered although the slow clients keep
// trickling, and the slow connections have been closed by the daemon.
TEST_F(DaemonFaultTest, SlowLorisFromManyAddressesIsCutAtTheRequestDeadline) {
  raiseOpenFileLimit(4096);  // hundreds of client sockets

  Daemon d(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent);
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(15s)) << d.process().stderrText();

  constexpr int kPerAddress = 150;  // under the per-address cap (256); 4 x 150 > 512
  const sockaddr_in server = loopback("127.0.0.1", kPort);
  std::vector<UniqueFd> slow;
  for (const char* from : {"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"}) {
    const sockaddr_in attacker = loopback(from, 0);
    for (auto& fd : socketsIn(netns(), SOCK_STREAM | SOCK_NONBLOCK, kPerAddress)) {
      ASSERT_TRUE(fd.valid());
      ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&attacker), sizeof attacker), 0);
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&server), sizeof server);
      slow.push_back(std::move(fd));
    }
  }
  auto trickle = [&](const std::string& bytes) {
    for (auto& fd : slow)
      ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  };
  std::this_thread::sleep_for(200ms);
  trickle("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  const auto start = std::chrono::steady_clock::now();
  // While the slots are held, a scrape may wait (that is the attack); keep every slow client
  // active meanwhile, a header line a second, for 7 s: past the 5 s deadline.
  while (std::chrono::steady_clock::now() - start < 7s) {
    std::this_thread::sleep_for(1s);
    trickle("X-a: b\r\n");
  }
  std::vector<long> tookMs;
  for (int i = 0; i < 10; ++i) {
    trickle("X-a: b\r\n");
    const Reply r = d.get("/metrics", 3000ms);
    EXPECT_EQ(r.status, 200) << "scrape " << i << " after the deadline";
    tookMs.push_back(static_cast<long>(r.took.count()));
    std::this_thread::sleep_for(200ms);
  }
  // The daemon cut them. Without a deadline it keeps its 512 for as long as they trickle and
  // the rest wait in the kernel's accept queue or retry their SYNs: next to none reads EOF.
  // With it, the first batch is cut at 5 s; the connections accepted later (from the accept
  // queue, or after a SYN retry 7, 15, 31 s in) are cut 5 s after that, so how many are cut
  // within the window depends on the retries (363-512 measured, also under load).
  int closedByDaemon = 0;
  std::vector<bool> closed(slow.size(), false);
  const auto giveUp = std::chrono::steady_clock::now() + 15s;
  while (closedByDaemon < 250 && std::chrono::steady_clock::now() < giveUp) {
    for (std::size_t i = 0; i < slow.size(); ++i) {
      if (closed[i]) continue;
      char byte = 0;
      const ssize_t n = ::recv(slow[i].get(), &byte, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed[i] = true;
        ++closedByDaemon;
      }
    }
    trickle("X-a: b\r\n");
    std::this_thread::sleep_for(500ms);
  }
  const auto closedAfter =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
  EXPECT_GE(closedByDaemon, 250) << "of " << slow.size() << " slow connections";
  std::sort(tookMs.begin(), tookMs.end());
  std::cout << "[ info ] after the deadline, 10 scrapes beside " << slow.size()
            << " slow-loris connections from 4 addresses: median " << tookMs[tookMs.size() / 2]
            << " ms, max " << tookMs.back() << " ms; " << closedByDaemon
            << " slow connections closed by the daemon within " << closedAfter.count() << " s\n";
  expectQuickCleanStop(d);
}

// Least privilege after start-up (packaging/README.md, "What the daemon drops after start-up"):
// /proc/<pid>/status of every thread of the real daemon once it is ready.
struct TaskCapabilities {
  std::uint64_t inh = 0, prm = 0, eff = 0, bnd = 0, amb = 0;
  std::string noNewPrivs;
  bool operator==(const TaskCapabilities&) const = default;
};
std::ostream& operator<<(std::ostream& out, const TaskCapabilities& c) {
  return out << std::hex << "CapInh " << c.inh << " CapPrm " << c.prm << " CapEff " << c.eff
             << " CapBnd " << c.bnd << " CapAmb " << c.amb << std::dec << " NoNewPrivs "
             << c.noNewPrivs;
}
TaskCapabilities capabilitiesOf(const fs::path& status) {
  TaskCapabilities c;
  std::ifstream in(status);
  std::string line;
  auto hex = [&](const char* name, std::uint64_t& out) {
    if (line.rfind(name, 0) == 0) out = std::stoull(line.substr(std::strlen(name)), nullptr, 16);
  };
  while (std::getline(in, line)) {
    hex("CapInh:", c.inh);
    hex("CapPrm:", c.prm);
    hex("CapEff:", c.eff);
    hex("CapBnd:", c.bnd);
    hex("CapAmb:", c.amb);
    if (line.rfind("NoNewPrivs:", 0) == 0) c.noNewPrivs = line.substr(line.find_last_of(" \t") + 1);
  }
  return c;
}
// Every thread of `pid`; fails the test when one differs from `expected`. Returns the count.
std::size_t expectEveryThread(pid_t pid, const TaskCapabilities& expected) {
  std::size_t threads = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    ++threads;
    EXPECT_EQ(capabilitiesOf(task.path() / "status"), expected) << task.path();
  }
  return threads;
}

constexpr std::uint64_t kDacReadSearch = 1ULL << 2, kSysPtrace = 1ULL << 19, kSysAdmin = 1ULL << 21;

class DaemonPrivilegeTest : public NetnsTest {};

TEST_F(DaemonPrivilegeTest, RootByHandKeepsOnlyWhatTheConfigurationNeeds) {
  if ((capabilitiesOf("/proc/self/status").eff & (1ULL << 8)) == 0) {
    GTEST_SKIP() << "needs root with CAP_SETPCAP";
  }
  const std::uint64_t pair = kDacReadSearch | kSysPtrace;
  Daemon host(netns(), leakConfig(closeWaitRule("cw", 10)), Journal::Absent);
  ASSERT_TRUE(host.started());
  ASSERT_TRUE(host.waitReady(15s)) << host.process().stderrText();
  // Several threads: the poll loop, signals, notifications, the journal writer, HTTP.
  EXPECT_GE(expectEveryThread(host.process().pid(), {0, pair, pair, pair, 0, "1"}), 4u);
  EXPECT_NE(host.process().stderrText().find(
                "capabilities: kept cap_dac_read_search,cap_sys_ptrace; dropped all "),
            std::string::npos)
      << host.process().stderrText();

  // CAP_SYS_ADMIN is gone: a reload to all namespaces is refused, the old configuration runs on.
  std::ofstream(host.configPath()) << R"({"poll_interval": "200ms", "namespaces": "all"})";
  host.process().signal(SIGHUP);
  EXPECT_TRUE(eventually(
      [&] {
        return host.process().stderrText().find(
                   "rejected, still running on the previous one: \"namespaces\": \"all\" needs "
                   "cap_sys_admin: needs a restart: capability dropped at start") !=
               std::string::npos;
      },
      5s))
      << host.process().stderrText();
  EXPECT_EQ(sample(host.get("/metrics").body, "waitwatch_config_last_reload_successful"), 0);
  expectPollsAndQuickScrapes(host, 1000ms);
  expectQuickCleanStop(host);

  // Configured for all namespaces from the start, it keeps CAP_SYS_ADMIN too.
  Daemon all(netns(), R"({"poll_interval": "200ms", "namespaces": "all"})", Journal::Absent);
  ASSERT_TRUE(all.started());
  ASSERT_TRUE(all.waitReady(30s)) << all.process().stderrText();
  const std::uint64_t three = pair | kSysAdmin;
  expectEveryThread(all.process().pid(), {0, three, three, three, 0, "1"});
  expectQuickCleanStop(all);
}

// Started as nobody with the two capabilities and CAP_NET_BIND_SERVICE for port 80: the port is
// bound, the extra capability is gone, attribution of another user's sockets still works.
TEST_F(DaemonPrivilegeTest, UnprivilegedUserLosesTheExtraCapabilityAndStillAttributes) {
  auto other = SockFarm::start(
      netns(), {"--uid", "1234", "--holders", "1", "--close-wait", "6", "--listen-port", "8080"});
  ASSERT_TRUE(other.ok()) << other.error().message;
  Daemon d(netns(), leakConfig(closeWaitRule("cw", 5)), Journal::Absent,
           {"--listen", "127.0.0.1:80"}, "65534", "dac_read_search,sys_ptrace,net_bind_service");
  ASSERT_TRUE(d.started());
  ASSERT_TRUE(d.waitReady(15s)) << d.process().stderrText();
  const std::uint64_t pair = kDacReadSearch | kSysPtrace;
  // Without CAP_SETPCAP the bounding set stays what setpriv left (the test's own).
  const std::uint64_t bounding = capabilitiesOf("/proc/self/status").bnd;
  expectEveryThread(d.process().pid(), {0, pair, pair, bounding, 0, "1"});
  EXPECT_NE(d.process().stderrText().find("capabilities: kept cap_dac_read_search,cap_sys_ptrace; "
                                          "dropped cap_net_bind_service;"),
            std::string::npos)
      << d.process().stderrText();

  const int holder = other->holders()[0].at("pid").get<int>();
  bool attributed = false;
  EXPECT_TRUE(eventually(
      [&] {
        const Reply snap = d.get("/api/v1/snapshot");
        if (snap.status != 200) return false;
        const auto j = nlohmann::json::parse(snap.body);
        for (const auto& p : j.at("processes")) {
          auto states = statesFromJson(p.at("states"));
          if (p.at("pid").get<int>() == holder && states.ok()) {
            attributed = (*states)[TcpState::CloseWait] == 6;
          }
        }
        return attributed;
      },
      10s));
  EXPECT_TRUE(attributed) << "uid 1234's holder (pid " << holder << ") is not attributed";
  EXPECT_LE(
      sample(d.get("/metrics").body, R"(waitwatch_unattributed_sockets{reason="no_permission"})"),
      0);
  expectQuickCleanStop(d);
}

}  // namespace
}  // namespace waitwatch::testing
