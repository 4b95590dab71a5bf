// SPDX-License-Identifier: Apache-2.0
#include "netns_fixture.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

namespace waitwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

Error errnoError(const std::string& what) {
  return Error{errno, what + ": " + std::strerror(errno)};
}

int statusToCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts argv with the given fds as its stdin, stdout and stderr; every other fd is closed.
Result<pid_t> spawn(const std::vector<std::string>& argv, int in, int out, int err) {
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv)
    cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return errnoError("fork");
  if (pid == 0) {
    // dup2 onto 0..2 in an order that cannot clobber a source still needed.
    const int hi = 10;
    const int src[3] = {::fcntl(in, F_DUPFD, hi), ::fcntl(out, F_DUPFD, hi),
                        ::fcntl(err, F_DUPFD, hi)};
    for (int i = 0; i < 3; ++i)
      ::dup2(src[i], i);
    ::close_range(3, ~0U, 0);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(cargv[0], cargv.data());
    const std::string msg = std::string("exec ") + argv[0] + ": " + std::strerror(errno) + "\n";
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` up to `timeout`; kills it (SIGKILL) past that. Returns the exit code.
int waitFor(pid_t pid, Millis timeout, bool* timedOut = nullptr) {
  const long pidfd = ::syscall(SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) {
    pollfd p{static_cast<int>(pidfd), POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (r < 0 && errno == EINTR);
    ::close(static_cast<int>(pidfd));
    if (r == 0) {
      if (timedOut != nullptr) *timedOut = true;
      ::kill(pid, SIGKILL);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return statusToCode(status);
}

struct Pipe {
  UniqueFd read, write;
};
Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errnoError("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t r = ::pread(fd, buf, sizeof buf, offset);
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
    offset += r;
  }
  return out;
}

std::atomic<unsigned> namespaceCounter{0};
constexpr const char* kRunNetns = "/run/netns";

// Deletes ww-<pid>-<n> namespaces whose creator no longer exists (a crashed earlier run).
void sweepStaleNamespaces() {
  DIR* dir = ::opendir(kRunNetns);
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name.rfind("ww-", 0) != 0) continue;
    const auto dash = name.find('-', 3);
    int pid = 0;
    const auto digits = name.substr(3, dash == std::string_view::npos ? name.npos : dash - 3);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (ec != std::errc() || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) stale.emplace_back(name);
  }
  ::closedir(dir);
  for (const auto& name : stale)
    runCommand({"ip", "netns", "del", name}, Millis(10000));
}

}  // namespace

std::string CommandResult::describe() const {
  std::string s = timedOut ? "timed out" : "exit " + std::to_string(exitCode);
  if (!err.empty()) s += ", stderr: " + err;
  return s;
}

CommandResult runCommand(const std::vector<std::string>& argv, Millis timeout) {
  CommandResult result;
  auto out = makePipe();
  auto err = makePipe();
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!out || !err || !devnull) {
    result.err = "cannot create pipes";
    return result;
  }
  auto pid = spawn(argv, devnull.get(), out->write.get(), err->write.get());
  out->write.reset();
  err->write.reset();
  if (!pid) {
    result.err = pid.error().message;
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  std::array<pollfd, 2> fds{{{out->read.get(), POLLIN, 0}, {err->read.get(), POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  char buf[8192];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) {
      result.timedOut = true;
      break;
    }
    const int r = ::poll(fds.data(), fds.size(), static_cast<int>(left));
    if (r < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
      }
    }
  }
  bool killed = false;
  const auto left =
      std::max<long long>(0, std::chrono::duration_cast<Millis>(deadline - Clock::now()).count());
  result.exitCode = waitFor(*pid, result.timedOut ? Millis(0) : Millis(left), &killed);
  result.timedOut = result.timedOut || killed;
  return result;
}

bool isRoot() {
  return ::geteuid() == 0;
}

Result<NetworkNamespace> NetworkNamespace::create() {
  sweepStaleNamespaces();
  const std::string name =
      "ww-" + std::to_string(::getpid()) + "-" + std::to_string(namespaceCounter++);
  if (auto r = runCommand({"ip", "netns", "add", name}, Millis(20000)); r.exitCode != 0) {
    return Error{0, "ip netns add " + name + ": " + r.describe()};
  }
  NetworkNamespace ns(name, 0);  // from here on the destructor deletes it
  if (auto r = runCommand({"ip", "-n", name, "link", "set", "lo", "up"}, Millis(20000));
      r.exitCode != 0) {
    return Error{0, "bringing lo up in " + name + ": " + r.describe()};
  }
  // Tests count TIME_WAIT sockets exactly, and two kernel defaults lose some on a loaded host.
  // tcp_tw_reuse 2: a new loopback connection may take over a TIME_WAIT socket whose peer last
  // spoke over a second ago (net/ipv4/tcp_ipv4.c, tcp_twsk_unique()). tcp_rfc1337 0: a reset
  // kills a TIME_WAIT socket (net/ipv4/tcp_minisocks.c, tcp_timewait_state_process()); when a
  // slow ACK makes the passive closer retransmit its FIN, the active closer's repeated ACK
  // reaches only the listener, which answers with a reset (tcp_rcv_state_process(), LISTEN).
  for (const char* setting : {"net.ipv4.tcp_tw_reuse=0", "net.ipv4.tcp_rfc1337=1"}) {
    if (auto r = runCommand({"ip", "netns", "exec", name, "sysctl", "-qw", setting}, Millis(20000));
        r.exitCode != 0) {
      return Error{0, std::string(setting) + " in " + name + ": " + r.describe()};
    }
  }
  struct stat st {};
  const std::string path = std::string(kRunNetns) + "/" + name;
  if (::stat(path.c_str(), &st) != 0) return errnoError("stat " + path);
  ns.inode_ = st.st_ino;
  return ns;
}

NetworkNamespace::NetworkNamespace(NetworkNamespace&& other) noexcept
    : name_(std::exchange(other.name_, {})), inode_(other.inode_) {}

NetworkNamespace& NetworkNamespace::operator=(NetworkNamespace&& other) noexcept {
  if (this != &other) {
    remove();
    name_ = std::exchange(other.name_, {});
    inode_ = other.inode_;
  }
  return *this;
}

NetworkNamespace::~NetworkNamespace() {
  remove();
}

void NetworkNamespace::remove() {
  if (name_.empty()) return;
  const auto r = runCommand({"ip", "netns", "del", name_}, Millis(20000));
  if (r.exitCode != 0) {
    std::fprintf(stderr, "warning: ip netns del %s: %s\n", name_.c_str(), r.describe().c_str());
  }
  name_.clear();
}

std::vector<std::string> NetworkNamespace::execPrefix() const {
  return {"ip", "netns", "exec", name_};
}

CommandResult NetworkNamespace::run(const std::vector<std::string>& argv, Millis timeout) const {
  auto full = execPrefix();
  full.insert(full.end(), argv.begin(), argv.end());
  return runCommand(full, timeout);
}

// ---------------------------------------------------------------------------------------------
// ss

namespace {
template <typename T>
std::optional<T> number(std::string_view text) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// The digits after `key` in `line` ("uid:" -> 1000), if present.
template <typename T>
std::optional<T> fieldAfter(std::string_view line, std::string_view key, std::size_t from = 0) {
  for (auto at = line.find(key, from); at != std::string_view::npos; at = line.find(key, at + 1)) {
    if (at > 0 && line[at - 1] != ' ' && line[at - 1] != '\t' && line[at - 1] != ',') continue;
    const auto start = at + key.size();
    auto end = start;
    while (end < line.size() && line[end] >= '0' && line[end] <= '9')
      ++end;
    return number<T>(line.substr(start, end - start));
  }
  return std::nullopt;
}
}  // namespace

Result<std::vector<SsSocket>> parseSs(std::string_view text) {
  std::vector<SsSocket> out;
  std::size_t lineNo = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineNo;
    // -e puts a second, indented line of TCP internals under each socket: skip it.
    if (line.find_first_not_of(" \t") == std::string_view::npos || line[0] == ' ' ||
        line[0] == '\t') {
      continue;
    }
    std::istringstream words{std::string(line)};
    std::string state, recvQ, sendQ, local, peer;
    auto bad = [&](const std::string& why) {
      return Error{0,
                   "ss line " + std::to_string(lineNo) + " \"" + std::string(line) + "\": " + why};
    };
    if (!(words >> state >> recvQ >> sendQ >> local >> peer)) return bad("fewer than 5 columns");
    SsSocket s;
    auto parsed = parseTcpState(state);
    if (!parsed) return bad("unknown state");
    s.state = *parsed;
    auto rq = number<std::uint32_t>(recvQ);
    auto sq = number<std::uint32_t>(sendQ);
    if (!rq || !sq) return bad("Recv-Q/Send-Q not numbers");
    s.recvQ = *rq;
    s.sendQ = *sq;
    s.local = local;
    s.peer = peer;
    for (auto at = line.find("pid="); at != std::string_view::npos;
         at = line.find("pid=", at + 1)) {
      auto pid = fieldAfter<int>(line, "pid=", at);
      if (!pid) return bad("bad pid=");
      if (std::find(s.pids.begin(), s.pids.end(), *pid) == s.pids.end()) s.pids.push_back(*pid);
    }
    s.uid = fieldAfter<std::uint32_t>(line, "uid:");
    s.inode = fieldAfter<std::uint64_t>(line, "ino:").value_or(0);
    out.push_back(std::move(s));
  }
  return out;
}

StateCounts countStates(const std::vector<SsSocket>& sockets) {
  StateCounts c;
  for (const auto& s : sockets)
    c[s.state]++;
  return c;
}

std::map<int, StateCounts> countByPid(const std::vector<SsSocket>& sockets) {
  std::map<int, StateCounts> byPid;
  for (const auto& s : sockets) {
    for (int pid : s.pids)
      byPid[pid][s.state]++;
  }
  return byPid;
}

Result<std::vector<SsSocket>> ssSockets(const NetworkNamespace& ns, std::string_view extraFlags) {
  const auto r = ns.run({"ss", "-Htan" + std::string(extraFlags)}, Millis(60000));
  if (r.exitCode != 0) return Error{0, "ss in " + ns.name() + ": " + r.describe()};
  return parseSs(r.out);
}

Result<StateCounts> statesFromJson(const nlohmann::json& object) {
  if (!object.is_object()) return Error{0, "states: not a JSON object"};
  StateCounts c;
  for (const auto& [key, value] : object.items()) {
    auto state = parseTcpState(key);
    if (!state) return Error{0, "states: unknown state \"" + key + "\""};
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
      return Error{0, "states." + key + ": not a count"};
    }
    c[*state] = value.get<std::uint64_t>();
  }
  return c;
}

std::string describe(const StateCounts& counts) {
  std::string s;
  for (TcpState state : kAllTcpStates) {
    if (counts[state] == 0) continue;
    if (!s.empty()) s += ' ';
    s += std::string(stateName(state)) + "=" + std::to_string(counts[state]);
  }
  return s.empty() ? "(none)" : s;
}

// ---------------------------------------------------------------------------------------------
// sockfarm

std::string sockfarmPath() {
  return WAITWATCH_SOCKFARM_PATH;
}

Result<SockFarm> SockFarm::start(const NetworkNamespace& ns, const std::vector<std::string>& args,
                                 Millis readyTimeout) {
  return startProgram(ns, sockfarmPath(), args, readyTimeout);
}

Result<SockFarm> SockFarm::startProgram(const NetworkNamespace& ns, const std::string& program,
                                        const std::vector<std::string>& args, Millis readyTimeout) {
  auto in = makePipe();
  auto out = makePipe();
  if (!in || !out) return Error{0, "cannot create pipes"};
  const int memfd = ::memfd_create("sockfarm-stderr", MFD_CLOEXEC);
  if (memfd < 0) return errnoError("memfd_create");
  SockFarm farm;
  farm.stderr_.reset(memfd);
  auto argv = ns.execPrefix();
  argv.push_back(program);
  argv.insert(argv.end(), args.begin(), args.end());
  auto pid = spawn(argv, in->read.get(), out->write.get(), memfd);
  if (!pid) return pid.error();
  farm.pid_ = *pid;
  farm.stdin_ = std::move(in->write);
  farm.stdout_ = std::move(out->read);
  in->read.reset();
  out->write.reset();

  auto first = farm.readLine(readyTimeout);
  if (!first) return first.error();
  auto ready = farm.readLine(Millis(5000));
  if (!ready) return ready.error();
  if (*ready != "READY") return Error{0, "sockfarm printed \"" + *ready + "\" instead of READY"};
  farm.report_ = nlohmann::json::parse(*first, nullptr, false);
  if (farm.report_.is_discarded() || !farm.report_.is_object()) {
    return Error{0, "sockfarm's report is not a JSON object: " + *first};
  }
  return farm;
}

SockFarm::SockFarm(SockFarm&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdin_(std::move(other.stdin_)),
      stdout_(std::move(other.stdout_)),
      stderr_(std::move(other.stderr_)),
      buffered_(std::move(other.buffered_)),
      report_(std::move(other.report_)) {}

SockFarm& SockFarm::operator=(SockFarm&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) (void)stop();
    pid_ = std::exchange(other.pid_, -1);
    stdin_ = std::move(other.stdin_);
    stdout_ = std::move(other.stdout_);
    stderr_ = std::move(other.stderr_);
    buffered_ = std::move(other.buffered_);
    report_ = std::move(other.report_);
  }
  return *this;
}

SockFarm::~SockFarm() {
  if (pid_ > 0) (void)stop();
}

std::string SockFarm::stderrText() const {
  return stderr_ ? readAll(stderr_.get()) : "";
}

Result<std::string> SockFarm::readLine(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    if (const auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    pollfd p{stdout_.get(), POLLIN, 0};
    const int r = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      (void)stop(Millis(5000));
      return Error{ETIMEDOUT, "sockfarm did not answer within " + std::to_string(timeout.count()) +
                                  " ms; stderr: " + stderrText()};
    }
    const ssize_t n = ::read(stdout_.get(), buf, sizeof buf);
    if (n > 0) {
      buffered_.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    auto status = stop(Millis(5000));
    return Error{0, "sockfarm exited (status " + std::to_string(status.ok() ? *status : -1) +
                        ") before answering; stderr: " + stderrText()};
  }
}

Result<nlohmann::json> SockFarm::command(std::string_view line, Millis timeout) {
  if (pid_ <= 0) return Error{0, "sockfarm is not running"};
  const std::string text = std::string(line) + "\n";
  if (::write(stdin_.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return errnoError("writing to sockfarm");
  }
  auto answer = readLine(timeout);
  if (!answer) return answer.error();
  auto j = nlohmann::json::parse(*answer, nullptr, false);
  if (j.is_discarded()) return Error{0, "sockfarm answered with non-JSON: " + *answer};
  return j;
}

Result<int> SockFarm::stop(Millis timeout) {
  if (pid_ <= 0) return Error{0, "sockfarm is not running"};
  stdin_.reset();  // EOF: sockfarm aborts its sockets, ends its holders and exits
  const int code = waitFor(std::exchange(pid_, -1), timeout);
  stdout_.reset();
  return code;
}

StateCounts SockFarm::expectedStates() const {
  auto c = statesFromJson(report_.at("states"));
  return c ? *c : StateCounts{};
}

// ---------------------------------------------------------------------------------------------

void NetnsTest::SetUp() {
  if (!isRoot()) {
    GTEST_SKIP() << "integration tests need root: they create network namespaces";
  }
  auto ns = NetworkNamespace::create();
  ASSERT_TRUE(ns.ok()) << ns.error().message;
  netns_.emplace(std::move(*ns));
}

}  // namespace waitwatch::testing
