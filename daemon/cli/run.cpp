// SPDX-License-Identifier: Apache-2.0
#include "cli/run.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <ostream>

#include "api/snapshot_json.hpp"
#include "cli/live.hpp"
#include "cli/options.hpp"
#include "cli/remote.hpp"
#include "cli/render.hpp"
#include "cli/selection.hpp"
#include "cli/terminal.hpp"
#include "cli/view.hpp"
#include "sys/clock.hpp"
#include "sys/unique_fd.hpp"
#include "waitwatch_version.hpp"

namespace waitwatch::cli {
namespace {

using json = nlohmann::ordered_json;

// One refresh: what goes to stdout, and the lines for stderr.
struct Frame {
  std::string out;
  std::vector<std::string> notes;  // warnings; printed on stderr (or in the frame under --watch)
  bool failed = false;             // nothing could be read
};

// `privilegeSaid`: the privilege warning, which counts the sockets it hides, was given.
std::string unattributedNote(const Snapshot& s, const char* what, bool privilegeSaid) {
  const std::uint64_t n = (privilegeSaid ? 0 : s.unattributedNoPermission) + s.unattributedVanished;
  if (n == 0) return {};
  std::string note = std::to_string(n) + " " + what + " socket(s) not attributed to a process:";
  const bool noPermission = !privilegeSaid && s.unattributedNoPermission > 0;
  if (noPermission) {
    note += " " + std::to_string(s.unattributedNoPermission) +
            " held by processes whose open files may not be read";
  }
  if (s.unattributedVanished > 0) {
    note += std::string(noPermission ? "," : "") + " " + std::to_string(s.unattributedVanished) +
            " closed, or their holder exited, while waitwatch looked";
  }
  return note;
}

std::string dumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + '\n';
}

// The port classes: IANA's, and the local ports the kernel may pick for connect() (the
// namespace's ip_local_port_range) are ephemeral too.
std::string portLegend(const Snapshot& s) {
  std::string range = "ip_local_port_range";
  if (!s.namespaces.empty()) {
    const EphemeralRange& first = s.namespaces.front().ephemeral;
    const bool same = std::all_of(s.namespaces.begin(), s.namespaces.end(), [&](const auto& n) {
      return n.ephemeral.low() == first.low() && n.ephemeral.high() == first.high();
    });
    if (same) {
      range += " " + std::to_string(first.low()) + "-" + std::to_string(first.high());
    } else {
      range += " of its namespace";
    }
  }
  return "(ports: 22w well-known 0-1023, 8080r registered 1024-49151, 50000e ephemeral "
         "49152-65535 or a local port in " +
         range + ")\n";
}

// "(2 more alerts firing about processes this view leaves out)"
std::string elsewhereNote(std::size_t n) {
  if (n == 0) return {};
  return "(" + std::to_string(n) + " more alert" + (n == 1 ? "" : "s") +
         " firing about processes this view leaves out)\n";
}

// The text view: alerts (a daemon's), processes or sockets, TIME_WAIT groups, UDP, totals.
std::string renderText(const CliOptions& o, const Snapshot& s, std::span<const SocketLine> sockets,
                       const RenderOptions& ro, const std::vector<api::AlertSummary>* alerts,
                       const Snapshot* udp, std::span<const SocketLine> udpSockets,
                       std::size_t alertsElsewhere = 0) {
  std::string text;
  auto section = [&](const std::string& part) {
    if (part.empty()) return;
    if (!text.empty()) text += '\n';
    text += part;
  };
  if (alerts != nullptr) section(renderAlerts(*alerts) + elsewhereNote(alertsElsewhere));
  if (o.sockets) {
    section(renderSockets(s, sockets));
  } else {
    section(renderProcessTable(s, ro));
    section(renderTimeWait(s, ro));
  }
  if (udp != nullptr) {
    section(o.sockets ? renderSockets(*udp, udpSockets, true) : renderUdp(*udp, udpSockets));
  }
  section(renderTotals(s));
  text += portLegend(s);
  if (!o.sockets) text += closeWaitKindLegend(s, o.filter.states);
  return text;
}

// One look: a local collection or a daemon's documents, filtered as asked.
struct Sample {
  std::vector<std::string> notes;
  bool failed = false;  // nothing to show (see notes)
  FilteredSnapshot tcp;
  FilteredSnapshot udp;
  bool hasUdp = false;
  bool ownersFromBpf = false;
  std::vector<std::string> reusedPrograms;  // Collection::reusedPrograms
  double timeUnixSeconds = 0;               // when it was taken (a daemon's: its poll)
  // A daemon's view.
  bool remote = false;
  std::string version;
  std::vector<SocketAge> ages;  // index-aligned with tcp.snapshot's processes
  AlertSelection alerts;
};

// The selection's notes into the sample; false (the sample failed) when nothing asked for was
// there to show.
bool takeSelection(SelectionCheck selection, Sample& sample) {
  for (std::string& n : selection.notes)
    sample.notes.push_back(std::move(n));
  sample.failed = sample.failed || selection.nothingReadable;
  return !selection.nothingReadable;
}

Sample localSample(const CliOptions& o, LocalCollector& collector, const Environment& env) {
  Sample sample;
  sample.timeUnixSeconds = static_cast<double>(realtimeMs()) / 1000.0;
  auto c = collector.collect(Clock::now());
  if (!c) {
    sample.failed = true;
    sample.notes.push_back(c.error().message);
    return sample;
  }
  for (std::string& w : c->warnings)
    sample.notes.push_back("warning: " + std::move(w));
  if (c->privilegeWarning) sample.notes.push_back("warning: " + *c->privilegeWarning);

  const bool narrowed = !o.filter.empty() || o.sockets;
  if (narrowed) {
    sample.tcp = filterWithSockets(c->snapshot, c->sockets, o.filter);
  } else {
    sample.tcp.snapshot = std::move(c->snapshot);
  }
  if (c->hasUdp) {
    Filter udpFilter = o.filter;
    udpFilter.states = 0;  // TCP states; UDP has none of them
    sample.udp = filterWithSockets(c->udp, c->udpSockets, udpFilter);
    sample.hasUdp = true;
  }
  sample.ownersFromBpf = c->ownersFromBpf;
  sample.reusedPrograms = std::move(c->reusedPrograms);
  // --pid and --unit name things that may not exist or may not be readable: an empty table
  // would then read as "holds no sockets".
  if (!takeSelection(checkSelection(o.filter, sample.tcp.snapshot, env.procRoot), sample)) {
    return sample;
  }
  const bool said = c->privilegeWarning.has_value();
  if (auto note = unattributedNote(sample.tcp.snapshot, "TCP", said); !note.empty()) {
    sample.notes.push_back(note);
  }
  if (auto note = unattributedNote(sample.udp.snapshot, "UDP", said); c->hasUdp && !note.empty()) {
    sample.notes.push_back(note);
  }
  return sample;
}

// `timeout`: for each request; the live view asks for less than the default, since it reads
// no key while it waits.
Sample remoteSample(const CliOptions& o, Duration timeout = std::chrono::seconds(30)) {
  Sample sample;
  sample.remote = true;
  auto view = fetchDaemonView(o, timeout);
  if (!view) {
    sample.failed = true;
    sample.notes.push_back(view.error().message);
    return sample;
  }
  const api::SnapshotDocument& doc = view->snapshot;
  sample.tcp = filterCounts(doc.snapshot, o.filter);
  // Against the whole snapshot: a process the state filter leaves out is still there.
  if (!takeSelection(checkRemoteSelection(o.filter, doc.snapshot, o.from), sample)) return sample;
  if (doc.hasAges) {
    for (std::uint32_t i : sample.tcp.origin)
      sample.ages.push_back(i < doc.closeWaitOldest.size() ? doc.closeWaitOldest[i] : SocketAge{});
  }
  sample.alerts = selectAlerts(std::move(view->alerts), o.filter, sample.tcp.snapshot);
  sample.version = doc.version;
  sample.timeUnixSeconds = doc.timeUnixSeconds;
  return sample;
}

Sample takeSample(const CliOptions& o, LocalCollector* collector, const Environment& env,
                  Duration timeout = std::chrono::seconds(30)) {
  return o.from.empty() ? localSample(o, *collector, env) : remoteSample(o, timeout);
}

// The plain output of a sample: text or JSON.
Frame plainFrame(const CliOptions& o, Sample sample) {
  Frame f;
  f.notes = std::move(sample.notes);
  f.failed = sample.failed;
  if (sample.failed) return f;
  const Snapshot& tcp = sample.tcp.snapshot;
  if (!sample.remote) {
    if (o.json) {
      // Under --watch each object is one sample of a series: say when it was taken, in the
      // daemon snapshot's key.
      json header = json::object();
      if (o.watch) header["time_unix_seconds"] = sample.timeUnixSeconds;
      // How the owners were found: one BPF pass over every process's fds, or /proc.
      header["owners_from"] = sample.ownersFromBpf ? "bpf" : "proc";
      // How the sockets were read, and which BPF programs were a running waitwatchd's.
      header["sockets_from"] = socketSourceName(tcp.socketSource);
      header["bpf_programs_reused"] = sample.reusedPrograms;
      json j = api::snapshotToJson(
          tcp, api::SnapshotJsonOptions{.commandLines = true, .header = &header});
      if (o.sockets) j["sockets"] = socketsJson(tcp, sample.tcp.sockets);
      if (sample.hasUdp) j["udp"] = udpJson(sample.udp.snapshot, sample.udp.sockets, o.sockets);
      f.out = dumpJson(j);
      return f;
    }
    const RenderOptions ro{.states = o.filter.states};
    f.out = renderText(o, tcp, sample.tcp.sockets, ro, nullptr,
                       sample.hasUdp ? &sample.udp.snapshot : nullptr, sample.udp.sockets);
    return f;
  }
  if (o.json) {
    const json header{{"source", o.from},
                      {"version", sample.version},
                      {"time_unix_seconds", sample.timeUnixSeconds}};
    json trailer{{"alerts", alertsJson(sample.alerts.about)}};
    if (o.filter.selectsOwners()) trailer["alerts_not_shown"] = sample.alerts.elsewhere;
    f.out = dumpJson(api::snapshotToJson(
        tcp, api::SnapshotJsonOptions{
                 .closeWaitOldest = sample.ages, .header = &header, .trailer = &trailer}));
    return f;
  }
  std::string head = "waitwatchd " + (sample.version.empty() ? std::string("?") : sample.version) +
                     " at " + o.from;
  if (sample.timeUnixSeconds > 0) head += ", poll of " + timeOfDay(sample.timeUnixSeconds);
  if (tcp.pollInterval.count() > 0) head += " (every " + humanDuration(tcp.pollInterval) + ")";
  const RenderOptions ro{.closeWaitOldest = sample.ages, .states = o.filter.states};
  f.out = head + "\n\n" +
          renderText(o, tcp, {}, ro, &sample.alerts.about, nullptr, {}, sample.alerts.elsewhere);
  if (auto note = unattributedNote(tcp, "TCP", false); !note.empty()) f.out += note + '\n';
  return f;
}

std::string commandLine(std::span<const std::string_view> args) {
  std::string line = "waitwatch";
  for (std::string_view a : args)
    line += " " + std::string(a);
  return line;
}

std::string hostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "this host";
  return name;
}

// Blocks `signals` in this thread for its lifetime; they are read from a signalfd or waited
// for, never handled, so no handler runs between the terminal's changes.
class BlockedSignals {
 public:
  explicit BlockedSignals(std::initializer_list<int> signals) {
    sigemptyset(&set_);
    for (int s : signals)
      sigaddset(&set_, s);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  }
  ~BlockedSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  BlockedSignals(const BlockedSignals&) = delete;
  BlockedSignals& operator=(const BlockedSignals&) = delete;
  [[nodiscard]] const sigset_t& set() const { return set_; }

 private:
  sigset_t set_{};
  sigset_t previous_{};
};

// Pipes, files and --json: the whole view reprinted at each refresh, complete.
int watchPlain(const CliOptions& o, std::span<const std::string_view> args, std::ostream& out,
               std::ostream& err, const Environment& env, LocalCollector* collector) {
  // SIGINT and SIGTERM are waited for, not handled: Ctrl-C ends the loop between refreshes.
  BlockedSignals stop({SIGINT, SIGTERM});
  const bool clear = env.stdoutIsTerminal && !o.json;
  int status = 0;
  for (;;) {
    const auto started = Clock::now();
    Frame f = plainFrame(o, takeSample(o, collector, env));
    std::string text;
    if (clear) {
      text = "\033[H\033[2J";
      text += "Every " + humanDuration(*o.watch) + ": " + commandLine(args) + "    " +
              timeOfDay(static_cast<double>(std::time(nullptr))) + "\n\n";
      for (const std::string& n : f.notes)
        text += n + '\n';
      if (!f.notes.empty()) text += '\n';
    } else {
      for (const std::string& n : f.notes)
        err << "waitwatch: " << n << '\n';
      if (!o.json) text = "--- " + timeOfDay(static_cast<double>(std::time(nullptr))) + '\n';
    }
    if (!f.failed) text += f.out;
    out << text << std::flush;
    if (!out) {
      status = 1;
      break;
    }
    const auto left = *o.watch - std::chrono::duration_cast<Duration>(Clock::now() - started);
    const Duration wait = std::max(left, Duration(10));
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wait.count() / 1000);
    ts.tv_nsec = static_cast<long>(wait.count() % 1000) * 1'000'000;
    int sig = -1;
    do {
      sig = ::sigtimedwait(&stop.set(), nullptr, &ts);
    } while (sig < 0 && errno == EINTR);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  if (clear) out << '\n' << std::flush;
  return status;
}

// Ctrl-Z: back to the shell with its screen as it was, stopped the way the shell expects
// (SIGTSTP, which the kernel discards for an orphaned process group, where nobody could resume
// a stopped process); `fg` brings the view back.
void suspend(Terminal& terminal) {
  terminal.leave();
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  struct sigaction previous {};
  ::sigaction(SIGTSTP, &dfl, &previous);
  sigset_t tstp;
  sigemptyset(&tstp);
  sigaddset(&tstp, SIGTSTP);
  ::raise(SIGTSTP);
  pthread_sigmask(SIG_UNBLOCK, &tstp, nullptr);  // delivered (stops) here
  pthread_sigmask(SIG_BLOCK, &tstp, nullptr);
  ::sigaction(SIGTSTP, &previous, nullptr);
  terminal.enter();
}

// A terminal: the full-screen live view, redrawn at each refresh, key and resize.
int watchLive(const CliOptions& o, std::ostream& err, const Environment& env,
              LocalCollector* collector) {
  BlockedSignals signals({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP, SIGCONT});
  const int sigFd = ::signalfd(-1, &signals.set(), SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigFd < 0) {
    err << "waitwatch: signalfd: " << std::strerror(errno) << '\n';
    return 1;
  }
  UniqueFd signalFd(sigFd);
  Terminal terminal(STDOUT_FILENO, STDIN_FILENO);
  terminal.enter();

  LiveControls controls;
  LiveHistory history;
  Sample sample;
  bool sampled = false;
  double lastPoll = -1;  // a daemon's poll already recorded
  std::string failure;   // why the view ended, said after the terminal is back
  const std::string source = o.from.empty() ? "waitwatch on " + hostName() : std::string();
  // A request may take at most two refreshes (at least 5 s): no key is read meanwhile.
  const Duration timeout =
      std::clamp<Duration>(*o.watch * 2, std::chrono::seconds(5), std::chrono::seconds(30));
  auto draw = [&] {
    LiveSample live;
    const bool data = sampled && !sample.failed;
    live.snapshot = data ? &sample.tcp.snapshot : nullptr;
    live.closeWaitOldest = sample.ages;
    live.alerts = sample.remote && data ? &sample.alerts.about : nullptr;
    live.alertsElsewhere = sample.alerts.elsewhere;
    live.source = o.from.empty() ? source
                                 : "waitwatchd " + (sample.version.empty() ? "?" : sample.version) +
                                       " at " + o.from;
    live.timeUnixSeconds = sample.timeUnixSeconds;
    live.interval = *o.watch;
    live.notes = sampled ? sample.notes
                         : std::vector<std::string>{o.from.empty() ? "reading the sockets..."
                                                                   : "asking " + o.from + "..."};
    if (terminal.draw(renderLive(live, history, controls, terminal.screen()))) return true;
    failure = std::string("cannot draw on the terminal: ") + std::strerror(errno);
    return false;
  };

  int status = 0;
  try {
    draw();
    auto next = Clock::now();
    for (bool quit = false; !quit;) {
      if (Clock::now() >= next) {
        const auto started = Clock::now();
        sample = takeSample(o, collector, env, timeout);
        sampled = true;
        if (!sample.failed && !sample.remote) {
          history.record(sample.tcp.snapshot, started, *o.watch);
        } else if (!sample.failed && sample.timeUnixSeconds != lastPoll) {
          // A daemon's poll once, at its own time: refreshes faster than it polls see the
          // same poll again.
          lastPoll = sample.timeUnixSeconds;
          history.record(sample.tcp.snapshot,
                         TimePoint(Duration(std::llround(sample.timeUnixSeconds * 1000))),
                         std::max(*o.watch, sample.tcp.snapshot.pollInterval));
        }
        next = started + *o.watch;
        if (!draw()) {
          status = 1;
          break;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
      pollfd fds[2] = {{signalFd.get(), POLLIN, 0}, {terminal.keysFd(), POLLIN, 0}};
      const int ready = ::poll(fds, terminal.keysFd() >= 0 ? 2 : 1,
                               static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
      if (ready < 0 && errno != EINTR) {
        failure = std::string("poll: ") + std::strerror(errno);
        status = 1;
        break;
      }
      bool redraw = false;
      if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        while (::read(signalFd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
          switch (info.ssi_signo) {
            case SIGWINCH:
            case SIGCONT:
              terminal.enter();
              redraw = true;
              break;
            case SIGTSTP:
              suspend(terminal);
              redraw = true;
              break;
            default:  // SIGINT, SIGTERM, SIGHUP, SIGQUIT
              quit = true;
          }
        }
      }
      if (ready > 0 && terminal.keysFd() >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) != 0) {
        char keys[64];
        const ssize_t n = ::read(terminal.keysFd(), keys, sizeof keys);
        if (n == 0 && (fds[1].revents & POLLHUP) != 0) quit = true;
        if (n > 0) {
          const KeyAction action =
              applyKeys(controls, std::string_view(keys, static_cast<std::size_t>(n)));
          quit = quit || action == KeyAction::Quit;
          redraw = redraw || action == KeyAction::Redraw;
        }
      }
      if (redraw && !quit && !draw()) {
        status = 1;
        break;
      }
    }
  } catch (...) {
    terminal.leave();
    throw;
  }
  terminal.leave();
  // What the screen showed is gone with the alternate screen: why the view ended, and a failure
  // it showed last, are said where they stay.
  if (!failure.empty()) err << "waitwatch: " << failure << '\n';
  if (sample.failed && !sample.notes.empty()) err << "waitwatch: " << sample.notes.front() << '\n';
  return status;
}

}  // namespace

int run(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
        const Environment& env) {
  auto options = parseArguments(args);
  if (!options) {
    err << "waitwatch: " << options.error().message << " (see waitwatch --help)\n";
    return 2;
  }
  const CliOptions& o = *options;
  if (o.help) {
    out << usage();
    return 0;
  }
  if (o.version) {
    out << "waitwatch " << kVersion << '\n';
    return 0;
  }

  std::unique_ptr<LocalCollector> collector;
  if (o.from.empty()) {
    collector = std::make_unique<LocalCollector>(
        CollectRequest{.netns = o.netns,
                       .netnsName = o.netnsName,
                       .keepSockets = o.sockets || !o.filter.empty(),
                       .udp = o.udp,
                       .reuseCache = o.watch.has_value()},
        env);
  }
  if (o.watch) {
    // The live view needs a terminal; --json is for programs and stays a stream of objects.
    if (env.stdoutIsTerminal && !o.json && !o.sockets && !o.udp) {
      return watchLive(o, err, env, collector.get());
    }
    return watchPlain(o, args, out, err, env, collector.get());
  }

  Frame f = plainFrame(o, takeSample(o, collector.get(), env));
  for (const std::string& n : f.notes)
    err << "waitwatch: " << n << '\n';
  if (f.failed) return 1;
  out << f.out << std::flush;
  return out.good() ? 0 : 1;
}

}  // namespace waitwatch::cli
