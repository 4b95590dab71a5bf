// SPDX-License-Identifier: Apache-2.0
#pragma once
// The `waitwatch` command line, parsed by a pure function so every bad argument has a test.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/duration.hpp"
#include "core/netns_selection.hpp"
#include "core/result.hpp"
#include "core/tcp_state.hpp"

namespace waitwatch::cli {

// Which sockets a view shows. Empty lists select everything.
struct Filter {
  TcpStateMask states = 0;             // 0: every state
  std::vector<std::uint16_t> ports{};  // local or remote port
  std::vector<std::int32_t> pids{};
  std::vector<std::string> units{};  // systemd unit, or container (runtime:id, id or id prefix)
  std::vector<std::string> containers{};     // container name, runtime:name, id or id prefix
  std::vector<std::string> pods{};           // Kubernetes pod name (or uid)
  std::vector<std::string> podNamespaces{};  // Kubernetes namespace

  [[nodiscard]] bool empty() const { return states == 0 && ports.empty() && !selectsOwners(); }
  // A filter on who holds the sockets (--pid, --unit, --container, --pod, --namespace), not
  // only on the sockets themselves.
  [[nodiscard]] bool selectsOwners() const {
    return !pids.empty() || !units.empty() || !containers.empty() || !pods.empty() ||
           !podNamespaces.empty();
  }
};

struct CliOptions {
  bool json = false;
  NamespaceSelection netns = NamespaceSelection::Host;
  std::string netnsName;  // NamespaceSelection::Named only: one `ip netns` name
  Filter filter;
  bool sockets = false;           // one line per socket (--sockets)
  bool udp = false;               // UDP sockets too (--udp)
  std::optional<Duration> watch;  // redisplay every so often (--watch SECONDS)
  std::string from;               // a daemon's base URL (--from), empty: this host
  // --from an https:// daemon with basic auth. The password is never an argument (ps shows
  // arguments to every user): it comes from --password-file or $WAITWATCH_PASSWORD.
  std::string cacert;        // --cacert FILE: the CA that signed the daemon's certificate
  std::string user;          // --user NAME, or the user@ of --from
  std::string passwordFile;  // --password-file FILE
  bool help = false;
  bool version = false;
};

// `args` excludes the program name. A bad argument gives an Error whose message is one line
// naming it (`--port: "80x" is not a port number (0-65535)`), for exit status 2.
Result<CliOptions> parseArguments(std::span<const std::string_view> args);

// "http://HOST:PORT" with the path dropped, from "http://HOST:PORT[/]" or "HOST:PORT";
// "user@" is kept, "user:password@" refused (a password in an argument shows in ps); an Error
// for anything else.
Result<std::string> parseDaemonUrl(std::string_view text);

// The --help text.
std::string usage();

}  // namespace waitwatch::cli
