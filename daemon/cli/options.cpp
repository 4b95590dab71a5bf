// SPDX-License-Identifier: Apache-2.0
#include "cli/options.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>

#include "proc/proc_text.hpp"

namespace waitwatch::cli {
namespace {

Error bad(const std::string& what) {
  return Error{EINVAL, what};
}

// The value as the operator typed it, quoted and made printable for a one-line message.
std::string quoted(std::string_view value) {
  return "\"" + printable(value, 64) + "\"";
}

// "a,b,c" -> {"a", "b", "c"}; empty items are kept so that they can be reported.
std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> items;
  for (;;) {
    const auto comma = value.find(',');
    items.push_back(value.substr(0, comma));
    if (comma == std::string_view::npos) return items;
    value.remove_prefix(comma + 1);
  }
}

template <typename T>
std::optional<T> parseNumber(std::string_view text) {
  T v{};
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

template <typename T>
void addUnique(std::vector<T>& v, T value) {
  if (std::find(v.begin(), v.end(), value) == v.end()) v.push_back(std::move(value));
}

Result<void> applyNetns(std::string_view value, CliOptions& o) {
  // One selection: a second --netns would otherwise quietly replace the first.
  const std::string before = o.netns == NamespaceSelection::All ? "all" : o.netnsName;
  if (o.netns != NamespaceSelection::Host && before != value) {
    return bad("--netns given twice (" + quoted(before) + " and " + quoted(value) +
               "): give one namespace, or 'all'");
  }
  if (value == "all") {
    o.netns = NamespaceSelection::All;
    o.netnsName.clear();
  } else {
    o.netns = NamespaceSelection::Named;
    o.netnsName = std::string(value);
  }
  return {};
}

Result<void> applyState(std::string_view value, CliOptions& o) {
  for (std::string_view item : splitList(value)) {
    const auto s = parseTcpState(item);
    if (!s) {
      return bad("--state: " + quoted(item) +
                 " is not a TCP state (e.g. close-wait, time-wait, established, listen)");
    }
    o.filter.states |= stateBit(*s);
  }
  return {};
}

Result<void> applyPort(std::string_view value, CliOptions& o) {
  for (std::string_view item : splitList(value)) {
    if (item.starts_with(':')) item.remove_prefix(1);  // ":8080", as netstat prints it
    const auto port = parseNumber<std::uint32_t>(item);
    if (!port || *port > 65535) {
      return bad("--port: " + quoted(item) + " is not a port number (0-65535)");
    }
    addUnique(o.filter.ports, static_cast<std::uint16_t>(*port));
  }
  return {};
}

Result<void> applyPid(std::string_view value, CliOptions& o) {
  for (std::string_view item : splitList(value)) {
    const auto pid = parseNumber<std::int32_t>(item);
    if (!pid || *pid <= 0) return bad("--pid: " + quoted(item) + " is not a process id");
    addUnique(o.filter.pids, *pid);
  }
  return {};
}

Result<void> applyUnit(std::string_view value, CliOptions& o) {
  for (std::string_view item : splitList(value)) {
    if (item.empty()) {
      return bad("--unit: an empty name (expected a unit such as nginx.service, or a container)");
    }
    addUnique(o.filter.units, std::string(item));
  }
  return {};
}

// --container, --pod, --namespace: comma-separated names.
Result<void> applyNames(std::string_view option, std::string_view what, std::string_view value,
                        std::vector<std::string>& out) {
  for (std::string_view item : splitList(value)) {
    if (item.empty()) {
      return bad(std::string(option) + ": an empty name (expected " + std::string(what) + ")");
    }
    addUnique(out, std::string(item));
  }
  return {};
}

Result<void> applyContainer(std::string_view value, CliOptions& o) {
  return applyNames("--container", "a container's name or id", value, o.filter.containers);
}

Result<void> applyPod(std::string_view value, CliOptions& o) {
  return applyNames("--pod", "a Kubernetes pod's name", value, o.filter.pods);
}

Result<void> applyPodNamespace(std::string_view value, CliOptions& o) {
  return applyNames("--namespace", "a Kubernetes namespace", value, o.filter.podNamespaces);
}

Result<void> applyWatch(std::string_view value, CliOptions& o) {
  // Plain seconds ("2", "0.5") as netstat and watch take them, or a duration ("500ms", "1m").
  std::optional<Duration> d;
  double seconds = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && ptr == value.data() + value.size() && !value.empty() &&
      std::isfinite(seconds)) {
    if (seconds > 0 && seconds <= 86400) d = Duration(std::llround(seconds * 1000));
  } else {
    d = parseDuration(value);
  }
  if (!d || d->count() < 100 || *d > std::chrono::hours(24)) {
    return bad("--watch: " + quoted(value) +
               " is not an interval in seconds between 0.1 and 86400 (e.g. 2, 0.5, 1m)");
  }
  o.watch = d;
  return {};
}

Result<void> applyFrom(std::string_view value, CliOptions& o) {
  auto url = parseDaemonUrl(value);
  if (!url) return bad("--from: " + url.error().message);
  // "http://user@host:port": the user goes to `user`, so that the URL shown (and the one
  // given to libcurl) names no one.
  const auto hostStart = url->find("://") + 3;
  if (const auto at = url->rfind('@'); at != std::string::npos && at > hostStart) {
    const std::string user = url->substr(hostStart, at - hostStart);
    if (user.empty()) return bad("--from: " + quoted(value) + " has an empty user before '@'");
    if (!o.user.empty() && o.user != user) {
      return bad("--from names user " + quoted(user) + " and --user " + quoted(o.user) +
                 ": give one");
    }
    o.user = user;
    url->erase(hostStart, at + 1 - hostStart);
  }
  o.from = std::move(*url);
  return {};
}

Result<void> applyCacert(std::string_view value, CliOptions& o) {
  o.cacert = std::string(value);
  return {};
}

Result<void> applyUser(std::string_view value, CliOptions& o) {
  if (value.find(':') != std::string_view::npos) {
    return bad("--user: " + quoted(value) +
               " has a ':': give the password in WAITWATCH_PASSWORD or --password-file, never "
               "as an argument (ps shows arguments to every user)");
  }
  if (!o.user.empty() && o.user != value) {
    return bad("--user " + quoted(value) + " and the user of --from " + quoted(o.user) +
               ": give one");
  }
  o.user = std::string(value);
  return {};
}

Result<void> applyPasswordFile(std::string_view value, CliOptions& o) {
  o.passwordFile = std::string(value);
  return {};
}

struct ValueOption {
  std::string_view name;
  std::string_view missing;  // the error when the value is absent
  Result<void> (*apply)(std::string_view, CliOptions&);
};

constexpr ValueOption kValueOptions[] = {
    {"--netns", "--netns needs a value: 'all' or a namespace name", applyNetns},
    {"--state", "--state needs a value: a TCP state such as close-wait", applyState},
    {"--port", "--port needs a value: a port number", applyPort},
    {"--pid", "--pid needs a value: a process id", applyPid},
    {"--unit", "--unit needs a value: a systemd unit or a container", applyUnit},
    {"--container", "--container needs a value: a container's name or id", applyContainer},
    {"--pod", "--pod needs a value: a Kubernetes pod's name", applyPod},
    {"--namespace",
     "--namespace needs a value: a Kubernetes namespace (--netns is the network "
     "namespace)",
     applyPodNamespace},
    {"--watch", "--watch needs a value: the interval in seconds", applyWatch},
    {"--from", "--from needs a value: the daemon's address, http://HOST:PORT", applyFrom},
    {"--cacert",
     "--cacert needs a value: a PEM file of the CA that signed the daemon's "
     "certificate",
     applyCacert},
    {"--user", "--user needs a value: the user name for the daemon's basic auth", applyUser},
    {"--password-file", "--password-file needs a value: a file holding the password",
     applyPasswordFile},
};

// Options that cannot work together, checked once everything is parsed.
Result<void> checkCombinations(const CliOptions& o) {
  if (o.from.empty()) {
    for (auto [name, value] : {std::pair{"--cacert", &o.cacert}, std::pair{"--user", &o.user},
                               std::pair{"--password-file", &o.passwordFile}}) {
      if (!value->empty()) return bad(std::string(name) + " only works with --from");
    }
    return {};
  }
  if (!o.cacert.empty() && !o.from.starts_with("https://")) {
    return bad("--cacert needs an https:// daemon address in --from");
  }
  if (!o.passwordFile.empty() && o.user.empty()) {
    return bad("--password-file needs a user: --user NAME, or NAME@ in the --from URL");
  }
  // The daemon keeps per-socket detail for CLOSE_WAIT only, and chooses its namespaces itself.
  if (!o.filter.ports.empty()) {
    return bad(
        "--port cannot be used with --from: the daemon's snapshot has no per-socket list "
        "(run waitwatch on that host instead)");
  }
  if (o.sockets) {
    return bad(
        "--sockets cannot be used with --from: the daemon's snapshot has no per-socket "
        "list (run waitwatch on that host instead)");
  }
  if (o.udp) return bad("--udp cannot be used with --from: the daemon watches TCP only");
  if (o.netns != NamespaceSelection::Host) {
    return bad(
        "--netns cannot be used with --from: the daemon's configuration chooses its "
        "namespaces");
  }
  return {};
}

}  // namespace

Result<std::string> parseDaemonUrl(std::string_view text) {
  std::string_view rest = text;
  std::string scheme = "http";
  if (const auto sep = rest.find("://"); sep != std::string_view::npos) {
    scheme = std::string(rest.substr(0, sep));
    rest.remove_prefix(sep + 3);
    if (scheme != "http" && scheme != "https") {
      return Error{EINVAL, quoted(text) + " is not an http:// or https:// URL"};
    }
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return Error{EINVAL,
                   quoted(text) + " has a path: give the daemon's address only (http://HOST:PORT)"};
    }
    rest = rest.substr(0, slash);
  }
  const bool badChar = std::any_of(rest.begin(), rest.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == '?' || c == '#' || c == '\\';
  });
  // HOST:PORT, [V6]:PORT or just HOST (the scheme's port); user@ for basic auth.
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos && rest.substr(0, at).find(':') != std::string_view::npos) {
    return Error{EINVAL,
                 "a password in the URL shows in ps to every user: give the user only "
                 "(https://USER@HOST:PORT or --user) and the password in WAITWATCH_PASSWORD or "
                 "--password-file"};
  }
  const std::string_view hostPort = at == std::string_view::npos ? rest : rest.substr(at + 1);
  std::string_view port;
  std::string_view host = hostPort;
  if (hostPort.starts_with('[')) {
    const auto close = hostPort.find(']');
    if (close == std::string_view::npos) host = {};
    if (close != std::string_view::npos && close + 1 < hostPort.size()) {
      if (hostPort[close + 1] != ':') host = {};
      port = hostPort.substr(close + 2);
    }
  } else if (const auto colon = hostPort.rfind(':'); colon != std::string_view::npos) {
    host = hostPort.substr(0, colon);
    port = hostPort.substr(colon + 1);
    if (port.empty()) host = {};
  }
  if (badChar || host.empty() || host == "[]") {
    return Error{EINVAL, quoted(text) + " is not a daemon address (expected http://HOST:PORT)"};
  }
  if (!port.empty()) {
    const auto p = parseNumber<std::uint32_t>(port);
    if (!p || *p == 0 || *p > 65535) {
      return Error{EINVAL, quoted(text) + ": " + quoted(port) + " is not a port number (1-65535)"};
    }
  }
  return scheme + "://" + std::string(rest);
}

Result<CliOptions> parseArguments(std::span<const std::string_view> args) {
  CliOptions o;
  // `waitwatch top`: the live view, like --watch 2 on a terminal.
  const bool top = !args.empty() && args.front() == "top";
  for (std::size_t i = top ? 1 : 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      o.help = true;
      continue;
    }
    if (a == "--version" || a == "-V") {
      o.version = true;
      continue;
    }
    if (a == "--sockets") {
      o.sockets = true;
      continue;
    }
    if (a == "--udp") {
      o.udp = true;
      continue;
    }
    const ValueOption* option = nullptr;
    std::optional<std::string_view> value;
    for (const ValueOption& v : kValueOptions) {
      if (a == v.name) {
        option = &v;
        if (i + 1 < args.size()) value = args[++i];
      } else if (a.size() > v.name.size() && a.starts_with(v.name) && a[v.name.size()] == '=') {
        option = &v;
        value = a.substr(v.name.size() + 1);
      }
      if (option != nullptr) break;
    }
    if (option == nullptr) {
      if (a.starts_with("-")) return bad("unknown option '" + printable(a, 64) + "'");
      return bad("unexpected argument '" + printable(a, 64) + "'");
    }
    if (!value || value->empty()) return bad(std::string(option->missing));
    if (auto r = option->apply(*value, o); !r) return r.error();
  }
  if (top) {
    for (auto [name, set] : {std::pair{"--json", o.json}, std::pair{"--sockets", o.sockets},
                             std::pair{"--udp", o.udp}}) {
      if (set) {
        return bad(std::string("top is the live view of processes: ") + name +
                   " needs --watch instead");
      }
    }
    if (!o.watch) o.watch = std::chrono::seconds(2);
  }
  if (auto r = checkCombinations(o); !r) return r.error();
  return o;
}

std::string usage() {
  return R"(Usage: waitwatch [OPTIONS]
       waitwatch top [OPTIONS]     the live view (--watch 2 on a terminal)

Who holds TCP sockets, and in which states: one row per process (PID, user, systemd unit or
container, command) with its ESTABLISHED, CLOSE_WAIT, FIN_WAIT and LISTEN sockets, sorted by
CLOSE_WAIT; then the TIME_WAIT sockets by destination with the share of the ephemeral port
range each destination uses; then totals per state. Read from the kernel's own socket table
(NETLINK_SOCK_DIAG) and /proc/<pid>/fd.

Filters (a list may be comma-separated, and an option may be repeated):
  --state STATE      sockets in STATE: close-wait, time-wait, established, listen, fin-wait1,
                     fin-wait2, syn-sent, syn-recv, close, last-ack, closing (ss's names too:
                     estab, listening, closed, ...)
  --port N           sockets whose local or remote port is N: who is on this port
  --pid PID          sockets held by process PID
  --unit NAME        sockets held by processes of systemd unit NAME (nginx.service), or of a
                     container (docker:0123456789ab, or the container id or its prefix)
  --container NAME   sockets held by processes of a container: its name (as docker ps, or in
                     Kubernetes the container's name in its pod), or its id or id prefix
  --pod NAME         sockets held by processes of a Kubernetes pod
  --namespace NAME   sockets held by processes of pods in Kubernetes namespace NAME (the
                     network namespace is --netns)

Views:
  --sockets          one line per socket with its owners, like `ss -tanp`
  --udp              UDP sockets too: bound ports per process (UDP has its own port space)
  --json             the same data as one JSON object ("states", "namespaces", "processes",
                     "time_wait", "unattributed"; "sockets" and "udp" when asked for)
  --watch SECONDS    refresh every SECONDS (e.g. 2, 0.5, 1m) until interrupted (Ctrl-C or
                     q). On a terminal a full-screen live view: the worst processes first,
                     each with the change since the last refresh and its CLOSE-WAIT trend
                     over the last minutes; keys c g t a sort by CLOSE-WAIT, growth,
                     TIME-WAIT closed and age, / filters, w shows the TIME-WAIT groups.
                     Elsewhere (a pipe, --json, --sockets, --udp) each refresh is printed
                     in full

Where:
  --netns all|NAME   every network namespace on the host (found through /proc/*/ns/net and
                     /run/netns), or the `ip netns` namespace NAME; default: the namespace
                     waitwatch runs in
  --from URL         a running waitwatchd's view (http://HOST:PORT): its snapshot, with the
                     age of each process's oldest CLOSE_WAIT socket, and its firing alerts
                     (not with --port, --sockets, --udp or --netns)
  --cacert FILE      with an https:// URL: the CA certificate (PEM) that signed the daemon's
                     certificate (default: the system's CAs)
  --user NAME        the user for the daemon's basic auth (or https://NAME@HOST:PORT); the
                     password is read from --password-file FILE (its first line) or else
                     from the environment variable WAITWATCH_PASSWORD, never from an argument
  --password-file FILE  the file holding that password

  -h, --help         this text
  -V, --version      the version

Ports are marked with their class: w well-known (0-1023), r registered (1024-49151),
e ephemeral (49152-65535, and any local port in the namespace's ip_local_port_range, the
ports the kernel picks for connect(): a client port 48206 is 'e' where the range is
32768-60999).

KIND tells a CLOSE-WAIT leak's bug from the sockets' Recv-Q: a abandoned (not read since the
peer closed), e end-of-stream read and never closed, u data left unread (the reader stopped).
FDS: the open file descriptors of a process holding CLOSE-WAIT sockets, of its RLIMIT_NOFILE
soft limit (at it, accept() and socket() fail with EMFILE); with --from, RUNS-OUT: when the
daemon forecasts it gets there, at the rate its open files grow.

Run as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see the owners of other
users' sockets; without, they are counted but not attributed, and waitwatch says so. As root
(or with CAP_BPF and CAP_PERFMON) owners are found by one BPF pass in the kernel;
WAITWATCH_NO_BPF=1 in the environment reads /proc instead.

Who closed the connections now in TIME-WAIT only waitwatchd knows (it records every close):
see it with --from.

Exit status: 0 on success, 1 when nothing could be read (or the daemon could not be asked),
2 on bad arguments.
)";
}

}  // namespace waitwatch::cli
