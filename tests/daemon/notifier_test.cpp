// SPDX-License-Identifier: Apache-2.0
// The sd_notify mailbox: messages arrive in order on a real datagram socket, a manager that
// never reads costs the callers nothing, and the stop is bounded.
#include "service/notifier.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace waitwatch {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A datagram socket playing the service manager, at a path of its own; NOTIFY_SOCKET names it
// while the object lives.
class Manager {
 public:
  explicit Manager(int receiveBuffer = 0) {
    path_ = ::testing::TempDir() + "ww-notify-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter_++) + ".sock";
    std::filesystem::remove(path_);
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (receiveBuffer > 0) {
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~Manager() {
    ::unsetenv("NOTIFY_SOCKET");
    std::filesystem::remove(path_);
  }
  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // Fills the queue with datagrams of its own until the kernel refuses one; returns how many.
  int fill() {
    UniqueFd sender(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (::connect(sender.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
    int n = 0;
    while (n < 100000 && ::send(sender.get(), "filler", 6, MSG_DONTWAIT) == 6)
      ++n;
    return n;
  }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  static inline int counter_ = 0;
  std::string path_;
  UniqueFd fd_;
  bool bound_ = false;
};

TEST(Notifier, WithoutNotifySocketNothingRuns) {
  ::unsetenv("NOTIFY_SOCKET");
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.problem().empty());
  n.status("x");
  n.stop("STOPPING=1", 100ms);  // returns at once: no thread
}

TEST(Notifier, NotAUnixSocketIsSaid) {
  ::setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
  Notifier n;
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(n.enabled());
  EXPECT_NE(n.problem().find("NOTIFY_SOCKET=vsock:2:1234 is not a unix socket"), std::string::npos)
      << n.problem();
}

TEST(Notifier, MessagesArriveInOrder) {
  Manager manager;
  ASSERT_TRUE(manager.bound());
  Notifier n;
  ASSERT_TRUE(n.enabled());
  n.event("READY=1\nSTATUS=first");
  EXPECT_EQ(manager.receive(2s), "READY=1\nSTATUS=first");
  n.watchdog();
  EXPECT_EQ(manager.receive(2s), "WATCHDOG=1");
  n.status("3 sockets");
  EXPECT_EQ(manager.receive(2s), "STATUS=3 sockets");
  n.stop("STOPPING=1\nSTATUS=stopping", 1s);
  EXPECT_EQ(manager.receive(2s), "STOPPING=1\nSTATUS=stopping");
  n.status("after the stop");  // ignored
  EXPECT_EQ(manager.receive(200ms), std::nullopt);
}

TEST(Notifier, AFullQueueKeepsEventsInOrderAndOnlyTheNewestStatus) {
  Manager manager;
  ASSERT_TRUE(manager.bound());
  const int fillers = manager.fill();
  ASSERT_GT(fillers, 0);
  Notifier n;
  const auto start = Clock::now();
  n.event("READY=1\nSTATUS=a");
  n.status("b");
  n.watchdog();
  n.status("c");
  n.event("RELOADING=1\nSTATUS=r");  // replaces the pending "c"
  for (int i = 0; i < 1000; ++i) {
    n.status("s" + std::to_string(i));
    n.watchdog();
  }
  // The callers never waited for the full queue: nobody reads it until below, so a caller
  // that waited would never have got here; the deadline only bounds a slow machine.
  EXPECT_LT(Clock::now() - start, 10s);
  for (int i = 0; i < fillers; ++i)
    ASSERT_EQ(manager.receive(2s), "filler");
  std::vector<std::string> got;
  while (auto m = manager.receive(500ms))
    got.push_back(*m);
  // The two events in order, one coalesced ping, the newest status.
  const std::vector<std::string> expected = {"READY=1\nSTATUS=a", "RELOADING=1\nSTATUS=r",
                                             "WATCHDOG=1", "STATUS=s999"};
  EXPECT_EQ(got, expected);
}

TEST(Notifier, StopIsBoundedWhenTheManagerNeverReads) {
  Manager manager(1);  // the smallest receive buffer, never read
  ASSERT_TRUE(manager.bound());
  ASSERT_GT(manager.fill(), 0);
  Notifier n;
  for (int i = 0; i < 100; ++i)
    n.status("poll " + std::to_string(i));
  const auto start = Clock::now();
  n.stop("STOPPING=1", 200ms);
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 150ms);  // it did try for the bound
  EXPECT_LT(took, 10s);    // and gave up: the manager never reads
}

TEST(Notifier, AnAbsentManagerCostsNothing) {
  std::string path;
  {
    Manager gone;
    path = gone.path();
  }
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  Notifier n;
  ::unsetenv("NOTIFY_SOCKET");
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i)
    n.status(std::to_string(i));
  n.stop("STOPPING=1", 60s);
  // Each message failed to connect and was dropped: no waiting for the 60 s bound.
  EXPECT_LT(Clock::now() - start, 20s);
}

}  // namespace
}  // namespace waitwatch
