// SPDX-License-Identifier: Apache-2.0
// Faults under the collector (common/attribution), in-process, against real sockets in private
// namespaces: holders that exit between the dump and the /proc walk, holders that exit while
// polls run back to back, a pid reused by a new process, network namespaces deleted while
// every namespace is polled. In each: every poll completes, counts are exact for what exists,
// and no socket is attributed to a process that does not hold it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "attribution/collector.hpp"
#include "attribution/process_resolver.hpp"
#include "netlink/netns_info.hpp"
#include "netlink/sampler.hpp"
#include "netns_fixture.hpp"
#include "proc/aggregator.hpp"

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr Duration kInterval{1000};

StateCounts holderStates(const nlohmann::json& holder) {
  auto s = statesFromJson(holder.at("states"));
  EXPECT_TRUE(s.ok());
  return s.ok() ? *s : StateCounts{};
}

// Per pid, the states a snapshot attributes (one namespace polled).
std::map<int, StateCounts> byPid(const Snapshot& s) {
  std::map<int, StateCounts> out;
  for (const auto& p : s.processes)
    out[p.info.key.pid] += p.states;
  return out;
}

bool lessOrEqual(const StateCounts& a, const StateCounts& b) {
  for (TcpState st : kAllTcpStates)
    if (a[st] > b[st]) return false;
  return true;
}

CollectorOptions namedCollector(const NetworkNamespace& ns) {
  CollectorOptions o;
  o.namespaces = NamespaceSelection::Named;
  o.names = {ns.name()};
  return o;
}

// Stops and joins a helper thread however the test body is left (a failed ASSERT returns).
class Background {
 public:
  template <typename F>
  explicit Background(F&& body) : thread_([this, body = std::forward<F>(body)] { body(stop_); }) {}
  ~Background() { join(); }
  void join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// `count` CLOSE_WAIT sockets and their FIN_WAIT2 peers plus the listener, held by this process
// in `ns` (created on a thread that entered the namespace), all aborting on close.
std::vector<UniqueFd> closeWaitPairs(const NetworkNamespace& ns, std::uint16_t port, int count) {
  std::vector<UniqueFd> fds;
  std::thread([&] {
    UniqueFd nsFd(::open(("/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsFd || ::setns(nsFd.get(), CLONE_NEWNET) != 0) return;
    const linger abort{1, 0};
    auto make = [&](int fd) {
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
      fds.emplace_back(fd);
      return fd;
    };
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int listener = make(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 64) != 0) {
      return;
    }
    for (int i = 0; i < count; ++i) {
      const int client = make(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
      make(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
      ::shutdown(client, SHUT_WR);
    }
  }).join();
  return fds;
}

class CollectorFaultTest : public NetnsTest {};

// The race spelled out step by step, as Collector::collect runs it, with the exit placed
// exactly between the dump and the /proc walk: the /proc listing happens before sockfarm
// starts, so every socket of the dump is unknown and must be searched for after it, when
// holder 1 is already gone, and when this process (alive) has closed the sockets it held.
TEST_F(CollectorFaultTest, HolderExitsOrClosesBetweenTheDumpAndTheWalk) {
  ProcessResolver resolver;
  SnapshotAggregator aggregator;
  const TimePoint now = Clock::now();
  ASSERT_TRUE(resolver.beginPoll(now).ok());

  auto farm = SockFarm::start(
      netns(), {"--holders", "3", "--close-wait", "30", "--established", "12", "--fin-wait2", "6"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  std::vector<UniqueFd> mine = closeWaitPairs(netns(), 7100, 4);  // 1 + 4 + 4 sockets
  ASSERT_EQ(mine.size(), 9u);
  auto handle = openNamedNetworkNamespace(netns().name());
  ASSERT_TRUE(handle.ok()) << handle.error().message;
  auto sampler = SockDiagSampler::openInNamespace(handle->fd.get());
  ASSERT_TRUE(sampler.ok()) << sampler.error().message;

  aggregator.begin(now, kInterval, resolver);
  NetnsEntry entry;
  entry.ref = handle->ref;
  aggregator.beginNamespace(std::move(entry));
  aggregator.beginDump();
  StateCounts atDump;  // what the dump showed, counted independently of the aggregator
  auto dumped = sampler->dump(
      DumpOptions{},
      [&](const SocketRecord& r) {
        ++atDump[r.state];
        aggregator.add(r);
      },
      [&] {
        atDump = StateCounts{};
        aggregator.restartDump();
      });
  ASSERT_TRUE(dumped.ok()) << dumped.error().message;
  aggregator.endNamespace();

  auto exited = farm->command("exit 1");  // aborts its sockets and exits
  ASSERT_TRUE(exited.ok()) << exited.error().message;
  ASSERT_EQ(exited->at("event"), "exited");
  mine.clear();  // this process closes its sockets but lives on

  resolver.resolve(aggregator.pendingHints(), now);
  Snapshot s;
  aggregator.finish(s);
  resolver.endPoll();

  // The counts are what the dump saw; the sockets of the exited holder and the ones this
  // process closed are owned by nobody (vanished), not by another process; the other holders
  // are exact.
  ASSERT_EQ(s.namespaces.size(), 1u);
  EXPECT_EQ(s.namespaces[0].states, atDump) << describe(s.namespaces[0].states);
  const StateCounts farmStates = farm->expectedStates();
  EXPECT_EQ(atDump[TcpState::CloseWait], farmStates[TcpState::CloseWait] + 4);
  EXPECT_EQ(atDump[TcpState::Listen], farmStates[TcpState::Listen] + 1);
  const auto& holders = farm->holders();
  const auto owners = byPid(s);
  EXPECT_EQ(owners.count(holders[1].at("pid").get<int>()), 0u);
  EXPECT_EQ(owners.count(::getpid()), 0u);
  for (int i : {0, 2}) {
    const int pid = holders[i].at("pid").get<int>();
    ASSERT_TRUE(owners.count(pid)) << "holder " << i;
    EXPECT_EQ(owners.at(pid), holderStates(holders[i])) << "holder " << i;
  }
  EXPECT_EQ(owners.size(), 2u);
  const StateCounts gone = holderStates(holders[1]);
  const std::uint64_t goneWithInode = gone.total() - gone[TcpState::TimeWait] + 9;
  EXPECT_EQ(s.unattributedVanished + s.unattributedNoPermission, goneWithInode);
  // Which of the two depends on whether some process of the sockets' user (root) could not be
  // read: then the resolver cannot tell "exited" from "hidden" (in some sandboxes even root
  // may not read /proc/1/fd).
  if (resolver.stats().unreadableProcesses == 0) {
    EXPECT_EQ(s.unattributedVanished, goneWithInode);
  }

  // The next poll (the whole collector) is exact again for what exists.
  Collector collector(namedCollector(netns()));
  auto next = collector.collect(Clock::now(), kInterval);
  ASSERT_TRUE(next.ok()) << next.error().message;
  auto after = statesFromJson(exited->at("states"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(next->totals(), *after);
  EXPECT_EQ(next->unattributedVanished, 0u);
  EXPECT_EQ(byPid(*next).size(), 2u);
}

// Holders exit one by one while polls run back to back: every poll completes, no process is
// credited with more than it holds or with sockets it never held, and once the exits are over
// the counts are exact.
TEST_F(CollectorFaultTest, HoldersExitWhilePollsRunBackToBack) {
  constexpr int kHolders = 8;
  auto farm = SockFarm::start(netns(), {"--holders", std::to_string(kHolders), "--close-wait",
                                        "800", "--established", "400", "--shared", "16"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  std::map<int, StateCounts> initial;  // pid -> what it holds
  for (const auto& h : farm->holders())
    initial[h.at("pid").get<int>()] = holderStates(h);

  Collector collector(namedCollector(netns()));
  std::atomic<bool> exitsDone{false};
  std::string exitError;
  nlohmann::json lastEvent;
  Background exits([&](const std::atomic<bool>&) {
    std::vector<int> order = {1, 2, 3, 4, 5, 6, 7};
    std::shuffle(order.begin(), order.end(), std::mt19937(8));
    for (int i : order) {
      std::this_thread::sleep_for(std::chrono::milliseconds(80 + 30 * (i % 3)));
      auto r = farm->command("exit " + std::to_string(i));
      if (!r.ok()) {
        exitError = r.error().message;
        break;
      }
      lastEvent = *r;
    }
    exitsDone = true;
  });

  int polls = 0;
  std::uint64_t vanishedSeen = 0;
  while (!exitsDone || polls < 3) {
    auto s = collector.collect(Clock::now(), kInterval);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ++polls;
    vanishedSeen += s->unattributedVanished;
    for (const auto& [pid, counts] : byPid(*s)) {
      ASSERT_TRUE(initial.count(pid))
          << "socket attributed to pid " << pid << ", which is no holder";
      EXPECT_TRUE(lessOrEqual(counts, initial[pid]))
          << "pid " << pid << " credited with " << describe(counts) << ", holds "
          << describe(initial[pid]);
    }
  }
  exits.join();
  ASSERT_EQ(exitError, "");

  // Exits are over: two polls in a row are exact.
  auto after = statesFromJson(lastEvent.at("states"));
  ASSERT_TRUE(after.ok());
  const int holder0 = farm->holders()[0].at("pid").get<int>();
  const int sharer = farm->holders()[kHolders].at("pid").get<int>();
  for (int round = 0; round < 2; ++round) {
    auto s = collector.collect(Clock::now(), kInterval);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->totals(), *after) << describe(s->totals());
    const auto owners = byPid(*s);
    EXPECT_EQ(owners.size(), 2u);
    EXPECT_EQ(owners.count(holder0) ? owners.at(holder0) : StateCounts{}, initial[holder0]);
    EXPECT_EQ(owners.count(sharer) ? owners.at(sharer) : StateCounts{}, initial[sharer]);
    EXPECT_EQ(s->unattributedVanished, 0u);
  }
  std::cout << "[ info ] " << polls << " polls during 7 exits, " << vanishedSeen
            << " socket(s) seen vanishing between a dump and its walk\n";
}

// ----- pid reuse, in a pid namespace of our own so that the pid can be chosen

// Holds `count` CLOSE_WAIT sockets (and their FIN_WAIT2 peers) behind a listener on `port`,
// all aborting on close (SO_LINGER 0) so that nothing lingers in TIME_WAIT after a kill.
[[noreturn]] void holdSockets(std::uint16_t port, int count, int readyFd) {
  auto lingerZero = [](int fd) {
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  };
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  lingerZero(listener);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 64) != 0) {
    ::_exit(3);
  }
  for (int i = 0; i < count; ++i) {
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    lingerZero(client);
    if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(4);
    const int server = ::accept(listener, nullptr, nullptr);
    if (server < 0) ::_exit(5);
    lingerZero(server);
    ::shutdown(client, SHUT_WR);  // server: CLOSE_WAIT, client: FIN_WAIT2
  }
  const char ok = 'r';
  [[maybe_unused]] auto n = ::write(readyFd, &ok, 1);
  for (;;)
    ::pause();
}

// Pid 1 of a new pid namespace, in a mount namespace of its own with that pid namespace's
// /proc mounted at `procDir`. Commands on `control` (one byte each): 'a' forks holder A (pid 2,
// 5 sockets on :7001), 'b' kills A and forks holder B with the same pid (3 sockets on :7002).
// Each answer is the new holder's pid as text.
[[noreturn]] void pidNamespaceInit(int control, const std::string& procDir,
                                   const std::string& netnsPath) {
  // (No PR_SET_PDEATHSIG: its parent is a short-lived thread. When the test process goes away,
  // `control` reaches EOF and this process exits, which ends every process of its namespace.)
  if (::unshare(CLONE_NEWNS) != 0) ::_exit(10);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(11);
  if (::mount("proc", procDir.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    ::_exit(12);
  }
  const int netns = ::open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns < 0 || ::setns(netns, CLONE_NEWNET) != 0) ::_exit(13);
  pid_t holder = -1;
  auto spawn = [&](std::uint16_t port, int count) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) ::_exit(14);
    holder = ::fork();
    if (holder == 0) holdSockets(port, count, ready[1]);
    char c = 0;
    if (::read(ready[0], &c, 1) != 1) ::_exit(15);
    ::close(ready[0]);
    ::close(ready[1]);
    const std::string pid = std::to_string(holder);
    [[maybe_unused]] auto n = ::write(control, pid.data(), pid.size());
  };
  for (char cmd = 0; ::read(control, &cmd, 1) == 1;) {
    if (cmd == 'a') spawn(7001, 5);
    if (cmd == 'b') {
      ::kill(holder, SIGKILL);
      ::waitpid(holder, nullptr, 0);
      // Both live long enough for distinct start times (clock ticks are 10 ms).
      std::this_thread::sleep_for(30ms);
      std::ofstream(procDir + "/sys/kernel/ns_last_pid") << holder - 1;
      spawn(7002, 3);
    }
  }
  ::_exit(0);
}

TEST_F(CollectorFaultTest, PidReusedByANewProcessIsANewOwner) {
  const fs::path dir = fs::temp_directory_path() / ("ww-pidns-" + std::to_string(::getpid()));
  fs::create_directories(dir / "proc");
  int control[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control), 0);
  // A child forked after unshare(CLONE_NEWPID) is pid 1 of the new namespace; this thread's
  // own pid namespace does not change. Done in a helper thread, so that only it is affected
  // (unshare of CLONE_NEWPID applies to the calling thread's later children).
  pid_t init = -1;
  std::thread([&] {
    if (::unshare(CLONE_NEWPID) != 0) return;
    init = ::fork();
    if (init == 0) {
      ::close(control[0]);
      pidNamespaceInit(control[1], (dir / "proc").string(), "/run/netns/" + netns().name());
    }
  }).join();
  ::close(control[1]);
  ASSERT_GT(init, 0) << "unshare(CLONE_NEWPID) or fork failed";
  struct Reap {
    pid_t pid;
    fs::path dir;
    ~Reap() {
      ::kill(pid, SIGKILL);  // pid 1 of the namespace: its children die with it
      ::waitpid(pid, nullptr, 0);
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } reap{init, dir};

  auto ask = [&](char cmd) -> int {
    if (::write(control[0], &cmd, 1) != 1) return -1;
    char buf[32] = {};
    const ssize_t n = ::read(control[0], buf, sizeof buf - 1);
    return n > 0 ? std::atoi(buf) : -1;
  };
  // The collector reads that namespace's /proc through the init process's root.
  CollectorOptions options = namedCollector(netns());
  options.procRoot = "/proc/" + std::to_string(init) + "/root" + (dir / "proc").string();

  const int pidA = ask('a');
  ASSERT_GT(pidA, 1);
  Collector collector(options);
  auto first = collector.collect(Clock::now(), kInterval);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->processes.size(), 1u);
  const ProcessEntry a = first->processes[0];
  EXPECT_EQ(a.info.key.pid, pidA);
  EXPECT_EQ(a.states[TcpState::CloseWait], 5u);
  EXPECT_EQ(a.listenPorts, std::vector<std::uint16_t>{7001});

  const int pidB = ask('b');
  ASSERT_EQ(pidB, pidA) << "ns_last_pid did not give the old pid back";
  for (int round = 0; round < 2; ++round) {
    auto second = collector.collect(Clock::now(), kInterval);
    ASSERT_TRUE(second.ok()) << second.error().message;
    // Only B's sockets exist, and they belong to B: same pid, a later start time, its own
    // sockets and port; nothing of A carries over.
    EXPECT_EQ(second->totals()[TcpState::CloseWait], 3u);
    ASSERT_EQ(second->processes.size(), 1u) << "round " << round;
    const ProcessEntry& b = second->processes[0];
    EXPECT_EQ(b.info.key.pid, pidA);
    EXPECT_GT(b.info.key.startTime, a.info.key.startTime);
    EXPECT_EQ(b.states[TcpState::CloseWait], 3u);
    // Its clients: FIN_WAIT1 until the delayed ACK of their FIN, then FIN_WAIT2.
    EXPECT_EQ(b.states.total(), 3u + 3u + 1u) << describe(b.states);
    EXPECT_EQ(b.listenPorts, std::vector<std::uint16_t>{7002});
    EXPECT_EQ(second->unattributedVanished, 0u);
  }
}

// ----- network namespaces deleted while every namespace is polled

TEST_F(CollectorFaultTest, NamespacesDeletedWhileAllArePolled) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "40", "--established", "20"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const StateCounts mine = farm->expectedStates();

  // A churn of namespaces, each with sockets, created and deleted while polls run.
  std::atomic<int> churned{0};
  std::string churnError;
  std::set<std::uint64_t> churnInodes;
  std::mutex inodesMutex;
  Background churn([&](const std::atomic<bool>& stop) {
    while (!stop) {
      auto ns = NetworkNamespace::create();
      if (!ns.ok()) {
        churnError = ns.error().message;
        return;
      }
      {
        auto f = SockFarm::start(*ns, {"--close-wait", "20", "--established", "10"});
        if (!f.ok()) {
          churnError = f.error().message;
          return;
        }
        std::lock_guard lock(inodesMutex);
        churnInodes.insert(f->report().at("netns_inode").get<std::uint64_t>());
      }  // the farm stops, then the namespace is deleted
      ++churned;
    }
  });

  Collector collector(CollectorOptions{.namespaces = NamespaceSelection::All});
  int polls = 0;
  std::size_t namespaceErrors = 0;
  std::set<std::uint64_t> churnSeen;
  const auto deadline = std::chrono::steady_clock::now() + 6s;
  while (std::chrono::steady_clock::now() < deadline && churnError.empty()) {
    auto s = collector.collect(Clock::now(), kInterval);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ++polls;
    namespaceErrors += collector.stats().namespaceErrors.size();
    bool found = false;
    for (const auto& ns : s->namespaces) {
      if (ns.ref.inode == netns().inode()) {
        found = true;
        EXPECT_EQ(ns.states, mine) << describe(ns.states);
      }
      std::lock_guard lock(inodesMutex);
      if (churnInodes.count(ns.ref.inode)) churnSeen.insert(ns.ref.inode);
    }
    EXPECT_TRUE(found) << "the test's own namespace is missing from poll " << polls;
    // No process in a snapshot is credited in a namespace the snapshot does not have.
    for (const auto& p : s->processes)
      EXPECT_LT(p.netns, s->namespaces.size());
  }
  churn.join();
  EXPECT_EQ(churnError, "");
  EXPECT_GE(churned.load(), 3);
  std::cout << "[ info ] " << polls << " polls of every namespace while " << churned.load()
            << " namespaces came and went (" << churnSeen.size() << " of them seen in a poll, "
            << namespaceErrors << " dropped from a poll as they vanished)\n";

  // The command-line view across deletions: `waitwatch --netns all --json` while namespaces
  // churn, every run exits 0 with the test namespace's exact counts.
  Background churn2([&](const std::atomic<bool>& stop) {
    while (!stop) {
      auto ns = NetworkNamespace::create();
      if (!ns.ok()) return;
      auto f = SockFarm::start(*ns, {"--close-wait", "10"});
      (void)f;
    }
  });
  for (int i = 0; i < 5; ++i) {
    const CommandResult r = runCommand({WAITWATCH_CLI_PATH, "--netns", "all", "--json"}, 20s);
    ASSERT_EQ(r.exitCode, 0) << r.describe();
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out.substr(0, 500);
    bool found = false;
    for (const auto& ns : j.at("namespaces")) {
      if (ns.at("inode").get<std::uint64_t>() != netns().inode()) continue;
      found = true;
      auto states = statesFromJson(ns.at("states"));
      ASSERT_TRUE(states.ok());
      EXPECT_EQ(*states, mine);
    }
    EXPECT_TRUE(found);
  }
}

}  // namespace
}  // namespace waitwatch::testing
