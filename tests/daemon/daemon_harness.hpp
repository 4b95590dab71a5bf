// SPDX-License-Identifier: Apache-2.0
#pragma once
// Runs the real waitwatchd for integration tests: inside a test network namespace and a private
// mount namespace of its own, where a real systemd-journald (Storage=volatile) listens on
// /run/systemd/journal/socket and writes to a directory of the test. The test reads the journal
// back with `journalctl --directory`, watches sd_notify messages on a socket of its own, and
// talks HTTP through `ip netns exec ... curl`.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "netns_fixture.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::testing {

// A child process with stdout and stderr in files; killed (SIGKILL) when the object goes away
// or the test process dies.
class Child {
 public:
  static Result<Child> spawn(const std::vector<std::string>& argv,
                             const std::vector<std::string>& extraEnv,
                             const std::filesystem::path& outputPrefix);
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();

  [[nodiscard]] pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // The exit status (128 + N when killed by signal N), or nullopt if still running after
  // `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] std::string stderrText() const;
  [[nodiscard]] std::string stdoutText() const;

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::filesystem::path out_, err_;
};

// A real Prometheus server in `ns` on 127.0.0.1:9090, configured by `dir`/prometheus.yml (the
// caller writes it), its data in `dir`/data and its output in `dir`/prometheus.{out,err}.
Result<Child> spawnPrometheus(const NetworkNamespace& ns, const std::filesystem::path& dir);

// Polls `probe` every 50 ms until it returns true or `timeout` passes.
bool eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout);

class DaemonRun {
 public:
  // Starts journald and waitwatchd (with `args`) in `ns`. `config` is written to a file and
  // passed with --config unless empty.
  static Result<DaemonRun> start(const NetworkNamespace& ns, const std::string& config,
                                 const std::vector<std::string>& args = {},
                                 const std::vector<std::string>& env = {});
  // The same in the host's network namespace (what only the host's shows: net.ipv4.tcp_mem),
  // listening on a free port of 127.0.0.1.
  static Result<DaemonRun> startOnHost(const std::string& config,
                                       const std::vector<std::string>& env = {});
  DaemonRun(DaemonRun&&) noexcept = default;
  DaemonRun& operator=(DaemonRun&&) = delete;
  ~DaemonRun();

  Child& process() { return *daemon_; }
  // SIGTERM, then the exit status (nullopt when it did not end within 3 s). Under ASan a leak
  // or an error found at exit shows here as a non-zero status.
  std::optional<int> stop();
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::filesystem::path configPath() const { return dir_ / "waitwatch.json"; }
  // Every sd_notify datagram received so far (each "KEY=value\n..." as sent).
  std::vector<std::string> notifications();
  // Waits for a notification containing `text`.
  bool waitNotification(const std::string& text, std::chrono::milliseconds timeout);
  // The journal's entries (journalctl -o json), optionally only those with FIELD=value.
  std::vector<nlohmann::json> journal(const std::string& match = "") const;
  // GET http://127.0.0.1:<port><path> inside the namespace; exit code and body.
  CommandResult http(const std::string& path) const;
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  DaemonRun() = default;
  static Result<DaemonRun> launch(const NetworkNamespace* ns, const std::string& config,
                                  const std::vector<std::string>& args,
                                  const std::vector<std::string>& env);
  const NetworkNamespace* ns_ = nullptr;  // null: the host's
  std::filesystem::path dir_;
  std::optional<Child> daemon_;
  UniqueFd notify_;
  std::vector<std::string> notes_;
  std::uint16_t port_ = 9929;
};

// The path of the built waitwatchd.
std::string waitwatchdPath();

// A unique scratch directory under /tmp, removed by the caller.
std::filesystem::path scratchDir(const std::string& tag);

}  // namespace waitwatch::testing
