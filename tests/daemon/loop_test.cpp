// SPDX-License-Identifier: Apache-2.0
// The poll loop itself, run in a child process with a socket source that takes its time (the
// real collector cannot be made slow on purpose): overrunning polls are counted and never
// stacked, and SIGTERM in the middle of a long poll still ends the daemon within a second.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "service/daemon.hpp"
#include "service/http_server.hpp"

namespace waitwatch {
namespace {
using namespace std::chrono_literals;

class SlowSource final : public SnapshotSource {
 public:
  explicit SlowSource(std::chrono::milliseconds delay) : delay_(delay) {}
  Result<Snapshot> collect(TimePoint, Duration) override {
    std::this_thread::sleep_for(delay_);
    Snapshot s;
    s.namespaces.push_back(NetnsEntry{});
    s.namespaces.back().ref = NetnsRef{1, "test", {}};
    s.namespaces.back().states[TcpState::Established] = 3;
    return s;
  }

 private:
  std::chrono::milliseconds delay_;
};

std::uint16_t freePort() {
  auto fd = bindListener(Endpoint{*IpAddress::parse("127.0.0.1"), 0});
  return fd.ok() ? localEndpoint(fd->get())->port : 0;
}

// Forks a daemon whose every poll takes `delay`, with `env` ("NAME=value") in its environment.
pid_t startDaemon(std::chrono::milliseconds delay, const std::string& pollInterval,
                  std::uint16_t port, const std::vector<std::string>& env = {}) {
  const std::string config = ::testing::TempDir() + "ww-loop-" + std::to_string(port) + ".json";
  std::ofstream(config) << R"({"poll_interval": ")" << pollInterval << R"(", "rules": []})";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::unsetenv("NOTIFY_SOCKET");
    for (const auto& e : env)
      ::putenv(const_cast<char*>(e.c_str()));  // the strings outlive the child's use
    DaemonOptions options;
    options.args.configPath = config;
    options.args.listen = "127.0.0.1:" + std::to_string(port);
    options.sourceFactory = [delay](const Config&) -> Result<std::unique_ptr<SnapshotSource>> {
      return std::unique_ptr<SnapshotSource>(std::make_unique<SlowSource>(delay));
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

// SIGTERM: the daemon exits with status 0 within a second (killed if it does not end).
void expectStopsWithinASecond(pid_t pid) {
  const auto start = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  const auto status = waitExit(pid, 3s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(status, 0);
  if (!status) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
}

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

TEST(PollLoop, OverrunningPollsAreCountedNeverStacked) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  // Polls take 300 ms at a 100 ms interval: back to back, ~3 per second, not 10.
  const pid_t pid = startDaemon(300ms, "100ms", port);
  std::this_thread::sleep_for(1500ms);
  const std::string text = scrape(port);
  const double polls = value(text, "waitwatch_polls_total");
  const double overruns = value(text, "waitwatch_poll_overruns_total");
  EXPECT_GE(polls, 3) << text;
  EXPECT_LE(polls, 6) << text;
  EXPECT_GE(overruns, polls - 1);  // a scrape may fall between the two increments
  ::kill(pid, SIGTERM);
  EXPECT_EQ(waitExit(pid, 2s), 0);
}

TEST(PollLoop, SigtermInsideALongPollEndsWithinASecond) {
  const std::uint16_t port = freePort();
  ASSERT_NE(port, 0);
  const pid_t pid = startDaemon(5s, "1s", port);  // the first poll alone takes 5 s
  std::this_thread::sleep_for(300ms);
  expectStopsWithinASecond(pid);
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

TEST(PollLoop, TheWatchdogHearsNothingOnceNoPollEnds) {
  constexpr std::uint64_t kSecond = 1'000'000;
  const Duration interval = std::chrono::seconds(5);
  EXPECT_TRUE(pollsProgressing(100 * kSecond, 100 * kSecond, interval));
  // Between polls, and a poll that overran: still well up to two intervals and a second.
  EXPECT_TRUE(pollsProgressing(111 * kSecond, 100 * kSecond, interval));
  EXPECT_FALSE(pollsProgressing(111 * kSecond + 1, 100 * kSecond, interval));
  EXPECT_FALSE(pollsProgressing(200 * kSecond, 100 * kSecond, interval));
  // A long interval allows a long quiet time, a short one a short time.
  EXPECT_TRUE(pollsProgressing(200 * kSecond, 100 * kSecond, std::chrono::minutes(1)));
  EXPECT_FALSE(pollsProgressing(102 * kSecond, 100 * kSecond, Duration(100)));
}

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
  std::this_thread::sleep_for(500ms);
  const double first = value(scrape(port), "waitwatch_polls_total");
  std::this_thread::sleep_for(1s);
  const double second = value(scrape(port), "waitwatch_polls_total");
  // 10 polls a second; a loop stuck in a notification would make none.
  EXPECT_GE(first, 3);
  EXPECT_GE(second - first, 7) << first << " then " << second;
  expectStopsWithinASecond(pid);
}

}  // namespace
}  // namespace waitwatch
