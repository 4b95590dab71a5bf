// SPDX-License-Identifier: Apache-2.0
#include "cli/run.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <ostream>

#include "api/snapshot_json.hpp"
#include "cli/options.hpp"
#include "cli/remote.hpp"
#include "cli/render.hpp"
#include "cli/selection.hpp"
#include "cli/view.hpp"
#include "sys/clock.hpp"
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

// The selection's notes into the frame; false (the frame failed) when nothing asked for was
// there to show.
bool takeSelection(SelectionCheck selection, Frame& f) {
  for (std::string& n : selection.notes)
    f.notes.push_back(std::move(n));
  f.failed = f.failed || selection.nothingReadable;
  return !selection.nothingReadable;
}

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

// The text view: alerts (a daemon's), processes or sockets, TIME_WAIT groups, UDP, totals.
std::string renderText(const CliOptions& o, const Snapshot& s, std::span<const SocketLine> sockets,
                       const RenderOptions& ro, const std::vector<api::AlertSummary>* alerts,
                       const Snapshot* udp, std::span<const SocketLine> udpSockets) {
  std::string text;
  auto section = [&](const std::string& part) {
    if (part.empty()) return;
    if (!text.empty()) text += '\n';
    text += part;
  };
  if (alerts != nullptr) section(renderAlerts(*alerts));
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

Frame localFrame(const CliOptions& o, LocalCollector& collector, const Environment& env) {
  Frame f;
  const double wallSeconds = static_cast<double>(realtimeMs()) / 1000.0;
  auto c = collector.collect(Clock::now());
  if (!c) {
    f.failed = true;
    f.notes.push_back(c.error().message);
    return f;
  }
  for (std::string& w : c->warnings)
    f.notes.push_back("warning: " + std::move(w));
  if (c->privilegeWarning) f.notes.push_back("warning: " + *c->privilegeWarning);

  const bool narrowed = !o.filter.empty() || o.sockets;
  FilteredSnapshot tcp;
  if (narrowed) {
    tcp = filterWithSockets(c->snapshot, c->sockets, o.filter);
  } else {
    tcp.snapshot = std::move(c->snapshot);
  }
  FilteredSnapshot udp;
  if (c->hasUdp) {
    Filter udpFilter = o.filter;
    udpFilter.states = 0;  // TCP states; UDP has none of them
    udp = filterWithSockets(c->udp, c->udpSockets, udpFilter);
  }
  // --pid and --unit name things that may not exist or may not be readable: an empty table
  // would then read as "holds no sockets".
  if (!takeSelection(checkSelection(o.filter, tcp.snapshot, env.procRoot), f)) return f;
  const bool said = c->privilegeWarning.has_value();
  if (auto note = unattributedNote(tcp.snapshot, "TCP", said); !note.empty()) {
    f.notes.push_back(note);
  }
  if (auto note = unattributedNote(udp.snapshot, "UDP", said); c->hasUdp && !note.empty()) {
    f.notes.push_back(note);
  }

  if (o.json) {
    // Under --watch each object is one sample of a series: say when it was taken, in the
    // daemon snapshot's key.
    json header = json::object();
    if (o.watch) header["time_unix_seconds"] = wallSeconds;
    // How the owners were found: one BPF pass over every process's fds, or /proc.
    header["owners_from"] = c->ownersFromBpf ? "bpf" : "proc";
    json j = api::snapshotToJson(tcp.snapshot,
                                 api::SnapshotJsonOptions{.commandLines = true, .header = &header});
    if (o.sockets) j["sockets"] = socketsJson(tcp.snapshot, tcp.sockets);
    if (c->hasUdp) j["udp"] = udpJson(udp.snapshot, udp.sockets, o.sockets);
    f.out = dumpJson(j);
    return f;
  }
  const RenderOptions ro{.states = o.filter.states};
  f.out = renderText(o, tcp.snapshot, tcp.sockets, ro, nullptr, c->hasUdp ? &udp.snapshot : nullptr,
                     udp.sockets);
  return f;
}

Frame remoteFrame(const CliOptions& o) {
  Frame f;
  auto view = fetchDaemonView(o);
  if (!view) {
    f.failed = true;
    f.notes.push_back(view.error().message);
    return f;
  }
  const api::SnapshotDocument& doc = view->snapshot;
  FilteredSnapshot filtered = filterCounts(doc.snapshot, o.filter);
  // Against the whole snapshot: a process the state filter leaves out is still there.
  if (!takeSelection(checkRemoteSelection(o.filter, doc.snapshot, o.from), f)) return f;
  std::vector<SocketAge> ages;
  if (doc.hasAges) {
    for (std::uint32_t i : filtered.origin)
      ages.push_back(i < doc.closeWaitOldest.size() ? doc.closeWaitOldest[i] : SocketAge{});
  }
  if (o.json) {
    const json header{
        {"source", o.from}, {"version", doc.version}, {"time_unix_seconds", doc.timeUnixSeconds}};
    const json trailer{{"alerts", alertsJson(view->alerts)}};
    f.out = dumpJson(api::snapshotToJson(
        filtered.snapshot,
        api::SnapshotJsonOptions{.closeWaitOldest = ages, .header = &header, .trailer = &trailer}));
    return f;
  }
  std::string head =
      "waitwatchd " + (doc.version.empty() ? std::string("?") : doc.version) + " at " + o.from;
  if (doc.timeUnixSeconds > 0) head += ", poll of " + timeOfDay(doc.timeUnixSeconds);
  if (doc.snapshot.pollInterval.count() > 0) {
    head += " (every " + humanDuration(doc.snapshot.pollInterval) + ")";
  }
  const RenderOptions ro{.closeWaitOldest = ages, .states = o.filter.states};
  f.out = head + "\n\n" + renderText(o, filtered.snapshot, {}, ro, &view->alerts, nullptr, {});
  if (auto note = unattributedNote(filtered.snapshot, "TCP", false); !note.empty()) {
    f.out += note + '\n';
  }
  return f;
}

Frame frame(const CliOptions& o, LocalCollector* collector, const Environment& env) {
  return o.from.empty() ? localFrame(o, *collector, env) : remoteFrame(o);
}

std::string commandLine(std::span<const std::string_view> args) {
  std::string line = "waitwatch";
  for (std::string_view a : args)
    line += " " + std::string(a);
  return line;
}

int watch(const CliOptions& o, std::span<const std::string_view> args, std::ostream& out,
          std::ostream& err, const Environment& env, LocalCollector* collector) {
  // SIGINT and SIGTERM are waited for, not handled: Ctrl-C ends the loop between refreshes.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &stop, &previous);
  const bool clear = env.stdoutIsTerminal && !o.json;
  int status = 0;
  for (;;) {
    const auto started = Clock::now();
    Frame f = frame(o, collector, env);
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
      sig = ::sigtimedwait(&stop, nullptr, &ts);
    } while (sig < 0 && errno == EINTR);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  if (clear) out << '\n' << std::flush;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
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
  if (o.watch) return watch(o, args, out, err, env, collector.get());

  Frame f = frame(o, collector.get(), env);
  for (const std::string& n : f.notes)
    err << "waitwatch: " << n << '\n';
  if (f.failed) return 1;
  out << f.out << std::flush;
  return out.good() ? 0 : 1;
}

}  // namespace waitwatch::cli
