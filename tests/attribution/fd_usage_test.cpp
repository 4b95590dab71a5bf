// SPDX-License-Identifier: Apache-2.0
// FdUsageReader against real processes: a child with a known number of open fds and a known
// soft limit, read through the real /proc, and through a tree whose fd/ reports no size, as
// kernels before 6.2 do (/proc/<pid>/fdinfo, whose size is 0, stands in for fd/).
#include "attribution/fd_usage.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "proc/proc_text.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

// A child holding `extra` more fds than it inherits (dups of stdin), at soft limit `limit`; it
// reports its exact fd count (counted without opening any) through a pipe, then waits.
class Holder {
 public:
  Holder(int extra, rlim_t limit) {
    int report[2];
    if (::pipe(report) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(report[0]);
      rlimit l{};
      ::getrlimit(RLIMIT_NOFILE, &l);
      l.rlim_cur = limit;
      if (::setrlimit(RLIMIT_NOFILE, &l) != 0) ::_exit(1);
      for (int i = 0; i < extra; ++i) {
        if (::dup(0) < 0) ::_exit(1);
      }
      int open = 0;
      for (int fd = 0; fd < static_cast<int>(limit); ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0) ++open;
      }
      if (::write(report[1], &open, sizeof open) != sizeof open) ::_exit(1);
      ::pause();
      ::_exit(0);
    }
    ::close(report[1]);
    if (::read(report[0], &open_, sizeof open_) != sizeof open_) open_ = -1;
    ::close(report[0]);
  }
  ~Holder() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int open() const { return open_; }
  [[nodiscard]] std::uint64_t startTime() const {
    std::string text;
    if (!readFileAt(AT_FDCWD, "/proc/" + std::to_string(pid_) + "/stat", text)) return 0;
    auto st = parseProcStat(text);
    return st ? st->startTime : 0;
  }

 private:
  pid_t pid_ = -1;
  int open_ = -1;  // the child's own count, the one the reader must find
};

ProcessEntry entry(const Holder& h, std::uint64_t closeWait = 3) {
  ProcessEntry p;
  p.info.key = ProcessKey{h.pid(), h.startTime()};
  p.states[TcpState::CloseWait] = closeWait;
  return p;
}

TEST(FdUsage, ReadsOpenFdsAndTheSoftLimitOfRealProcesses) {
  Holder a(37, 300);
  Holder b(5, 1000);
  ASSERT_GT(a.open(), 37);
  ASSERT_GT(b.open(), 5);
  Snapshot s;
  s.processes = {entry(a), entry(b), entry(a), entry(b, 0)};  // a in two namespaces; b without
  FdUsageReader reader;
  reader.read(s);
  EXPECT_EQ(s.processes[0].openFds, static_cast<std::uint64_t>(a.open()));
  EXPECT_EQ(s.processes[0].maxFds, 300u);
  EXPECT_EQ(s.processes[1].openFds, static_cast<std::uint64_t>(b.open()));
  EXPECT_EQ(s.processes[1].maxFds, 1000u);
  EXPECT_EQ(s.processes[2].openFds, s.processes[0].openFds);  // the same process, read once
  EXPECT_EQ(s.processes[2].maxFds, 300u);
  EXPECT_EQ(s.processes[3].openFds, 0u);  // no CLOSE_WAIT socket: not read
  EXPECT_EQ(reader.listed(), 0u);         // Linux 6.2+: the size of fd/ is the count
}

// A reused pid is another process: nothing is read for the one the snapshot names.
TEST(FdUsage, AnotherStartTimeOrAGoneProcessReadsNothing) {
  Holder a(3, 300);
  Snapshot s;
  s.processes = {entry(a)};
  s.processes[0].info.key.startTime += 1;
  ProcessEntry gone;
  gone.info.key = ProcessKey{0x3ffffff, 1};
  gone.states[TcpState::CloseWait] = 1;
  s.processes.push_back(gone);
  FdUsageReader reader;
  reader.read(s);
  EXPECT_EQ(s.processes[0].openFds, 0u);
  EXPECT_EQ(s.processes[0].maxFds, 0u);
  EXPECT_EQ(s.processes[1].openFds, 0u);
}

// Where the size of fd/ is 0 (kernels before 6.2), its entries are counted; an unreadable or
// malformed limits file leaves the limit unknown and the count.
TEST(FdUsage, ListsFdWhereItsSizeIsNotTheCount) {
  Holder a(20, 300);
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("waitwatch-fd-usage-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  const std::filesystem::path dir = root / std::to_string(a.pid());
  std::filesystem::create_directories(dir);
  const std::string real = "/proc/" + std::to_string(a.pid());
  std::string stat;  // copied by reading: a /proc file reports size 0
  ASSERT_TRUE(readFileAt(AT_FDCWD, real + "/stat", stat));
  std::ofstream(dir / "stat") << stat;
  std::filesystem::create_directory_symlink(real + "/fdinfo", dir / "fd");
  struct stat fdinfo {};
  ASSERT_EQ(::stat((dir / "fd").c_str(), &fdinfo), 0);
  ASSERT_EQ(fdinfo.st_size, 0);
  std::ofstream(dir / "limits") << "Max open files            lots                 4096 files\n";

  Snapshot s;
  s.processes = {entry(a)};
  FdUsageReader reader(root.string());
  reader.read(s);
  EXPECT_EQ(reader.listed(), 1u);
  EXPECT_EQ(s.processes[0].openFds, static_cast<std::uint64_t>(a.open()));
  EXPECT_EQ(s.processes[0].maxFds, 0u);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace waitwatch
