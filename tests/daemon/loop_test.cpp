// The poll loop itself, run in a child process with a socket source that takes its time (the
// real collector cannot be made slow on purpose): overrunning polls are counted and never
// stacked, and SIGTERM in the middle of a long poll still ends the daemon within a second.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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
    s.namespaces.back().ref = NetnsRef{1, "test"};
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

// Forks a daemon whose every poll takes `delay`.
pid_t startDaemon(std::chrono::milliseconds delay, const std::string& pollInterval,
                  std::uint16_t port) {
  const std::string config = ::testing::TempDir() + "ww-loop-" + std::to_string(port) + ".json";
  std::ofstream(config) << R"({"poll_interval": ")" << pollInterval << R"(", "rules": []})";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::unsetenv("NOTIFY_SOCKET");
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
  const auto start = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  const auto status = waitExit(pid, 3s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(status, 0);
  if (!status) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace waitwatch
