// SPDX-License-Identifier: Apache-2.0
// The BPF close recorder against the real kernel: a child process with a name of its own opens
// and closes connections in a private network namespace; every close it made is recorded with
// its pid, start time and comm, and a storm larger than what may wait is counted exactly as lost.
#include "bpf/close_recorder.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace waitwatch::bpf {
namespace {

// In a child process: enters a private network namespace with loopback up and listens on
// 127.0.0.1:`port`; returns the listener and its address (exits the child on failure).
int listenInPrivateNamespace(std::uint16_t port, sockaddr_in& at) {
  if (::unshare(CLONE_NEWNET) != 0) ::_exit(10);
  const int ctl = ::socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(ctl, SIOCGIFFLAGS, &ifr) != 0) ::_exit(11);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(ctl, SIOCSIFFLAGS, &ifr) != 0) ::_exit(12);
  const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  at = sockaddr_in{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || ::listen(ls, 4096) != 0) {
    ::_exit(13);
  }
  return ls;
}

// In a child: a private namespace with loopback up, `closes` connections each closed by the
// client first (the server reads to the end, then closes). Returns the child's pid.
pid_t closeConnections(int closes, const char* name, int startedFd) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_NAME, name, 0, 0, 0);
  sockaddr_in at{};
  const int ls = listenInPrivateNamespace(7000, at);
  // Tell the parent we run (it reads our start time while we are alive).
  const char ok = 1;
  if (::write(startedFd, &ok, 1) != 1) ::_exit(14);
  std::thread server([ls, closes] {
    char buf[64];
    for (int i = 0; i < closes; ++i) {
      const int fd = ::accept(ls, nullptr, nullptr);
      while (::read(fd, buf, sizeof buf) > 0) {
      }
      ::close(fd);
    }
  });
  for (int i = 0; i < closes; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) ::_exit(15);
    ::close(fd);
  }
  server.join();
  ::_exit(0);
}

std::uint64_t startTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    fields >> field;
  return std::stoull(field);
}

// Runs the child to its end; returns its pid and start time.
std::pair<pid_t, std::uint64_t> runChild(int closes, const char* name) {
  int pipeFds[2];
  EXPECT_EQ(::pipe(pipeFds), 0);
  const pid_t pid = closeConnections(closes, name, pipeFds[1]);
  char ok = 0;
  EXPECT_EQ(::read(pipeFds[0], &ok, 1), 1);
  const std::uint64_t ticks = startTicks(pid);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(pipeFds[0]);
  ::close(pipeFds[1]);
  return {pid, ticks};
}

TEST(CloseRecorder, RecordsEveryActiveCloseWithTheProcessThatClosed) {
  auto recorder = CloseRecorder::load(4096);
  if (!recorder)
    GTEST_SKIP() << "the close recorder cannot load here: " << recorder.error().message;
  // No take() before the fork: it starts the reader thread, and a fork of a process with
  // another thread (which may hold the allocator's lock) can hang the child.
  const auto [pid, ticks] = runChild(300, "ww-closer");
  CloseBatch batch;
  recorder->take(batch);
  std::set<std::uint64_t> cookies;
  std::size_t ours = 0;
  std::size_t closers = 0;
  for (const Closer& c : batch.closers)
    closers += c.pid == pid ? 1 : 0;
  EXPECT_EQ(closers, 1u);  // one entry for the process, however many closes
  for (const CloseEvent& e : batch.closes) {
    ASSERT_LT(e.closer, batch.closers.size());
    const Closer& c = batch.closers[e.closer];
    if (c.pid != pid) continue;
    ++ours;
    EXPECT_EQ(std::string(c.comm.data()), "ww-closer");
    EXPECT_EQ(c.startTicks, ticks);
    EXPECT_EQ(c.uid, ::getuid());
    EXPECT_NE(e.cookie, 0u);
    cookies.insert(e.cookie);
  }
  // Each client close once; the server's second closes (CLOSE_WAIT -> LAST_ACK) are not.
  EXPECT_EQ(ours, 300u);
  EXPECT_EQ(cookies.size(), 300u);
  EXPECT_EQ(recorder->lost(), 0u);
}

// A closer in a container's pid namespace is named by its pid as the daemon's /proc numbers it,
// not 0 (a namespace-relative lookup answers only for tasks of the reader's own namespace).
TEST(CloseRecorder, AProcessInAChildPidNamespaceIsNamedByItsPidHere) {
  auto recorder = CloseRecorder::load(4096);
  if (!recorder)
    GTEST_SKIP() << "the close recorder cannot load here: " << recorder.error().message;
  int pidPipe[2];
  ASSERT_EQ(::pipe(pidPipe), 0);
  const pid_t outer = ::fork();
  if (outer == 0) {
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(30);
    int started[2];
    if (::pipe(started) != 0) ::_exit(31);
    // Its first child is pid 1 of the new namespace; fork() tells us its pid out here.
    const pid_t inner = closeConnections(20, "ww-contained", started[1]);
    char ok = 0;
    if (::read(started[0], &ok, 1) != 1) ::_exit(32);
    if (::write(pidPipe[1], &inner, sizeof inner) != sizeof inner) ::_exit(33);
    int status = 0;
    ::waitpid(inner, &status, 0);
    ::_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 34);
  }
  pid_t inner = 0;
  ASSERT_EQ(::read(pidPipe[0], &inner, sizeof inner), static_cast<ssize_t>(sizeof inner));
  int status = 0;
  ::waitpid(outer, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  CloseBatch batch;
  recorder->take(batch);
  std::vector<pid_t> pids;
  for (const CloseEvent& e : batch.closes) {
    const Closer& c = batch.closers.at(e.closer);
    if (std::string(c.comm.data()) == "ww-contained") pids.push_back(c.pid);
  }
  EXPECT_EQ(pids, std::vector<pid_t>(20, inner));
}

// A connection shared across a fork: the parent's close() only drops a reference; the FIN goes
// when the child, the last holder, closes it, and the child is the closer.
TEST(CloseRecorder, ASharedConnectionIsClosedByItsLastHolder) {
  auto recorder = CloseRecorder::load(4096);
  if (!recorder)
    GTEST_SKIP() << "the close recorder cannot load here: " << recorder.error().message;
  int toChild[2];
  ASSERT_EQ(::pipe(toChild), 0);
  const pid_t holder = ::fork();
  if (holder == 0) {
    ::prctl(PR_SET_NAME, "ww-parent", 0, 0, 0);
    sockaddr_in at{};
    const int ls = listenInPrivateNamespace(7001, at);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) ::_exit(14);
    const int served = ::accept(ls, nullptr, nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      ::prctl(PR_SET_NAME, "ww-child", 0, 0, 0);
      char go = 0;
      if (::read(toChild[0], &go, 1) != 1) ::_exit(20);
      ::close(fd);  // the last reference: the FIN, FIN_WAIT1
      ::_exit(0);
    }
    ::close(fd);  // a reference only
    const char go = 1;
    if (::write(toChild[1], &go, 1) != 1) ::_exit(15);
    int status = 0;
    ::waitpid(child, &status, 0);
    char buf[8];
    while (::read(served, buf, sizeof buf) > 0) {
    }
    ::close(served);
    ::_exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 16);
  }
  int status = 0;
  ::waitpid(holder, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  CloseBatch batch;
  recorder->take(batch);
  std::vector<std::string> closers;
  for (const CloseEvent& e : batch.closes) {
    const std::string comm = batch.closers.at(e.closer).comm.data();
    if (comm == "ww-parent" || comm == "ww-child") closers.push_back(comm);
  }
  EXPECT_EQ(closers, std::vector<std::string>{"ww-child"});
}

TEST(CloseRecorder, AStormBeyondWhatMayWaitIsCountedAsLost) {
  // At most 64 closes wait between takes; the ring holds about a thousand (64 KiB). The reader
  // thread starts with the first take, so before it everything beyond the ring is lost in the
  // kernel, and beyond 64 in user space.
  auto recorder = CloseRecorder::load(64);
  if (!recorder)
    GTEST_SKIP() << "the close recorder cannot load here: " << recorder.error().message;
  const auto [pid, ticks] = runChild(3000, "ww-storm");
  (void)ticks;
  CloseBatch batch;
  recorder->take(batch);
  std::size_t ours = 0;
  for (const CloseEvent& e : batch.closes)
    ours += batch.closers.at(e.closer).pid == pid ? 1 : 0;
  const std::vector<CloseEvent>& events = batch.closes;
  EXPECT_EQ(events.size(), 64u);
  // Every close of the host was either taken or counted as lost: none vanished. Most were lost
  // in the kernel (the ring was full): the count comes from the program.
  EXPECT_GE(events.size() + recorder->lost(), 3000u);
  EXPECT_GT(recorder->lost(), 3000u - 64u - 65536u / 56u) << "lost in the kernel not counted";
  EXPECT_GT(ours, 0u);
}

}  // namespace
}  // namespace waitwatch::bpf
