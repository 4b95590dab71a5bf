// SPDX-License-Identifier: Apache-2.0
// The poll loop itself, run in a child process with a socket source that takes its time (the
// real collector cannot be made slow on purpose): overrunning polls are counted and never
// stacked, and SIGTERM in the middle of a long poll still ends the daemon within a second.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "service/daemon.hpp"
#include "service/http_server.hpp"

namespace waitwatch {
namespace {
using namespace std::chrono_literals;

// Polls numbered [from, to) (the first is 1) fail as a broken dump would.
struct FailPolls {
  int from = 0;
  int to = 0;
};

class SlowSource final : public SnapshotSource {
 public:
  explicit SlowSource(std::chrono::milliseconds delay, FailPolls fail = {})
      : delay_(delay), fail_(fail) {}
  Result<Snapshot> collect(TimePoint, Duration) override {
    std::this_thread::sleep_for(delay_);
    ++polls_;
    if (polls_ >= fail_.from && polls_ < fail_.to) {
      return Error{EIO, "sock_diag dump: Input/output error (injected)"};
    }
    Snapshot s;
    s.namespaces.push_back(NetnsEntry{});
    s.namespaces.back().ref = NetnsRef{1, "test", {}};
    s.namespaces.back().states[TcpState::Established] = 3;
    return s;
  }

 private:
  std::chrono::milliseconds delay_;
  FailPolls fail_;
  int polls_ = 0;
};

std::uint16_t freePort() {
  auto fd = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
  return fd.ok() ? localEndpoint(fd->get())->port : 0;
}

// Forks a daemon whose every poll takes `delay`, with `env` ("NAME=value") in its environment,
// the polls in `fail` failing, and its stderr in `stderrPath` when given (with
// JOURNAL_STREAM naming that file when `stderrIsJournal`, as systemd sets it).
pid_t startDaemon(std::chrono::milliseconds delay, const std::string& pollInterval,
                  std::uint16_t port, const std::vector<std::string>& env = {}, FailPolls fail = {},
                  const std::string& stderrPath = "", bool stderrIsJournal = false) {
  const std::string config = ::testing::TempDir() + "ww-loop-" + std::to_string(port) + ".json";
  std::ofstream(config) << R"({"poll_interval": ")" << pollInterval << R"(", "rules": []})";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("JOURNAL_STREAM");
    for (const auto& e : env)
      ::putenv(const_cast<char*>(e.c_str()));  // the strings outlive the child's use
    if (!stderrPath.empty()) {
      const int fd = ::open(stderrPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0 || ::dup2(fd, 2) < 0) ::_exit(99);
      struct stat st {};
      ::fstat(2, &st);
      if (stderrIsJournal) {
        const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
        ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
      }
    }
    DaemonOptions options;
    options.args.configPath = config;
    options.args.listen = "127.0.0.1:" + std::to_string(port);
    options.sourceFactory = [delay,
                             fail](const Config&) -> Result<std::unique_ptr<SnapshotSource>> {
      return std::unique_ptr<SnapshotSource>(std::make_unique<SlowSource>(delay, fail));
    };
    ::_exit(runDaemon(options));
  }
  return pid;
}

std::optional<int> waitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(5ms);
  }
  return std::nullopt;
}

// SIGTERM: the daemon exits with status 0 without waiting for the poll in progress (the
// daemon's own deadline is 0.8 s; the polls these tests make take 5 s, so ending within 4 s
// can only mean it did not wait; killed if it does not end).
void expectStopsWithoutWaitingForThePoll(pid_t pid) {
  const auto start = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  const auto status = waitExit(pid, 6s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(status, 0);
  if (!status) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
}

// Waits up to `timeout` for the daemon's waitwatch_polls_total to reach `target`; the last
// value read.
double waitForPolls(std::uint16_t port, double target, std::chrono::milliseconds timeout);

std::string scrape(std::uint16_t port) {
  FILE* p = ::popen(
      ("curl -s --max-time 3 http://127.0.0.1:" + std::to_string(port) + "/metrics").c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && std::fgets(buf, sizeof buf, p))
    out += buf;
  if (p) ::pclose(p);
  return out;
}

double value(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

double waitForPolls(std::uint16_t port, double target, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  double polls = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    polls = value(scrape(port), "waitwatch_polls_total");
    if (polls >= target) break;
    std::this_thread::sleep_for(50ms);
  }
  return polls;
}

TEST(PollLoop, OverrunningPollsAreCountedNeverStacked) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  // Polls take 300 ms at a 100 ms interval: back to back, never stacked. Counted, not timed:
  // every poll past the first overran, and no more polls ran than fit back to back.
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = startDaemon(300ms, "100ms", port);
  ASSERT_GE(waitForPolls(port, 4, 30s), 4);
  const std::string text = scrape(port);
  const double elapsedMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double polls = value(text, "waitwatch_polls_total");
  const double overruns = value(text, "waitwatch_poll_overruns_total");
  EXPECT_LE(polls, elapsedMs / 300 + 1) << text;  // stacked polls would be ~3x as many
  EXPECT_GE(overruns, polls - 2) << text;         // a scrape may fall between the increments
  ::kill(pid, SIGTERM);
  EXPECT_EQ(waitExit(pid, 2s), 0);
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t countOf(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// Polls 2-4 fail: each is counted in waitwatch_poll_errors_total{reason="collect"}, the error is
// logged once (not once per poll), the recovery once, and polling goes on.
TEST(PollLoop, FailedPollsAreCountedLoggedOnceAndRecover) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  const std::string err = ::testing::TempDir() + "ww-loop-fail-" + std::to_string(port) + ".err";
  const pid_t pid = startDaemon(0ms, "100ms", port, {}, FailPolls{2, 5}, err);
  ASSERT_GE(waitForPolls(port, 4, 30s), 4);  // successful polls only: 1, then 5, 6, 7
  const std::string text = scrape(port);
  EXPECT_NE(text.find("waitwatch_poll_errors_total{reason=\"collect\"} 3\n"), std::string::npos)
      << text;
  ::kill(pid, SIGTERM);
  EXPECT_EQ(waitExit(pid, 6s), 0);
  const std::string log = readText(err);
  EXPECT_EQ(countOf(log, "waitwatchd: poll failed: sock_diag dump: Input/output error"), 1u) << log;
  EXPECT_EQ(countOf(log, "waitwatchd: polls succeed again"), 1u) << log;
}

// Under systemd stderr is the journal (JOURNAL_STREAM names it): every line carries its syslog
// priority as "<N>" instead of the program name.
TEST(PollLoop, UnderSystemdEveryLineCarriesItsPriority) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  const std::string err = ::testing::TempDir() + "ww-loop-journal-" + std::to_string(port) + ".err";
  const pid_t pid = startDaemon(0ms, "100ms", port, {}, FailPolls{2, 3}, err, true);
  ASSERT_GE(waitForPolls(port, 3, 30s), 3);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(waitExit(pid, 6s), 0);
  const std::string log = readText(err);
  EXPECT_EQ(log.find("waitwatchd: "), std::string::npos) << log;
  EXPECT_NE(log.find("<6>running on "), std::string::npos) << log;
  EXPECT_NE(log.find("<3>poll failed: sock_diag dump"), std::string::npos) << log;
  EXPECT_NE(log.find("<6>stopped"), std::string::npos) << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    EXPECT_TRUE(line.size() > 3 && line[0] == '<' && line[2] == '>') << line;
}

TEST(PollLoop, SigtermInsideALongPollEndsWithinASecond) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  const pid_t pid = startDaemon(5s, "1s", port);  // the first poll alone takes 5 s
  // /metrics answers once the start-up is done; the timer is armed right after and fires at
  // once, so the first poll is running a moment later (however slow the machine is).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (scrape(port).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(200ms);
  expectStopsWithoutWaitingForThePoll(pid);
}

// A datagram socket where the test plays the service manager (NOTIFY_SOCKET names it).
struct NotifySocket {
  explicit NotifySocket(int receiveBuffer = 0) {
    path = ::testing::TempDir() + "ww-loop-notify-" + std::to_string(::getpid()) + "-" +
           std::to_string(receiveBuffer) + ".sock";
    std::filesystem::remove(path);
    fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (receiveBuffer > 0) {
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() { std::filesystem::remove(path); }
  // Every datagram that arrives within `window`.
  std::vector<std::string> readFor(std::chrono::milliseconds window) {
    std::vector<std::string> out;
    const auto end = std::chrono::steady_clock::now() + window;
    for (auto now = std::chrono::steady_clock::now(); now < end;
         now = std::chrono::steady_clock::now()) {
      pollfd p{fd.get(), POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
      if (::poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) out.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
  std::string path;
  UniqueFd fd;
  bool bound = false;
};

TEST(PollLoop, ReadyWatchdogAndStoppingReachTheManager) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  NotifySocket manager;
  ASSERT_TRUE(manager.bound);
  // A 200 ms watchdog: the loop pings every 50 ms; polls are 10 s apart.
  const pid_t pid =
      startDaemon(0ms, "10s", port, {"NOTIFY_SOCKET=" + manager.path, "WATCHDOG_USEC=200000"});
  const auto notes = manager.readFor(1500ms);
  ::kill(pid, SIGTERM);
  const auto last = manager.readFor(500ms);
  EXPECT_EQ(waitExit(pid, 2s), 0);
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes.front(),
            "READY=1\nSTATUS=3 sockets, 0 processes with CLOSE_WAIT, 0 alerts firing");
  const auto pings = std::count(notes.begin(), notes.end(), "WATCHDOG=1");
  EXPECT_GE(pings, 8) << "1.5 s of a 200 ms watchdog";
  EXPECT_LE(pings, 40);
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.back(), "STOPPING=1\nSTATUS=stopping");
}

// A manager that never reads: its queue fills after a few messages (net.unix.max_dgram_qlen),
// where a blocking sd_notify() would stop the loop and the stop.
TEST(PollLoop, AManagerThatNeverReadsBlocksNeitherPollsNorTheStop) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  NotifySocket manager(1);  // the smallest receive buffer
  ASSERT_TRUE(manager.bound);
  const pid_t pid =
      startDaemon(0ms, "100ms", port, {"NOTIFY_SOCKET=" + manager.path, "WATCHDOG_USEC=100000"});
  // 10 polls a second; a loop stuck in a notification would make none after the queue
  // filled (a few messages). Waited for, with a generous deadline.
  const double first = waitForPolls(port, 3, 30s);
  EXPECT_GE(first, 3);
  const double second = waitForPolls(port, first + 20, 30s);
  EXPECT_GE(second - first, 20) << first << " then " << second;
  expectStopsWithoutWaitingForThePoll(pid);
}

}  // namespace
}  // namespace waitwatch
