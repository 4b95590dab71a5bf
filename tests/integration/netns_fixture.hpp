// SPDX-License-Identifier: Apache-2.0
#pragma once
// Support for integration tests: private network namespaces, commands run inside them, sockfarm
// (real sockets in exact TCP states, see README.md), and `ss` output turned into counts.
// Every namespace is deleted by its owner's destructor, so a failing test cleans up too; a
// namespace left behind by a crashed test run is deleted by the next create().
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/tcp_state.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::testing {

using Millis = std::chrono::milliseconds;

struct CommandResult {
  int exitCode = -1;  // the exit status; 128 + N when killed by signal N
  bool timedOut = false;
  std::string out;
  std::string err;
  // "exit 2, stderr: ..." for assertion messages.
  [[nodiscard]] std::string describe() const;
};

// Runs `argv` (no shell), capturing stdout and stderr; kills it after `timeout`.
CommandResult runCommand(const std::vector<std::string>& argv, Millis timeout = Millis(60000));

bool isRoot();

// A network namespace of its own (`ip netns add ww-<pid>-<n>`) with lo up, where TIME_WAIT
// sockets live their full 60 s: tcp_tw_reuse 0 and tcp_rfc1337 1.
class NetworkNamespace {
 public:
  static Result<NetworkNamespace> create();

  NetworkNamespace(NetworkNamespace&& other) noexcept;
  NetworkNamespace& operator=(NetworkNamespace&& other) noexcept;
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;
  ~NetworkNamespace();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::uint64_t inode() const { return inode_; }
  // {"ip", "netns", "exec", name}: prepend to run something inside.
  [[nodiscard]] std::vector<std::string> execPrefix() const;
  [[nodiscard]] CommandResult run(const std::vector<std::string>& argv,
                                  Millis timeout = Millis(60000)) const;

 private:
  NetworkNamespace(std::string name, std::uint64_t inode) : name_(std::move(name)), inode_(inode) {}
  void remove();

  std::string name_;
  std::uint64_t inode_ = 0;
};

// One line of `ss -Htan` / `ss -Htanp` / `ss -Htane`.
struct SsSocket {
  TcpState state = TcpState::Close;
  std::uint32_t recvQ = 0;
  std::uint32_t sendQ = 0;
  std::string local;  // as ss prints it: "127.0.0.1:8080", "[::1]:8080"
  std::string peer;
  std::vector<int> pids;             // with -p: the owners' pids, each once
  std::optional<std::uint32_t> uid;  // with -e: "uid:N" (ss prints it only when N != 0)
  std::uint64_t inode = 0;           // with -e: "ino:N"
};

// Parses ss output without its header (-H). Errors name the line.
Result<std::vector<SsSocket>> parseSs(std::string_view text);
StateCounts countStates(const std::vector<SsSocket>& sockets);
// Per owner pid; a socket with two owners counts for each.
std::map<int, StateCounts> countByPid(const std::vector<SsSocket>& sockets);
// Runs `ss -Htan` plus `extraFlags` ("p", "e") in the namespace and parses it.
Result<std::vector<SsSocket>> ssSockets(const NetworkNamespace& ns,
                                        std::string_view extraFlags = "");

// StateCounts from a JSON object mapping state names ("CLOSE_WAIT") to counts.
Result<StateCounts> statesFromJson(const nlohmann::json& object);
// "CLOSE_WAIT=3 TIME_WAIT=5" (non-zero states only), for assertion messages.
std::string describe(const StateCounts& counts);

// The path of the built sockfarm binary.
std::string sockfarmPath();

// A running sockfarm inside a namespace. start() returns once it printed READY; the destructor
// stops it (stdin EOF, then SIGKILL after a grace period).
class SockFarm {
 public:
  static Result<SockFarm> start(const NetworkNamespace& ns, const std::vector<std::string>& args,
                                Millis readyTimeout = Millis(60000));
  // Another tool that speaks the same protocol (a JSON line, READY, a JSON line per command):
  // fdleak.
  static Result<SockFarm> startProgram(const NetworkNamespace& ns, const std::string& program,
                                       const std::vector<std::string>& args,
                                       Millis readyTimeout = Millis(60000));

  SockFarm(SockFarm&& other) noexcept;
  SockFarm& operator=(SockFarm&& other) noexcept;
  SockFarm(const SockFarm&) = delete;
  SockFarm& operator=(const SockFarm&) = delete;
  ~SockFarm();

  // The JSON line sockfarm printed before READY.
  [[nodiscard]] const nlohmann::json& report() const { return report_; }
  // The sockets that exist in the namespace, by state (the report's "states").
  [[nodiscard]] StateCounts expectedStates() const;
  // Holder entries of the report ("role": "holder" or "sharer").
  [[nodiscard]] const nlohmann::json& holders() const { return report_.at("holders"); }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Sends one stdin command ("exit 1") and returns the JSON line it answers with.
  Result<nlohmann::json> command(std::string_view line, Millis timeout = Millis(20000));
  // Closes stdin and waits for the exit status (SIGKILL after `timeout`).
  Result<int> stop(Millis timeout = Millis(20000));

 private:
  SockFarm() = default;
  Result<std::string> readLine(Millis timeout);
  [[nodiscard]] std::string stderrText() const;

  pid_t pid_ = -1;
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;  // a memfd the child writes its stderr to
  std::string buffered_;
  nlohmann::json report_;
};

// Fixture base: skips without root, gives every test a fresh namespace in `netns()`.
class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  NetworkNamespace& netns() { return *netns_; }

  std::optional<NetworkNamespace> netns_;
};

// sockfarm arguments for every kind of socket: both families, several holders and a shared
// socket. Per family: 3 listeners, 21 ESTABLISHED, 30 + 5 + 2 CLOSE_WAIT (the shared ones),
// 10 FIN_WAIT2, 40 + 5 TIME_WAIT.
inline const std::vector<std::string> kMixedFarmArgs = {"--family",
                                                        "46",
                                                        "--listen",
                                                        "2",
                                                        "--established",
                                                        "21",
                                                        "--close-wait",
                                                        "30",
                                                        "--close-wait-unread",
                                                        "5:1000",
                                                        "--fin-wait2",
                                                        "10",
                                                        "--time-wait",
                                                        "40",
                                                        "--server-time-wait",
                                                        "5",
                                                        "--holders",
                                                        "3",
                                                        "--shared",
                                                        "2"};

}  // namespace waitwatch::testing
