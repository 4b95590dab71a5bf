// SPDX-License-Identifier: Apache-2.0
#include "daemon_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace waitwatch::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Mounts over /run/systemd and /run/log/journal exist only in the daemon's own mount namespace
// (unshare -m, private propagation): journald there is invisible to the rest of the machine.
constexpr const char* kWrapper = R"(set -e
D="$1"; shift
mkdir -p /run/systemd /run/log/journal
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/journal
mount --bind "$D/journal" /run/log/journal
mount --bind "$D/journald.conf" /etc/systemd/journald.conf
env -u NOTIFY_SOCKET -u WATCHDOG_USEC /lib/systemd/systemd-journald </dev/null >"$D/journald.log" 2>&1 &
echo $! > "$D/journald.pid"
i=0
while [ ! -S /run/systemd/journal/socket ]; do
  i=$((i+1)); [ $i -gt 500 ] && { echo "journald did not start" >&2; exit 99; }
  sleep 0.01
done
exec "$@"
)";

constexpr const char* kJournaldConf = R"([Journal]
Storage=volatile
RateLimitIntervalSec=0
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
)";

}  // namespace

std::string waitwatchdPath() {
  return WAITWATCHD_PATH;
}

fs::path scratchDir(const std::string& tag) {
  static int counter = 0;
  const fs::path p =
      fs::temp_directory_path() /
      ("waitwatch-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

Result<Child> spawnPrometheus(const NetworkNamespace& ns, const std::filesystem::path& dir) {
  std::vector<std::string> argv = ns.execPrefix();
  argv.insert(argv.end(), {"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                           "--storage.tsdb.path=" + (dir / "data").string(),
                           "--web.listen-address=127.0.0.1:9090"});
  return Child::spawn(argv, {}, dir / "prometheus");
}

bool eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (probe()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

// ----- Child

Result<Child> Child::spawn(const std::vector<std::string>& argv,
                           const std::vector<std::string>& extraEnv, const fs::path& prefix) {
  Child c;
  c.out_ = prefix.string() + ".out";
  c.err_ = prefix.string() + ".err";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Error{errno, "fork"};
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(c.out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(c.err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::unsetenv("JOURNAL_STREAM");
    for (const auto& e : extraEnv)
      ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  c.pid_ = pid;
  return c;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)) {}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void Child::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

std::string Child::stderrText() const {
  return slurp(err_);
}
std::string Child::stdoutText() const {
  return slurp(out_);
}

// ----- DaemonRun

Result<DaemonRun> DaemonRun::start(const NetworkNamespace& ns, const std::string& config,
                                   const std::vector<std::string>& args,
                                   const std::vector<std::string>& env) {
  return launch(&ns, config, args, env);
}

Result<DaemonRun> DaemonRun::startOnHost(const std::string& config,
                                         const std::vector<std::string>& env) {
  // A port the kernel says is free now.
  UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof any;
  if (!probe || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
      ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&any), &len) != 0) {
    return Error{errno, "no free port on 127.0.0.1"};
  }
  const std::uint16_t port = ntohs(any.sin_port);
  probe.reset();
  auto run = launch(nullptr, config, {"--listen", "127.0.0.1:" + std::to_string(port)}, env);
  if (run) run->port_ = port;
  return run;
}

Result<DaemonRun> DaemonRun::launch(const NetworkNamespace* ns, const std::string& config,
                                    const std::vector<std::string>& args,
                                    const std::vector<std::string>& env) {
  DaemonRun run;
  run.ns_ = ns;
  run.dir_ = scratchDir("daemon");
  fs::create_directories(run.dir_ / "journal");
  std::ofstream(run.dir_ / "wrapper.sh") << kWrapper;
  std::ofstream(run.dir_ / "journald.conf") << kJournaldConf;

  run.notify_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string notifyPath = (run.dir_ / "notify.sock").string();
  std::strncpy(addr.sun_path, notifyPath.c_str(), sizeof addr.sun_path - 1);
  if (::bind(run.notify_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Error{errno, "bind " + notifyPath};
  }

  // nsenter rather than `ip netns exec`: the latter remounts /sys, which hides /sys/fs/cgroup,
  // and journald refuses to start without it.
  std::vector<std::string> argv;
  if (ns != nullptr) argv = {"nsenter", "--net=/run/netns/" + ns->name()};
  for (const char* a : {"unshare", "-m", "--propagation", "private", "sh"})
    argv.emplace_back(a);
  argv.push_back((run.dir_ / "wrapper.sh").string());
  argv.push_back(run.dir_.string());
  argv.push_back(waitwatchdPath());
  if (!config.empty()) {
    std::ofstream(run.configPath()) << config;
    argv.push_back("--config");
    argv.push_back(run.configPath().string());
  }
  bool hasListen = false;
  for (const auto& a : args)
    hasListen = hasListen || a.rfind("--listen", 0) == 0;
  if (!hasListen) {
    argv.push_back("--listen");
    argv.push_back("127.0.0.1:" + std::to_string(run.port_));
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> environment = env;
  environment.push_back("NOTIFY_SOCKET=" + notifyPath);
  auto child = Child::spawn(argv, environment, run.dir_ / "waitwatchd");
  if (!child) return child.error();
  run.daemon_.emplace(std::move(*child));
  return run;
}

DaemonRun::~DaemonRun() {
  if (dir_.empty()) return;  // moved from
  if (daemon_) {
    daemon_->signal(SIGTERM);
    daemon_->wait(3s);
    daemon_.reset();
  }
  // journald was started by the wrapper and outlives the daemon: stop it by its pid.
  const std::string pidText = slurp(dir_ / "journald.pid");
  if (!pidText.empty()) {
    const pid_t j = std::stoi(pidText);
    if (j > 1 && ::kill(j, SIGTERM) == 0) {
      // Orphaned once the daemon exited, it may linger as a zombie of whoever adopted it.
      const auto gone = [j] {
        const std::string stat = slurp("/proc/" + std::to_string(j) + "/stat");
        const auto close = stat.rfind(')');
        return stat.empty() || (close != std::string::npos && stat.substr(close + 2, 1) == "Z");
      };
      eventually(gone, 2s);
      ::kill(j, SIGKILL);
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::optional<int> DaemonRun::stop() {
  daemon_->signal(SIGTERM);
  return daemon_->wait(3s);
}

std::vector<std::string> DaemonRun::notifications() {
  char buf[4096];
  for (ssize_t n; (n = ::recv(notify_.get(), buf, sizeof buf, 0)) > 0;) {
    notes_.emplace_back(buf, static_cast<std::size_t>(n));
  }
  return notes_;
}

bool DaemonRun::waitNotification(const std::string& text, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        for (const auto& n : notifications()) {
          if (n.find(text) != std::string::npos) return true;
        }
        return false;
      },
      timeout);
}

std::vector<nlohmann::json> DaemonRun::journal(const std::string& match) const {
  std::vector<std::string> argv = {"journalctl", "--directory=" + (dir_ / "journal").string(), "-o",
                                   "json", "--no-pager"};
  if (!match.empty()) argv.push_back(match);
  const CommandResult r = runCommand(argv, 10s);
  // An empty answer must mean "no such entries", not "journalctl failed".
  if (r.exitCode != 0) ADD_FAILURE() << "journalctl failed: " << r.describe();
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

CommandResult DaemonRun::http(const std::string& path) const {
  std::vector<std::string> argv = ns_ != nullptr ? ns_->execPrefix() : std::vector<std::string>{};
  for (const char* a : {"curl", "-sS", "--max-time", "5", "-o", "-"})
    argv.emplace_back(a);
  argv.push_back("http://127.0.0.1:" + std::to_string(port_) + path);
  return runCommand(argv, 10s);
}

}  // namespace waitwatch::testing
