// SPDX-License-Identifier: Apache-2.0
// The BPF socket-fd scan against the real kernel: for known populations (sockfarm holders in a
// private network namespace, with sockets shared across a fork; processes this test forks) the
// scan gives exactly the (pid, fd, inode) sets a readlink walk of /proc/<pid>/fd gives, start
// ticks equal to /proc/<pid>/stat field 22, and pids numbered as the reader's pid namespace
// numbers them. Skips with the reason where the iterator cannot load (no root, no BTF).
#include "bpf/socket_fds.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "netns_fixture.hpp"
#include "proc/proc_text.hpp"
#include "support/pid_namespace.hpp"
#include "sys/file.hpp"

namespace waitwatch::testing {
namespace {

using FdKey = std::tuple<std::int32_t, std::int32_t, std::uint32_t>;  // pid, fd, inode

// The socket fds of `pid` the /proc way: one readlink per fd.
std::set<FdKey> readlinkSockets(std::int32_t pid) {
  std::set<FdKey> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  EXPECT_NE(d, nullptr) << dir << ": " << std::strerror(errno);
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[128];
    const ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof(target));
    if (n <= 0) continue;  // the fd of this very listing, closed meanwhile
    if (auto inode = parseSocketLink(std::string_view(target, static_cast<std::size_t>(n)))) {
      out.emplace(pid, std::stoi(e->d_name), *inode);
    }
  }
  ::closedir(d);
  return out;
}

std::uint64_t statStartTicks(std::int32_t pid) {
  auto text = readFile("/proc/" + std::to_string(pid) + "/stat");
  EXPECT_TRUE(text.ok()) << pid;
  if (!text) return 0;
  auto stat = parseProcStat(*text);
  EXPECT_TRUE(stat.ok()) << *text;
  return stat ? stat->startTime : 0;
}

std::set<FdKey> keysOf(const std::vector<bpf::SocketFd>& fds, const std::set<std::int32_t>& pids) {
  std::set<FdKey> out;
  for (const auto& f : fds)
    if (pids.count(f.pid)) out.emplace(f.pid, f.fd, f.inode);
  return out;
}

// inode -> the pids holding it
std::map<std::uint32_t, std::set<std::int32_t>> holdersOf(const std::set<FdKey>& keys) {
  std::map<std::uint32_t, std::set<std::int32_t>> m;
  for (const auto& [pid, fd, inode] : keys)
    m[inode].insert(pid);
  return m;
}

std::size_t sharedCount(const std::set<FdKey>& keys) {
  std::size_t n = 0;
  for (const auto& [inode, pids] : holdersOf(keys))
    n += pids.size() >= 2 ? 1 : 0;
  return n;
}

// A network namespace with a sockfarm population.
class SocketFdsFarmTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    auto s = bpf::SocketFdScanner::load();
    if (!s) GTEST_SKIP() << "the BPF iterator cannot load here: " << s.error().message;
    scanner_.emplace(std::move(*s));
  }
  std::optional<bpf::SocketFdScanner> scanner_;
};

TEST_F(SocketFdsFarmTest, ScanEqualsAReadlinkWalkOfEveryHolder) {
  constexpr int kShared = 4;
  auto farm = SockFarm::start(
      netns(), {"--holders", "3", "--close-wait", "30", "--established", "20", "--shared",
                std::to_string(kShared), "--fin-wait2", "5", "--listen", "2", "--family", "46"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  std::set<std::int32_t> pids = {farm->pid()};
  for (const auto& h : farm->holders())
    pids.insert(h["pid"].get<std::int32_t>());
  ASSERT_EQ(pids.size(), 5u);  // the coordinator, 3 holders, holder 0's sharer

  // The scan and the walk look at different moments: on a loaded machine the farm's processes
  // may still be settling (a holder closing fds it inherited) between them. Both are taken
  // again until they agree, for a few seconds; a difference that stays is a failure.
  std::vector<bpf::SocketFd> fds;
  std::set<FdKey> walked;
  std::set<FdKey> ours;
  for (int attempt = 0; attempt < 50; ++attempt) {
    fds.clear();
    auto scanned = scanner_->scan(fds);
    ASSERT_TRUE(scanned.ok()) << scanned.error().message;
    walked.clear();
    for (std::int32_t pid : pids)
      walked.merge(readlinkSockets(pid));
    ours = keysOf(fds, pids);
    if (ours == walked) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // 2 x (3 listeners + 30 CLOSE_WAIT + 20 ESTABLISHED + 4 shared + 5 FIN_WAIT2), the shared
  // ones twice, plus the control sockets sockfarm keeps.
  EXPECT_GE(walked.size(), 2u * (3 + 30 + 20 + kShared + 5) + 2 * kShared);
  EXPECT_EQ(ours, walked);
  // A socket shared across the fork: under both pids, in the scan as in /proc.
  EXPECT_GE(sharedCount(ours), static_cast<std::size_t>(2 * kShared));
  EXPECT_EQ(sharedCount(ours), sharedCount(walked));

  // Start ticks as /proc/<pid>/stat field 22 says.
  for (const auto& f : fds) {
    if (pids.count(f.pid)) {
      EXPECT_EQ(f.startTicks, statStartTicks(f.pid)) << "pid " << f.pid;
    }
  }
  // The kernel's order: by pid, then by fd.
  EXPECT_TRUE(std::is_sorted(fds.begin(), fds.end(), [](const auto& a, const auto& b) {
    return std::tie(a.pid, a.fd) < std::tie(b.pid, b.fd);
  }));

  // A second pass from the same loaded program: the holder that exited is gone, the others
  // are as /proc says now (the coordinator closed its channel to the holder).
  const auto gone = farm->holders()[1]["pid"].get<std::int32_t>();
  auto exited = farm->command("exit 1");
  ASSERT_TRUE(exited.ok()) << exited.error().message;
  auto scanned = scanner_->scan(fds);
  ASSERT_TRUE(scanned.ok()) << scanned.error().message;
  pids.erase(gone);
  std::set<FdKey> walkedAgain;
  for (std::int32_t pid : pids)
    walkedAgain.merge(readlinkSockets(pid));
  EXPECT_EQ(keysOf(fds, pids), walkedAgain);
  EXPECT_TRUE(keysOf(fds, {gone}).empty());
}

// Processes this test forks: a socket made before the fork is held by all three.
class SocketFdsForkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!isRoot()) GTEST_SKIP() << "loading BPF needs root (or CAP_BPF and CAP_PERFMON)";
    auto s = bpf::SocketFdScanner::load();
    if (!s) GTEST_SKIP() << "the BPF iterator cannot load here: " << s.error().message;
    scanner_.emplace(std::move(*s));
  }
  std::optional<bpf::SocketFdScanner> scanner_;
};

// Children that each make `own` sockets, report ready, and exit when the pipe closes.
struct Children {
  std::vector<pid_t> pids;
  UniqueFd release;  // closing it lets them exit
  ~Children() {
    release.reset();
    for (pid_t p : pids) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
};

TEST_F(SocketFdsForkTest, SharedAcrossForkAndOwnSockets) {
  UniqueFd shared(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(shared);
  int ready[2];
  int hold[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  UniqueFd readyRead(ready[0]);
  UniqueFd readyWrite(ready[1]);
  UniqueFd holdRead(hold[0]);
  Children children;
  children.release = UniqueFd(hold[1]);
  for (int i = 0; i < 2; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(hold[1]);  // so that the parent's close releases it
      for (int k = 0; k < 2 + i; ++k)
        (void)::socket(AF_INET6, SOCK_STREAM, 0);
      char c = 'r';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(hold[0], &c, 1);
      ::_exit(0);
    }
    children.pids.push_back(pid);
  }
  readyWrite.reset();
  for (int i = 0; i < 2; ++i) {
    char c = 0;
    ASSERT_EQ(::read(readyRead.get(), &c, 1), 1);
  }

  std::vector<bpf::SocketFd> fds;
  auto scanned = scanner_->scan(fds);
  ASSERT_TRUE(scanned.ok()) << scanned.error().message;
  const std::set<std::int32_t> pids = {::getpid(), children.pids[0], children.pids[1]};
  std::set<FdKey> walked;
  for (std::int32_t pid : pids)
    walked.merge(readlinkSockets(pid));
  const std::set<FdKey> ours = keysOf(fds, pids);
  EXPECT_EQ(ours, walked);

  struct stat st {};
  ASSERT_EQ(::fstat(shared.get(), &st), 0);
  const auto holders = holdersOf(ours);
  ASSERT_TRUE(holders.count(static_cast<std::uint32_t>(st.st_ino)));
  EXPECT_EQ(holders.at(static_cast<std::uint32_t>(st.st_ino)), pids);
  // Each child: the shared one and its own (2 and 3).
  std::map<std::int32_t, int> perPid;
  for (const auto& [pid, fd, inode] : ours)
    ++perPid[pid];
  EXPECT_EQ(perPid[children.pids[0]], 1 + 2);
  EXPECT_EQ(perPid[children.pids[1]], 1 + 3);
  for (std::int32_t pid : pids) {
    for (const auto& f : fds)
      if (f.pid == pid) {
        EXPECT_EQ(f.startTicks, statStartTicks(pid)) << "pid " << pid;
      }
  }
}

// In a child pid namespace the scan numbers processes as that namespace does: its first process
// is pid 1 (and, unlike the initial namespace's pid 1, is visited) and nothing outside shows.
TEST_F(SocketFdsForkTest, PidsAreNumberedAsTheReadersPidNamespaceDoes) {
  struct Reply {
    std::int32_t count = 0;
    std::int32_t otherPids = 0;   // records with a pid other than 1
    std::int32_t ownFound = 0;    // the socket pid 1 made, under pid 1
    std::int32_t ticksMatch = 0;  // pid 1's start ticks == its /proc/self/stat field 22
    char error[200] = {};
  };
  auto reply = runAsPidOneOfANewPidNamespace<Reply>([] {
    Reply r;
    UniqueFd own(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct stat st {};
    ::fstat(own.get(), &st);
    std::vector<bpf::SocketFd> fds;
    auto s = bpf::SocketFdScanner::load();
    if (s) {
      if (auto scanned = s->scan(fds); !scanned) s = scanned.error();
    }
    if (!s) {
      std::snprintf(r.error, sizeof(r.error), "%s", s.error().message.c_str());
    }
    // /proc is the parent namespace's mount: "self" still resolves to this process.
    std::string stat;
    std::uint64_t ticks = 0;
    if (readFileAt(AT_FDCWD, "/proc/self/stat", stat))
      if (auto p = parseProcStat(stat)) ticks = p->startTime;
    for (const auto& f : fds) {
      ++r.count;
      if (f.pid != 1) ++r.otherPids;
      if (f.pid == 1 && f.inode == st.st_ino) ++r.ownFound;
      if (f.pid == 1 && f.startTicks == ticks) ++r.ticksMatch;
    }
    return r;
  });
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  const Reply& r = *reply;
  ASSERT_EQ(r.error[0], '\0') << r.error;
  // pid 1 holds its own socket and every socket it inherited from this test process.
  EXPECT_GE(r.count, 1);
  EXPECT_EQ(r.otherPids, 0);
  EXPECT_EQ(r.ownFound, 1);
  EXPECT_EQ(r.ticksMatch, r.count);
}

// Without privilege (uid 65534, no capabilities: what setuid from root leaves) the load fails
// at once with EPERM and says what it needs; nothing is printed (libbpf's messages are kept).
TEST(SocketFdsPrivilege, UnprivilegedLoadSaysWhatItNeeds) {
  if (!bpf::compiledIn()) GTEST_SKIP() << bpf::unavailableReason();
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) GTEST_SKIP() << "no kernel BTF here";
  struct Reply {
    int errnum = 0;
    char message[300] = {};
  };
  int pipeFds[2];
  int errFds[2];
  ASSERT_EQ(::pipe2(pipeFds, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(errFds, O_CLOEXEC), 0);
  UniqueFd replyRead(pipeFds[0]);
  UniqueFd replyWrite(pipeFds[1]);
  UniqueFd stderrRead(errFds[0]);
  UniqueFd stderrWrite(errFds[1]);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(stderrWrite.get(), 2);
    if (::getuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                            ::setresuid(65534, 65534, 65534) != 0)) {
      ::_exit(2);
    }
    Reply r;
    auto s = bpf::SocketFdScanner::load();
    if (!s) {
      r.errnum = s.error().errnum;
      std::snprintf(r.message, sizeof(r.message), "%s", s.error().message.c_str());
    }
    (void)!::write(replyWrite.get(), &r, sizeof(r));
    ::_exit(0);
  }
  replyWrite.reset();
  stderrWrite.reset();
  Reply r;
  const ssize_t n = ::read(replyRead.get(), &r, sizeof(r));
  char err[256];
  const ssize_t errBytes = ::read(stderrRead.get(), err, sizeof(err));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(r)));
  EXPECT_EQ(r.errnum, EPERM) << r.message;
  EXPECT_NE(std::string(r.message).find("needs CAP_BPF and CAP_PERFMON, or root"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(errBytes, 0) << std::string(err,
                                        static_cast<std::size_t>(std::max<ssize_t>(errBytes, 0)));
}

TEST(SocketFdsBuild, UnavailableSaysWhy) {
  if (bpf::compiledIn()) {
    EXPECT_TRUE(bpf::unavailableReason().empty());
    return;
  }
  EXPECT_FALSE(bpf::unavailableReason().empty());
  auto s = bpf::scanSocketFds();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, bpf::unavailableReason());
}

}  // namespace
}  // namespace waitwatch::testing
