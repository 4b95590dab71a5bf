// SPDX-License-Identifier: Apache-2.0
// The `waitwatch` binary against private network namespaces populated by sockfarm (several
// holders with known CLOSE_WAIT and ESTABLISHED sockets, one socket shared across a fork, a
// holder that exits between two runs): every per-process count exact, filters exact, --sockets
// owners equal to `ss -tanp`'s, --udp, --watch, and --from against a real waitwatchd.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "netns_fixture.hpp"

extern char** environ;

namespace waitwatch::testing {
namespace {

using nlohmann::json;

constexpr int kHolders = 3;
constexpr int kCloseWait = 60;    // 20 per holder
constexpr int kEstablished = 30;  // 15 pairs, 5 per holder
constexpr int kShared = 4;        // CLOSE_WAIT held by holder 0 and its forked child
constexpr int kFinWait2 = 6;
constexpr int kTimeWait = 9;

class CliFarmTest : public NetnsTest {
 protected:
  void SetUp() override {
    if (::access(WAITWATCH_CLI_PATH, X_OK) != 0) GTEST_SKIP() << "no " << WAITWATCH_CLI_PATH;
    NetnsTest::SetUp();
  }

  // Runs waitwatch with `args` against our namespace (by name) and parses its JSON.
  json runJson(std::vector<std::string> args) {
    std::vector<std::string> argv = {WAITWATCH_CLI_PATH, "--json", "--netns", netns().name()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = runCommand(argv);
    EXPECT_EQ(r.exitCode, 0) << r.describe();
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << r.out;
    return j.is_object() ? j : json::object();
  }

  Result<SockFarm> startFarm() {
    return SockFarm::start(
        netns(), {"--holders", std::to_string(kHolders), "--close-wait", std::to_string(kCloseWait),
                  "--established", std::to_string(kEstablished), "--shared",
                  std::to_string(kShared), "--fin-wait2", std::to_string(kFinWait2), "--time-wait",
                  std::to_string(kTimeWait), "--listen", "2"});
  }
};

StateCounts states(const json& j) {
  auto s = statesFromJson(j);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message) << " in " << j.dump();
  return s.ok() ? *s : StateCounts{};
}

// pid -> the process's states in waitwatch's JSON
std::map<int, StateCounts> byPid(const json& out) {
  std::map<int, StateCounts> m;
  for (const auto& p : out.at("processes")) {
    EXPECT_EQ(m.count(p["pid"].get<int>()), 0u) << "pid listed twice: " << p.dump();
    m[p["pid"].get<int>()] = states(p["states"]);
  }
  return m;
}

// pid -> the holder's states in sockfarm's report, for holders still alive
std::map<int, StateCounts> holdersByPid(const SockFarm& farm) {
  std::map<int, StateCounts> m;
  for (const auto& h : farm.holders()) {
    if (!h.value("alive", true)) continue;
    m[h["pid"].get<int>()] = states(h["states"]);
  }
  return m;
}

TEST_F(CliFarmTest, EveryProcessCountIsExactAndAHolderThatExitsIsGone) {
  auto farm = startFarm();
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const auto expected = holdersByPid(*farm);
  ASSERT_EQ(expected.size(), static_cast<std::size_t>(kHolders + 1));  // + the sharer

  json out = runJson({});
  EXPECT_EQ(states(out["states"]), farm->expectedStates()) << out["states"].dump();
  EXPECT_EQ(byPid(out), expected) << out["processes"].dump();
  for (const auto& p : out["processes"]) {
    for (const char* key : {"pid", "comm", "user", "unit", "container", "netns", "states"})
      EXPECT_TRUE(p.contains(key)) << key;
    EXPECT_EQ(p["comm"], "sockfarm");
    EXPECT_EQ(p["user"], "root");
    EXPECT_EQ(p["netns"], netns().name());
  }
  // The shared sockets count once in the totals and for each owner.
  std::uint64_t perProcess = 0;
  for (const auto& [pid, s] : byPid(out))
    perProcess += s[TcpState::CloseWait];
  EXPECT_EQ(perProcess, states(out["states"])[TcpState::CloseWait] + kShared);
  EXPECT_EQ(out["unattributed"], (json{{"no_permission", 0}, {"vanished", 0}}));

  // Holder 1 exits: its sockets and its row are gone, everyone else is unchanged.
  const int gone = farm->holders()[1]["pid"].get<int>();
  auto exited = farm->command("exit 1");
  ASSERT_TRUE(exited.ok()) << exited.error().message;
  auto remaining = expected;
  remaining.erase(gone);
  out = runJson({});
  EXPECT_EQ(byPid(out), remaining) << out["processes"].dump();
  auto now = statesFromJson((*exited)["states"]);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(states(out["states"]), *now);
}

TEST_F(CliFarmTest, FiltersAreExact) {
  auto farm = startFarm();
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const auto expected = holdersByPid(*farm);
  const int holder2 = farm->holders()[2]["pid"].get<int>();

  // --pid: exactly that holder's sockets.
  json out = runJson({"--pid", std::to_string(holder2)});
  EXPECT_EQ(byPid(out), (std::map<int, StateCounts>{{holder2, expected.at(holder2)}}));
  EXPECT_EQ(states(out["states"]), expected.at(holder2));

  // --state: only those states, per process and in total.
  out = runJson({"--state", "close-wait,fin-wait2"});
  std::map<int, StateCounts> onlyCw;
  for (const auto& [pid, s] : expected) {
    StateCounts c;
    c[TcpState::CloseWait] = s[TcpState::CloseWait];
    c[TcpState::FinWait2] = s[TcpState::FinWait2];
    if (c.total() > 0) onlyCw[pid] = c;
  }
  EXPECT_EQ(byPid(out), onlyCw);
  StateCounts cw;
  cw[TcpState::CloseWait] = kCloseWait + kShared;
  cw[TcpState::FinWait2] = kFinWait2;
  EXPECT_EQ(states(out["states"]), cw);

  // --port: the extra listener on 8082, and nothing else uses that port.
  out = runJson({"--port", "8082"});
  StateCounts oneListener;
  oneListener[TcpState::Listen] = 1;
  EXPECT_EQ(states(out["states"]), oneListener);
  ASSERT_EQ(out["processes"].size(), 1u) << out.dump();
  EXPECT_EQ(out["processes"][0]["listen_ports"], json::array({8082}));
  const int listener = out["processes"][0]["pid"].get<int>();
  EXPECT_TRUE(expected.count(listener));
  // ... and --port 8080 is every socket but the other listeners: all connections go there.
  out = runJson({"--port", "8080"});
  StateCounts all8080 = farm->expectedStates();
  all8080[TcpState::Listen] -= 2;
  EXPECT_EQ(states(out["states"]), all8080);
}

// One line per socket: the same owners as `ss -tanp` in the same namespace.
TEST_F(CliFarmTest, SocketLinesMatchSsOwners) {
  auto farm = startFarm();
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const json out = runJson({"--sockets"});
  auto ss = ssSockets(netns(), "p");
  ASSERT_TRUE(ss.ok()) << ss.error().message;

  using Key = std::tuple<std::string, std::string, std::string>;  // state, local, peer
  std::map<Key, std::set<int>> ours;
  std::map<Key, std::set<int>> theirs;
  for (const auto& s : out.at("sockets")) {
    std::set<int> pids;
    for (const auto& o : s["owners"])
      pids.insert(o["pid"].get<int>());
    auto state = parseTcpState(s["state"].get<std::string>());
    ASSERT_TRUE(state);
    // ss writes an unconnected peer as "0.0.0.0:*".
    std::string remote = s["remote"];
    if (remote.ends_with(":0")) remote.replace(remote.size() - 1, 1, "*");
    ours[{std::string(ssStateName(*state)), s["local"], remote}] = pids;
  }
  for (const SsSocket& s : *ss) {
    theirs[{std::string(ssStateName(s.state)), s.local, s.peer}] =
        std::set<int>(s.pids.begin(), s.pids.end());
  }
  EXPECT_EQ(ours.size(), ss->size());
  EXPECT_EQ(ours, theirs);
  std::size_t shared = 0;
  for (const auto& [key, pids] : ours)
    shared += pids.size() == 2 ? 1 : 0;
  EXPECT_EQ(shared, static_cast<std::size_t>(kShared));

  // The text view: a line per socket and the totals.
  const auto text = runCommand({WAITWATCH_CLI_PATH, "--sockets", "--netns", netns().name()});
  ASSERT_EQ(text.exitCode, 0) << text.describe();
  const auto lines = std::count(text.out.begin(), text.out.end(), '\n');
  // header, blank line, TOTAL, port-class legend
  EXPECT_EQ(static_cast<std::size_t>(lines), ss->size() + 4) << text.out;
}

TEST_F(CliFarmTest, UdpSeesABoundPortOfATestProcess) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "7"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  // A bound and a connected UDP socket in the namespace, held by this test process.
  UniqueFd bound;
  UniqueFd connected;
  std::thread([&] {
    UniqueFd ns(::open(("/run/netns/" + netns().name()).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || ::setns(ns.get(), CLONE_NEWNET) != 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(5353);
    bound = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (::bind(bound.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) bound.reset();
    connected = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (::connect(connected.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      connected.reset();
  }).join();
  ASSERT_TRUE(bound && connected);

  const json out = runJson({"--udp"});
  EXPECT_EQ(states(out["states"]), farm->expectedStates());  // TCP counts stay TCP
  ASSERT_TRUE(out.contains("udp")) << out.dump();
  const json& udp = out["udp"];
  EXPECT_EQ(udp["sockets"], 2);
  EXPECT_EQ(udp["states"], (json{{"UNCONN", 1}, {"ESTAB", 1}}));
  ASSERT_EQ(udp["processes"].size(), 1u) << udp.dump();
  const json& me = udp["processes"][0];
  EXPECT_EQ(me["pid"], ::getpid());
  EXPECT_EQ(me["sockets"], 2);
  EXPECT_EQ(me["connected"], 1);
  ASSERT_GE(me["ports"].size(), 2u);
  EXPECT_EQ(me["ports"][0], (json{{"port", 5353}, {"class", "registered"}}));

  // "Who holds port 5353": the UDP socket bound to it, and the connected one whose peer it is.
  const json port = runJson({"--udp", "--sockets", "--port", "5353"});
  EXPECT_EQ(states(port["states"]).total(), 0u);
  ASSERT_EQ(port["udp"]["socket_list"].size(), 2u) << port.dump();
  for (const auto& s : port["udp"]["socket_list"])
    EXPECT_EQ(s["owners"][0]["pid"], ::getpid());
}

// Without the privilege to read other users' fds: every socket still counted, those of the
// unreadable holders reported as not attributed, the reason said once on stderr.
TEST_F(CliFarmTest, UnprivilegedRunSaysWhatItCannotSee) {
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  auto hidden = SockFarm::start(
      netns(), {"--uid", "1234", "--holders", "2", "--close-wait", "20", "--established", "10"});
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  auto visible =
      SockFarm::start(netns(), {"--uid", "65534", "--close-wait", "7", "--listen-port", "9090"});
  ASSERT_TRUE(visible.ok()) << visible.error().message;
  std::vector<std::string> argv = netns().execPrefix();
  argv.insert(argv.end(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "--inh-caps=-all", WAITWATCH_CLI_PATH, "--json"});
  const auto r = runCommand(argv);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const json out = json::parse(r.out);
  StateCounts all = hidden->expectedStates();
  all += visible->expectedStates();
  EXPECT_EQ(states(out["states"]), all);
  // The visible holder is attributed exactly; the hidden holders' 20 + 10 + 1 sockets are not.
  EXPECT_EQ(byPid(out), holdersByPid(*visible)) << out["processes"].dump();
  EXPECT_EQ(out["unattributed"]["no_permission"], 31) << out["unattributed"].dump();
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("waitwatch: warning: 31 socket(s) could not be attributed: cannot read the "
                       "open files of "),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("need root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"), std::string::npos)
      << r.err;
}

// What --pid and --unit asked for and could not be read is said, and a run that could read
// nothing of it fails: never an empty table that reads as "holds no sockets".
TEST_F(CliFarmTest, PidsAndUnitsThatCannotBeReadAreSaidNotShownEmpty) {
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  auto hidden = SockFarm::start(netns(), {"--uid", "1234", "--close-wait", "5"});
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  auto visible =
      SockFarm::start(netns(), {"--uid", "65534", "--close-wait", "7", "--listen-port", "9090"});
  ASSERT_TRUE(visible.ok()) << visible.error().message;
  const std::string hiddenPid = std::to_string(hidden->holders().at(0)["pid"].get<int>());
  const std::string visiblePid = std::to_string(visible->holders().at(0)["pid"].get<int>());
  const std::string noSuchPid = "2147483000";  // above any pid_max
  auto run = [&](std::vector<std::string> args, bool asNobody) {
    std::vector<std::string> argv = netns().execPrefix();
    if (asNobody) {
      argv.insert(argv.end(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                               "--clear-groups", "--inh-caps=-all"});
    }
    argv.push_back(WAITWATCH_CLI_PATH);
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  };
  // Another user's process: why its sockets are missing, exit 1, nothing on stdout.
  auto r = run({"--pid", hiddenPid}, true);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("process " + hiddenPid +
                       " (sockfarm, uid 1234): its sockets could not be "
                       "read: Permission denied"),
            std::string::npos)
      << r.err;
  // A pid and a unit that do not exist.
  r = run({"--pid", noSuchPid}, false);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "waitwatch: no such process: " + noSuchPid + "\n");
  r = run({"--unit", "ww-no-such.service", "--json"}, false);
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "waitwatch: no such unit or container: 'ww-no-such.service' (no running process "
            "belongs to it)\n");
  // One readable among them: the view is shown, the rest is said.
  r = run({"--pid", visiblePid + "," + noSuchPid, "--json"}, true);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_NE(r.err.find("no such process: " + noSuchPid), std::string::npos) << r.err;
  const json out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_EQ(byPid(out), holdersByPid(*visible));
  // A process that exists and holds none of the sockets asked for is an empty answer, not an
  // error.
  r = run({"--pid", std::to_string(::getpid()), "--state", "close-wait"}, false);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_EQ(r.err, "");
}

// Without privilege, --netns all says which processes' namespaces it could not open.
TEST_F(CliFarmTest, UnprivilegedAllNamespacesSaysWhatItSkipped) {
  if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  auto hidden = SockFarm::start(netns(), {"--uid", "1234", "--close-wait", "3"});
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  std::vector<std::string> argv = netns().execPrefix();
  argv.insert(argv.end(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "--inh-caps=-all", WAITWATCH_CLI_PATH, "--netns", "all"});
  const auto r = runCommand(argv);
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_NE(r.err.find("could not be opened (first: pid "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a namespace that only they are in was skipped"), std::string::npos)
      << r.err;
  // Said once, and the table does not claim that nobody holds the sockets it could not see.
  EXPECT_EQ(r.err.find("could not be opened"), r.err.rfind("could not be opened")) << r.err;
  EXPECT_EQ(r.out.find("no process holds TCP sockets"), std::string::npos) << r.out;
}

// A port the kernel picks for connect() in this namespace is ephemeral, whatever its IANA
// class; the namespace waitwatch runs in is "host" when `ip netns` does not name it.
TEST_F(CliFarmTest, PortClassesFollowTheNamespacesRangeAndTheOwnNamespaceIsHost) {
  std::vector<std::string> sysctl = netns().execPrefix();
  sysctl.insert(sysctl.end(), {"sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 45000"});
  ASSERT_EQ(runCommand(sysctl).exitCode, 0);
  auto farm = SockFarm::start(netns(), {"--established", "4"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const json out = runJson({"--sockets"});
  int clients = 0;
  for (const auto& s : out["sockets"]) {
    const std::string local = s["local"].get<std::string>();
    const int port = std::stoi(local.substr(local.rfind(':') + 1));
    if (port >= 40000 && port <= 45000) {
      ++clients;
      EXPECT_EQ(s["local_port_class"], "ephemeral") << s.dump();  // IANA: registered
    } else if (port < 1024) {
      EXPECT_EQ(s["local_port_class"], "well-known") << s.dump();
    }
    // The server side's peer is the client on loopback, in this namespace: its port too.
    const std::string remote = s["remote"].get<std::string>();
    const int peerPort = std::stoi(remote.substr(remote.rfind(':') + 1));
    if (peerPort >= 40000 && peerPort <= 45000) {
      EXPECT_EQ(s["remote_port_class"], "ephemeral") << s.dump();
    }
  }
  EXPECT_EQ(clients, 2) << out["sockets"].dump();  // 4 established sockets: 2 client ends
  const auto text = runCommand({WAITWATCH_CLI_PATH, "--netns", netns().name()});
  EXPECT_NE(text.out.find("a local port in ip_local_port_range 40000-45000"), std::string::npos)
      << text.out;

  // An unnamed namespace of our own.
  const auto own = runCommand({"unshare", "--net", "--", WAITWATCH_CLI_PATH, "--json"});
  ASSERT_EQ(own.exitCode, 0) << own.describe();
  const json j = json::parse(own.out);
  ASSERT_EQ(j["namespaces"].size(), 1u);
  EXPECT_EQ(j["namespaces"][0]["label"], "host");
  EXPECT_EQ(own.out.find("net:["), std::string::npos) << own.out;
}

// --watch redisplays until SIGINT and then exits 0; without a terminal it never clears; a
// population that changes between refreshes shows the change (the watch keeps a cache).
TEST_F(CliFarmTest, WatchRefreshesUntilInterrupted) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "3"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const std::string name = netns().name();
  std::vector<std::string> args = {WAITWATCH_CLI_PATH, "--watch", "0.2",     "--json",
                                   "--netns",          name,      "--state", "close-wait"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  UniqueFd reader(out[0]);

  std::string text;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto readFrames = [&](auto done) {
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::read(reader.get(), buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
  };
  readFrames([&] { return std::count(text.begin(), text.end(), '\n') >= 3; });
  // The holder exits: its CLOSE_WAIT sockets go, and a later frame says so.
  ASSERT_TRUE(farm->command("exit 0").ok());
  readFrames([&] {
    return text.find("\"CLOSE_WAIT\":0", text.find('\n', text.find('\n') + 1)) != std::string::npos;
  });
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(text.find('\033'), std::string::npos);
  std::istringstream lines(text);
  int frames = 0;
  for (std::string line; std::getline(lines, line) && frames < 3; ++frames) {
    const json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_EQ(j["states"]["CLOSE_WAIT"], 3);
    // Each sample says when it was taken, as the daemon's snapshot does.
    ASSERT_TRUE(j.contains("time_unix_seconds")) << line;
    EXPECT_NEAR(j["time_unix_seconds"].get<double>(), static_cast<double>(std::time(nullptr)), 120);
  }
  EXPECT_EQ(frames, 3);
  EXPECT_NE(text.find("\"CLOSE_WAIT\":0"), std::string::npos) << text;
}

// --from: a real waitwatchd in the namespace, asked over HTTP; the same counts, with ages and
// the alert a zero-age rule fires.
TEST_F(CliFarmTest, FromARunningDaemon) {
  if (::access(WAITWATCHD_PATH, X_OK) != 0) GTEST_SKIP() << "no " << WAITWATCHD_PATH;
  auto farm = startFarm();
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const auto dir =
      std::filesystem::temp_directory_path() / ("waitwatch-cli-from-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "waitwatch.json").string();
  std::ofstream(config) << R"({"poll_interval": "300ms", "listen": "127.0.0.1:19929",
    "rules": [{"name": "leak", "type": "close_wait", "severity": "critical",
               "min_sockets": 10, "min_age": "0s", "for": "0s", "clear_for": "0s"}]})";
  std::vector<std::string> args = netns().execPrefix();
  args.insert(args.end(), {WAITWATCHD_PATH, "--config", config});
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, (dir / "stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t daemon = -1;
  ASSERT_EQ(::posix_spawnp(&daemon, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  struct Stop {
    pid_t pid;
    std::filesystem::path dir;
    ~Stop() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } stop{daemon, dir};

  std::vector<std::string> cli = netns().execPrefix();
  cli.insert(cli.end(), {WAITWATCH_CLI_PATH, "--from", "http://127.0.0.1:19929", "--json"});
  // Each `waitwatch --from` holds a connection to the daemon while it runs, and a poll that
  // dumps meanwhile counts it (seen under load, about one run in ten). An attempt that failed
  // (before the first poll) may leave its connection closing, so ask until the poll served
  // started after the previous attempt had exited.
  const auto wallSeconds = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  CommandResult r;
  json out;
  double previousEnded = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    r = runCommand(cli);
    const double ended = wallSeconds();
    if (r.exitCode == 0) {
      out = json::parse(r.out);
      if (out.at("time_unix_seconds").get<double>() > previousEnded) break;
    }
    previousEnded = ended;
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  ASSERT_EQ(r.exitCode, 0) << r.describe() << " daemon: " << std::ifstream(dir / "stderr").rdbuf();
  ASSERT_GT(out.at("time_unix_seconds").get<double>(), previousEnded) << "no quiet poll in 30 s";
  // This attempt's own connection may be in it too, if a poll dumped while the request was on
  // its way (its row is `waitwatch`, the daemon's end ESTABLISHED as well): it is no farm socket.
  std::uint64_t ownConnections = 0;
  std::set<int> ownPids;
  for (const auto& p : out["processes"]) {
    if (p["comm"] != "waitwatch") continue;
    ownPids.insert(p["pid"].get<int>());
    const StateCounts own = states(p["states"]);
    EXPECT_EQ(own.total(), own[TcpState::Established]) << p.dump();
    ownConnections += own[TcpState::Established];
  }
  if (ownConnections > 0) std::cout << "[ info ] the poll served saw its own request\n";
  // The daemon listens in the namespace too, and each request leaves a TIME_WAIT socket.
  const StateCounts expected = farm->expectedStates();
  const StateCounts seen = states(out["states"]);
  for (TcpState s : {TcpState::CloseWait, TcpState::Established, TcpState::FinWait2}) {
    const std::uint64_t own = s == TcpState::Established ? 2 * ownConnections : 0;
    EXPECT_EQ(seen[s], expected[s] + own) << stateName(s);
  }
  EXPECT_EQ(seen[TcpState::Listen], expected[TcpState::Listen] + 1);
  auto rows = byPid(out);
  rows.erase(daemon);
  for (int pid : ownPids)
    rows.erase(pid);
  EXPECT_EQ(rows, holdersByPid(*farm));
  for (const auto& p : out["processes"]) {
    if (p["states"]["CLOSE_WAIT"] == 0) continue;
    ASSERT_TRUE(p.contains("close_wait_oldest_age_seconds")) << p.dump();
    EXPECT_GE(p["close_wait_oldest_age_seconds"].get<double>(), 0.0);
  }
  ASSERT_GE(out["alerts"].size(), 1u) << out.dump();
  EXPECT_EQ(out["alerts"][0]["rule"], "leak");

  // The table: the alert on top, an OLDEST column.
  cli.pop_back();
  r = runCommand(cli);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_NE(r.out.find("alert"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OLDEST"), std::string::npos) << r.out;

  // --pid: only the alerts about that holder (each holder leaks 20, the rule fires at 10); the
  // others are counted.
  const std::size_t firing = out["alerts"].size();
  ASSERT_GE(firing, static_cast<std::size_t>(kHolders)) << out["alerts"].dump();
  const int first = farm->holders()[0]["pid"].get<int>();
  cli.insert(cli.end(), {"--json", "--pid", std::to_string(first)});
  r = runCommand(cli);
  ASSERT_EQ(r.exitCode, 0) << r.describe();
  const json one = json::parse(r.out);
  ASSERT_EQ(one["alerts"].size(), 1u) << one["alerts"].dump();
  EXPECT_NE(one["alerts"][0]["message"].get<std::string>().find("[" + std::to_string(first) + "]"),
            std::string::npos)
      << one["alerts"].dump();
  EXPECT_EQ(one["alerts_not_shown"].get<std::size_t>() + 1, firing) << r.out;

  // A daemon that is not there: one line, exit 1.
  r = runCommand(std::vector<std::string>{WAITWATCH_CLI_PATH, "--from", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// libcurl is opened by --from, not linked: a local look starts without it, and --from says
// which library it needs. An unloadable libcurl.so.4 first on the library path stops a program
// linked with it before main().
TEST(CliHttpClient, OnlyFromLoadsLibcurl) {
  if (::access(WAITWATCH_CLI_PATH, X_OK) != 0) GTEST_SKIP() << "no " << WAITWATCH_CLI_PATH;
  char dir[] = "/tmp/waitwatch-nocurl-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string fake = std::string(dir) + "/libcurl.so.4";
  std::ofstream(fake) << "not a library\n";
  const std::string path = std::string("LD_LIBRARY_PATH=") + dir;

  auto r = runCommand({"env", path, WAITWATCH_CLI_PATH, "--version"});
  EXPECT_EQ(r.exitCode, 0) << r.describe();
  EXPECT_NE(r.out.find("waitwatch"), std::string::npos) << r.describe();

  r = runCommand({"env", path, WAITWATCH_CLI_PATH, "--from", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("http://127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("libcurl.so.4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("install the package libcurl4"), std::string::npos) << r.err;

  // Without the fake, the same library path gives the real one.
  std::filesystem::remove(fake);
  r = runCommand({"env", path, WAITWATCH_CLI_PATH, "--from", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_EQ(r.err.find("libcurl4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is waitwatchd running"), std::string::npos) << r.err;
  std::filesystem::remove(dir);
}

// A real Podman container (Debian's podman, with runc: crun refuses cgroup v2 controllers on a
// hybrid host like this one) holding a listening socket on the host's network: `waitwatch`
// shows it by the name given with `podman run --name`, read from containers/storage's
// containers.json. The container asks for no more file or process limits than this host's hard
// limits (without CAP_SYS_RESOURCE, podman's default of 1048576 open files fails setrlimit).
TEST(CliPodman, ARealContainerShowsByItsName) {
  if (!isRoot()) GTEST_SKIP() << "needs root";
  for (const char* tool : {"podman", "runc", "busybox"}) {
    if (runCommand({"sh", "-c", std::string("command -v ") + tool}).exitCode != 0) {
      GTEST_SKIP() << tool << " is not installed (Debian packages podman, runc, busybox-static)";
    }
  }
  // A one-binary image: busybox and its nc, imported from a directory (no registry is reachable).
  const std::string image = "localhost/waitwatch-test-busybox:1";
  char dirTemplate[] = "/tmp/waitwatch-podman-XXXXXX";
  ASSERT_NE(::mkdtemp(dirTemplate), nullptr);
  const std::filesystem::path dir = dirTemplate;
  std::filesystem::create_directories(dir / "root/bin");
  const CommandResult copy =
      runCommand({"sh", "-c",
                  "cp \"$(command -v busybox)\" " + (dir / "root/bin/busybox").string() +
                      " && ln -s busybox " + (dir / "root/bin/nc").string() + " && tar -C " +
                      (dir / "root").string() + " -cf " + (dir / "root.tar").string() + " ."});
  ASSERT_EQ(copy.exitCode, 0) << copy.describe();
  const CommandResult imported =
      runCommand({"podman", "import", (dir / "root.tar").string(), image}, Millis(120'000));
  ASSERT_EQ(imported.exitCode, 0) << imported.describe();

  // A port free now, on the host's loopback.
  UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  probe.reset();

  const std::string name = "waitwatch-test-" + std::to_string(::getpid());
  struct Cleanup {
    std::string name;
    std::filesystem::path dir;
    ~Cleanup() {
      runCommand({"podman", "rm", "-f", "-t", "0", name}, Millis(60'000));
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{name, dir};
  const CommandResult started =
      runCommand({"podman", "--runtime", "runc", "run", "-d", "--network", "host", "--ulimit",
                  "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--name", name, image,
                  "/bin/nc", "-l", "-p", port},
                 Millis(120'000));
  ASSERT_EQ(started.exitCode, 0) << started.describe();
  std::string id = started.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
    id.pop_back();
  ASSERT_EQ(id.size(), 64u) << started.out;

  json process;
  std::string last;
  for (int i = 0; i < 100 && process.is_null(); ++i) {
    const CommandResult r = runCommand({WAITWATCH_CLI_PATH, "--json", "--port", port});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
    const json out = json::parse(r.out);
    for (const json& p : out.at("processes")) {
      if (p.at("comm") == "nc") process = p;
    }
    last = r.out;
    if (process.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(process.is_null()) << "nc never listened on " << port << ": " << last;
  EXPECT_EQ(process.at("container_runtime"), "podman") << process.dump();
  EXPECT_EQ(process.at("container_id"), id) << process.dump();
  EXPECT_EQ(process.at("container_name"), name) << process.dump();
  const CommandResult table = runCommand({WAITWATCH_CLI_PATH, "--port", port});
  EXPECT_NE(table.out.find(" podman:" + name + " "), std::string::npos) << table.out;
  const CommandResult filtered =
      runCommand({WAITWATCH_CLI_PATH, "--json", "--container", name, "--state", "listen"});
  ASSERT_EQ(filtered.exitCode, 0) << filtered.describe();
  EXPECT_EQ(json::parse(filtered.out).at("processes").size(), 1u) << filtered.out;
}

}  // namespace
}  // namespace waitwatch::testing
