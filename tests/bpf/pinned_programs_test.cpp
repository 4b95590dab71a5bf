// SPDX-License-Identifier: Apache-2.0
// The daemon's BPF programs pinned for the command line, on a private BPF filesystem: a pinned
// program walks exactly what a loaded one walks; a pin goes with the object that made it (and
// only with it, when another took the name since); pins of other builds are removed; whatever
// is at the name and is not an iterator is refused; the daemon's source pins both programs and
// removes them when it goes; `waitwatch --json` then loads nothing and gives the same answer.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "bpf/pins.hpp"
#include "bpf/socket_fds.hpp"
#include "bpf/tcp_sockets.hpp"
#include "cli/collect.hpp"
#include "netlink/netns.hpp"
#include "netlink/sampler.hpp"
#include "netns_fixture.hpp"
#include "service/collector_source.hpp"
#include "support/pid_namespace.hpp"

namespace waitwatch::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class PinnedProgramsTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto loaded = bpf::TcpSocketIterator::load();
    if (!loaded) GTEST_SKIP() << "the iterator cannot load here: " << loaded.error().message;
    char tmpl[] = "/tmp/waitwatch-bpffs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    ASSERT_EQ(::mount("bpf", mount_.c_str(), "bpf", 0, "mode=0700"), 0) << std::strerror(errno);
    mounted_ = true;
    dir_ = mount_ + "/waitwatch";
    if (const char* before = std::getenv("WAITWATCH_BPF_PIN_DIR")) pinDirBefore_ = before;
    ::setenv("WAITWATCH_BPF_PIN_DIR", dir_.c_str(), 1);
  }

  void TearDown() override {
    // Back to what the test runner set (a directory that is no BPF filesystem), never to the
    // host's default.
    if (pinDirBefore_) {
      ::setenv("WAITWATCH_BPF_PIN_DIR", pinDirBefore_->c_str(), 1);
    } else {
      ::unsetenv("WAITWATCH_BPF_PIN_DIR");
    }
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
    if (!mount_.empty()) ::rmdir(mount_.c_str());
    NetnsTest::TearDown();
  }

  std::vector<std::string> pins() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<SocketRecord> walk(bpf::TcpSocketIterator& it) {
    std::vector<SocketRecord> out;
    auto h = openNamedNetworkNamespace(netns().name());
    EXPECT_TRUE(h.ok()) << h.error().message;
    if (!h) return out;
    auto guard = NetnsGuard::enter(h->fd.get());
    EXPECT_TRUE(guard.ok()) << guard.error().message;
    if (!guard) return out;
    auto started = it.start();
    EXPECT_TRUE(guard->restore().ok());
    EXPECT_TRUE(started.ok()) << started.error().message;
    if (!started) return out;
    auto r = it.read(std::move(*started), true, [&](const SocketRecord& s) { out.push_back(s); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return out;
  }

  // A map pinned at `name` in the pin directory: something at a pin's path that is not ours.
  // A perf event array's type number is an iterator link's (4), which a check of the type alone
  // would take for one.
  void pinAMap(const std::string& name, std::uint32_t type = BPF_MAP_TYPE_ARRAY) {
    ::mkdir(dir_.c_str(), 0700);
    union bpf_attr create {};
    create.map_type = type;
    create.key_size = 4;
    create.value_size = 4;
    create.max_entries = 1;
    const UniqueFd map(
        static_cast<int>(::syscall(SYS_bpf, BPF_MAP_CREATE, &create, sizeof(create))));
    ASSERT_TRUE(map) << std::strerror(errno);
    ASSERT_NO_FATAL_FAILURE(pinFd(map.get(), name));
  }

  void pinFd(int fd, const std::string& name) {
    const std::string path = dir_ + "/" + name;
    union bpf_attr pin {};
    pin.pathname = reinterpret_cast<std::uint64_t>(path.c_str());
    pin.bpf_fd = static_cast<std::uint32_t>(fd);
    ASSERT_EQ(::syscall(SYS_bpf, BPF_OBJ_PIN, &pin, sizeof(pin)), 0) << std::strerror(errno);
  }

  UniqueFd openPin(const std::string& name) {
    const std::string path = dir_ + "/" + name;
    union bpf_attr get {};
    get.pathname = reinterpret_cast<std::uint64_t>(path.c_str());
    return UniqueFd(static_cast<int>(::syscall(SYS_bpf, BPF_OBJ_GET, &get, sizeof(get))));
  }

  std::string mount_;
  bool mounted_ = false;
  std::optional<std::string> pinDirBefore_;
  std::string dir_;
};

std::map<std::uint64_t, SocketRecord> byCookie(const std::vector<SocketRecord>& records) {
  std::map<std::uint64_t, SocketRecord> out;
  for (SocketRecord r : records) {
    r.timerRemainingMs = 0;  // time runs between the two walks
    out.emplace(r.cookie, r);
  }
  return out;
}

TEST_F(PinnedProgramsTest, APinnedWalkReadsWhatALoadedOneReads) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto none = bpf::TcpSocketIterator::reusePinned();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().errnum, ENOENT) << none.error().message;

  auto loaded = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_FALSE(loaded->reused());
  auto path = loaded->pin();
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(fs::path(*path).parent_path().string(), dir_);
  ASSERT_EQ(pins().size(), 1u);
  EXPECT_TRUE(pins()[0].starts_with("tcp_sockets-")) << pins()[0];

  auto reused = bpf::TcpSocketIterator::reusePinned();
  ASSERT_TRUE(reused.ok()) << reused.error().message;
  EXPECT_TRUE(reused->reused());
  const auto fresh = walk(*loaded);
  const auto pinned = walk(*reused);
  ASSERT_GT(fresh.size(), 100u);
  const auto a = byCookie(fresh);
  const auto b = byCookie(pinned);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [cookie, r] : a) {
    const auto it = b.find(cookie);
    ASSERT_NE(it, b.end()) << "cookie " << cookie << " not in the pinned walk";
    EXPECT_EQ(r, it->second) << stateName(r.state) << " cookie " << cookie;
  }

  // The pin goes with the loaded program; a program already opened from it goes on walking.
  { auto gone = std::move(*loaded); }
  EXPECT_TRUE(pins().empty()) << pins().front();
  EXPECT_EQ(byCookie(walk(*reused)).size(), a.size());
  EXPECT_EQ(bpf::TcpSocketIterator::reusePinned().error().errnum, ENOENT);
}

TEST_F(PinnedProgramsTest, TheLastToPinOwnsTheNameAndOtherBuildsGo) {
  ASSERT_NO_FATAL_FAILURE(pinAMap("tcp_sockets-0123456789abcdef"));  // another build's
  ASSERT_NO_FATAL_FAILURE(pinAMap("socket_fds-0123456789abcdef"));   // another program's
  auto first = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto path = first->pin();
  ASSERT_TRUE(path.ok()) << path.error().message;
  const std::string name = fs::path(*path).filename().string();
  EXPECT_EQ(pins(), (std::vector<std::string>{"socket_fds-0123456789abcdef", name}));

  // A second daemon (or one restarted after a kill) takes the name over; the first, going
  // later, leaves that pin alone.
  auto second = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(second->pin().ok());
  { auto gone = std::move(*first); }
  EXPECT_EQ(pins(), (std::vector<std::string>{"socket_fds-0123456789abcdef", name}));
  EXPECT_TRUE(bpf::TcpSocketIterator::reusePinned().ok());
  { auto gone = std::move(*second); }
  EXPECT_EQ(pins(), (std::vector<std::string>{"socket_fds-0123456789abcdef"}));

  // The other way round: the one that owns the name goes first and takes its pin along.
  auto third = bpf::TcpSocketIterator::load();
  auto fourth = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(third.ok() && fourth.ok());
  ASSERT_TRUE(third->pin().ok());
  ASSERT_TRUE(fourth->pin().ok());
  { auto gone = std::move(*fourth); }
  EXPECT_EQ(pins(), (std::vector<std::string>{"socket_fds-0123456789abcdef"}));
  { auto gone = std::move(*third); }
  EXPECT_EQ(pins(), (std::vector<std::string>{"socket_fds-0123456789abcdef"}));
}

TEST_F(PinnedProgramsTest, WhatIsNotAnIteratorAtThePinIsRefused) {
  auto loaded = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto path = loaded->pin();
  ASSERT_TRUE(path.ok()) << path.error().message;
  const std::string name = fs::path(*path).filename().string();
  { auto gone = std::move(*loaded); }
  for (const std::uint32_t type : {BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY}) {
    ASSERT_NO_FATAL_FAILURE(pinAMap(name, type));
    auto reused = bpf::TcpSocketIterator::reusePinned();
    ASSERT_FALSE(reused.ok()) << "map type " << type;
    EXPECT_NE(reused.error().message.find("is not an iterator's link"), std::string::npos)
        << reused.error().message;
    ::unlink((dir_ + "/" + name).c_str());
  }
}

// An iterator of another kind at a program's name (the walk's link where the scan's should be)
// would be read as the wrong records.
TEST_F(PinnedProgramsTest, AnotherIteratorAtTheNameIsRefused) {
  auto scanner = bpf::SocketFdScanner::load();
  if (!scanner) GTEST_SKIP() << "the socket-fd scan cannot load here: " << scanner.error().message;
  auto scanPath = scanner->pin();
  ASSERT_TRUE(scanPath.ok()) << scanPath.error().message;
  const std::string scanName = fs::path(*scanPath).filename().string();
  { auto gone = std::move(*scanner); }
  auto walk = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(walk.ok()) << walk.error().message;
  auto walkPath = walk->pin();
  ASSERT_TRUE(walkPath.ok()) << walkPath.error().message;
  const UniqueFd link = openPin(fs::path(*walkPath).filename().string());
  ASSERT_TRUE(link) << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(pinFd(link.get(), scanName));
  auto reused = bpf::SocketFdScanner::reusePinned();
  ASSERT_FALSE(reused.ok());
  EXPECT_NE(reused.error().message.find("iterates tcp, not task_file"), std::string::npos)
      << reused.error().message;
  EXPECT_TRUE(bpf::TcpSocketIterator::reusePinned().ok());
}

// A pin directory someone else made, or that others may write to, is not used either way.
TEST_F(PinnedProgramsTest, APinDirectoryOthersCouldWriteIsNotUsed) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir_.c_str(), 12345, 12345), 0) << std::strerror(errno);
  auto loaded = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto path = loaded->pin();
  ASSERT_FALSE(path.ok());
  EXPECT_NE(path.error().message.find("belongs to uid 12345"), std::string::npos)
      << path.error().message;
  EXPECT_TRUE(pins().empty());

  ASSERT_EQ(::chown(dir_.c_str(), 0, 0), 0);
  ASSERT_TRUE(loaded->pin().ok());
  ASSERT_TRUE(bpf::TcpSocketIterator::reusePinned().ok());
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  auto reused = bpf::TcpSocketIterator::reusePinned();
  ASSERT_FALSE(reused.ok());
  EXPECT_NE(reused.error().message.find("writable by others than its owner"), std::string::npos)
      << reused.error().message;
}

// A daemon that stops in the middle of a long poll ends without its destructors; it removes its
// pins first, and only those still its own.
TEST_F(PinnedProgramsTest, AnExitWithoutDestructorsRemovesOnlyItsOwnPins) {
  auto loaded = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto walkPath = loaded->pin();
  ASSERT_TRUE(walkPath.ok()) << walkPath.error().message;
  auto scanner = bpf::SocketFdScanner::load();
  if (!scanner) GTEST_SKIP() << "the socket-fd scan cannot load here: " << scanner.error().message;
  ASSERT_TRUE(scanner->pin().ok());
  ASSERT_EQ(pins().size(), 2u);

  // Another daemon, a process of its own, takes the walk's name over.
  int ready[2];
  int hold[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  const pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    ::close(hold[1]);  // so that the test's close ends the read below
    auto mine = bpf::TcpSocketIterator::load();
    const char c = mine && mine->pin() ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    char wait = 0;
    (void)!::read(hold[0], &wait, 1);
    ::_exit(0);  // its pin stays: this test plays only its start
  }
  ::close(ready[1]);
  ::close(hold[0]);
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{other};
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');

  bpf::removePinsOfThisProcess();  // what waitwatchd does before _exit()
  EXPECT_EQ(pins(), (std::vector<std::string>{fs::path(*walkPath).filename().string()}));
  EXPECT_TRUE(bpf::TcpSocketIterator::reusePinned().ok());  // the other daemon's
  ::close(hold[1]);
  ::close(ready[0]);
  // This process's programs going later remove nothing more.
  { auto gone = std::move(*loaded); }
  EXPECT_EQ(pins().size(), 1u);
}

TEST_F(PinnedProgramsTest, NoBpfFilesystemNoPin) {
  char tmpl[] = "/tmp/waitwatch-nobpffs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string plain = std::string(tmpl) + "/waitwatch";
  ::setenv("WAITWATCH_BPF_PIN_DIR", plain.c_str(), 1);
  auto loaded = bpf::TcpSocketIterator::load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto path = loaded->pin();
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().errnum, ENOTSUP);
  EXPECT_NE(path.error().message.find("is not a BPF filesystem"), std::string::npos)
      << path.error().message;
  EXPECT_FALSE(fs::exists(plain));
  ::rmdir(tmpl);
}

// One scan program pinned and used at once by readers in two pid namespaces: each numbers
// processes as its own namespace does. (The program caches the reader's namespace level and
// the last process per scan; a cache shared by every reader would hand one the other's numbers.)
TEST_F(PinnedProgramsTest, ReadersInTwoPidNamespacesShareOneScanProgram) {
  auto loaded = bpf::SocketFdScanner::load();
  if (!loaded) GTEST_SKIP() << "the socket-fd scan cannot load here: " << loaded.error().message;
  ASSERT_TRUE(loaded->pin().ok());
  auto host = bpf::SocketFdScanner::reusePinned();
  ASSERT_TRUE(host.ok()) << host.error().message;
  UniqueFd mine(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  struct stat st {};
  ASSERT_EQ(::fstat(mine.get(), &st), 0);
  std::vector<bpf::SocketFd> fds;
  ASSERT_TRUE(host->scan(fds).ok());  // the host's numbers are in use first

  struct Reply {
    std::int32_t scans = 0;
    std::int32_t records = 0;
    std::int32_t otherPids = 0;  // records with a pid other than 1: the host's numbers
    char error[200] = {};
  };
  // Meanwhile this process scans in its own namespace, through the same program.
  int wrong = 0;
  auto reply = runAsPidOneOfANewPidNamespace<Reply>(
      [] {
        Reply r;
        auto s = bpf::SocketFdScanner::reusePinned();
        if (!s) std::snprintf(r.error, sizeof(r.error), "%s", s.error().message.c_str());
        std::vector<bpf::SocketFd> own;
        for (int i = 0; s && i < 40; ++i) {
          if (auto scanned = s->scan(own); !scanned) {
            std::snprintf(r.error, sizeof(r.error), "%s", scanned.error().message.c_str());
            break;
          }
          ++r.scans;
          for (const auto& f : own) {
            ++r.records;
            if (f.pid != 1) ++r.otherPids;
          }
        }
        return r;
      },
      [&] {
        for (int i = 0; i < 40; ++i) {
          const bool found = host->scan(fds).ok() &&
                             std::any_of(fds.begin(), fds.end(), [&](const bpf::SocketFd& f) {
                               return f.pid == ::getpid() && f.inode == st.st_ino;
                             });
          if (!found) ++wrong;
        }
      });
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  const Reply& r = *reply;
  ASSERT_EQ(r.error[0], '\0') << r.error;
  EXPECT_EQ(r.scans, 40);
  EXPECT_GE(r.records, r.scans);  // pid 1 holds the sockets it inherited
  EXPECT_EQ(r.otherPids, 0) << "of " << r.records << " records";
  EXPECT_EQ(wrong, 0) << "scans in this namespace that missed this process's socket";
}

StateCounts countsOf(const json& j) {
  auto s = statesFromJson(j.at("states"));
  EXPECT_TRUE(s.ok()) << j.dump();
  return s.ok() ? *s : StateCounts{};
}

// The daemon's side (its snapshot source pins both programs, and unpins them when it goes) and
// the command's (it then loads neither, and counts the same).
TEST_F(PinnedProgramsTest, TheCommandReusesTheDaemonsProgramsWhileItRuns) {
  if (!bpf::SocketFdScanner::load()) GTEST_SKIP() << "the socket-fd scan cannot load here";
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto cli = [&] {
    const auto r = runCommand({WAITWATCH_CLI_PATH, "--json", "--netns", netns().name()});
    EXPECT_EQ(r.exitCode, 0) << r.describe();
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j.is_object() ? j : json::object();
  };
  const json alone = cli();
  EXPECT_EQ(alone.value("bpf_programs_reused", json()), json::array());
  EXPECT_EQ(alone.value("sockets_from", ""), "bpf_iter");

  {
    SnapshotSourceFactory factory = collectorSourceFactory();
    auto source = factory(Config{});
    ASSERT_TRUE(source.ok()) << source.error().message;
    const auto notes = (*source)->takeProblems().notes;
    const bool said = std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
      return n.starts_with("BPF programs: pinned for the waitwatch command");
    });
    EXPECT_TRUE(said) << ::testing::PrintToString(notes);
    ASSERT_EQ(pins().size(), 2u);
    EXPECT_TRUE(pins()[0].starts_with("socket_fds-")) << pins()[0];
    EXPECT_TRUE(pins()[1].starts_with("tcp_sockets-")) << pins()[1];

    const json reusing = cli();
    EXPECT_EQ(reusing.value("bpf_programs_reused", json()),
              json::array({"tcp_sockets", "socket_fds"}));
    EXPECT_EQ(reusing.value("owners_from", ""), "bpf");
    EXPECT_EQ(countsOf(reusing), countsOf(alone));
    EXPECT_EQ(countsOf(reusing), farm->expectedStates());
    std::map<int, StateCounts> a, b;
    for (const auto& p : alone.at("processes"))
      a[p.at("pid").get<int>()] = countsOf(p);
    for (const auto& p : reusing.at("processes"))
      b[p.at("pid").get<int>()] = countsOf(p);
    EXPECT_EQ(a, b);

    // In process too.
    cli::LocalCollector collector(
        cli::CollectRequest{.netns = NamespaceSelection::Named, .netnsName = netns().name()},
        cli::Environment{});
    auto c = collector.collect(TimePoint{});
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->reusedPrograms, (std::vector<std::string>{"tcp_sockets", "socket_fds"}));
  }
  EXPECT_TRUE(pins().empty()) << pins().front();
  EXPECT_EQ(cli().value("bpf_programs_reused", json()), json::array());
}

}  // namespace
}  // namespace waitwatch::testing
