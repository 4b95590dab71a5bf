// SPDX-License-Identifier: Apache-2.0
#include "cli/live.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "cli/render.hpp"
#include "cli/text.hpp"
#include "core/tcp_state.hpp"
#include "proc/proc_text.hpp"

namespace waitwatch::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kMaxFilter = 64;
constexpr std::size_t kMaxNotes = 2;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Control characters (C0, DEL, C1) would move the cursor and break the frame, and invalid UTF-8
// draws wider than it counts: none reaches the terminal. A daemon's strings are outside input.
std::string safe(std::string_view s) {
  return printable(s, 4096);
}

std::string sortName(LiveSort s) {
  switch (s) {
    case LiveSort::CloseWait:
      return "CLOSE-WAIT";
    case LiveSort::Growth:
      return "growth";
    case LiveSort::TimeWaitClosed:
      return "TIME-WAIT closed";
    case LiveSort::Age:
      return "age";
  }
  return "?";
}

// "5m", "90s", "2h".
std::string spanText(Duration d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

// "+12", "-3"; blank when nothing changed, so that the rows that move stand out.
std::string signedCount(std::int64_t n) {
  if (n == 0) return "";
  return (n > 0 ? "+" : "") + std::to_string(n);
}

// One row: a process holding sockets in one namespace, or the processes of one name that closed
// connections now in TIME-WAIT and hold no socket any more (short-lived clients).
struct LiveRow {
  std::string netns;
  std::string pid;
  std::string user;
  std::string owner;  // unit or container
  std::string command;
  std::uint64_t closeWait = 0;
  std::uint64_t established = 0;
  std::uint64_t total = 0;
  std::uint64_t timeWaitClosed = 0;
  std::optional<SocketAge> oldest;
  std::string kinds;
  std::string runsOut;
  LiveHistory::Row history;
  std::int32_t pidValue = 0;
};

struct Column {
  std::string header;
  std::size_t width = 0;
  bool right = false;
  int dropOrder = 0;  // 0: always shown; otherwise dropped on narrow screens, highest first
  std::function<std::string(const LiveRow&)> cell;
};

std::string alertLine(const api::AlertSummary& a) {
  return "! " + a.severity + " " + a.rule + ": " + a.message;
}

std::vector<std::string> timeWaitLines(const Snapshot& s, std::size_t limit) {
  std::vector<const TimeWaitGroup*> groups;
  for (const TimeWaitGroup& g : s.timeWait) {
    if (g.timeWait > 0) groups.push_back(&g);
  }
  if (groups.empty() || limit < 2) return {};
  std::stable_sort(groups.begin(), groups.end(), usesMorePorts);
  const bool multiNs = s.namespaces.size() > 1;
  std::vector<std::string> lines{"TIME-WAIT by destination (" + std::to_string(groups.size()) +
                                 (groups.size() == 1 ? " group)" : " groups)")};
  for (const TimeWaitGroup* g : groups) {
    if (lines.size() == limit) break;
    std::string line = "  ";
    if (multiNs && g->netns < s.namespaces.size()) {
      line += s.namespaces[g->netns].ref.label() + "  ";
    }
    line += std::to_string(g->timeWait) + " TIME-WAIT  ";
    if (g->serverSide) {
      line += "clients of " + endpointWithClass(g->destination, rangeOf(s, g->netns));
      if (g->listener < s.processes.size()) {
        line += " (" + processName(s.processes[g->listener].info) + ")";
      }
    } else {
      line += g->source.toString() + " -> " +
              endpointWithClass(g->destination, peerRangeOf(s, g->netns, g->destination));
      char used[48];
      std::snprintf(used, sizeof used, "  %u live, %.1f%% of the ports", g->live,
                    g->portUsageRatio * 100.0);
      line += used;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::vector<LiveRow> buildRows(const LiveSample& sample, const LiveHistory& history, bool unicode) {
  const Snapshot& s = *sample.snapshot;
  const bool multiNs = s.namespaces.size() > 1;
  auto netnsLabel = [&](std::uint32_t i) {
    return i < s.namespaces.size() ? s.namespaces[i].ref.label() : std::string("?");
  };
  auto netnsInode = [&](std::uint32_t i) {
    return i < s.namespaces.size() ? s.namespaces[i].ref.inode : std::uint64_t{0};
  };

  // TIME-WAIT sockets by the process that closed their connections and the group's namespace.
  using Key = std::tuple<std::uint64_t, std::int32_t, std::uint64_t>;  // netns inode, process
  struct Closed {
    std::uint32_t closer = kNoIndex;
    std::uint32_t netns = kNoIndex;
    std::uint64_t timeWait = 0;
  };
  std::map<Key, Closed> closedBy;
  for (const TimeWaitByCloser& t : s.timeWaitByCloser) {
    if (t.group >= s.timeWait.size() || t.closer >= s.closers.size()) continue;
    const ProcessKey& k = s.closers[t.closer].key;
    const std::uint32_t ns = s.timeWait[t.group].netns;
    Closed& c = closedBy[std::make_tuple(netnsInode(ns), k.pid, k.startTime)];
    c.closer = t.closer;
    c.netns = ns;
    c.timeWait += t.timeWait;
  }

  std::vector<LiveRow> rows;
  for (std::size_t i = 0; i < s.processes.size(); ++i) {
    const ProcessEntry& p = s.processes[i];
    const auto key = std::make_tuple(netnsInode(p.netns), p.info.key.pid, p.info.key.startTime);
    LiveRow r;
    r.netns = multiNs ? netnsLabel(p.netns) : std::string();
    r.pidValue = p.info.key.pid;
    r.pid = std::to_string(p.info.key.pid);
    r.user = p.info.user;
    r.owner = ownerOrDash(p.info);
    r.command = command(p.info);
    r.closeWait = p.states[TcpState::CloseWait];
    r.established = p.states[TcpState::Established];
    r.total = p.states.total();
    if (auto it = closedBy.find(key); it != closedBy.end()) {
      r.timeWaitClosed = it->second.timeWait;
      closedBy.erase(it);
    }
    if (i < sample.closeWaitOldest.size() && r.closeWait > 0) r.oldest = sample.closeWaitOldest[i];
    if (p.closeWaitKinds.total() > 0) r.kinds = kindsCell(p.closeWaitKinds);
    if (p.fdForecast) {
      r.runsOut = p.fdForecast->exhaustion <= Duration::zero()
                      ? "now"
                      : "in " + shortAge(p.fdForecast->exhaustion);
    }
    r.history = history.row(std::get<0>(key), p.info.key, unicode);
    if (r.total == 0 && r.timeWaitClosed == 0) continue;
    rows.push_back(std::move(r));
  }

  // Closers that hold no socket now: one row per namespace, name, user and unit.
  std::map<std::tuple<std::uint32_t, std::string, std::string, std::string>, std::size_t> rowOf;
  std::vector<std::uint32_t> processesOf(rows.size(), 0);
  for (const auto& [key, closed] : closedBy) {
    const ProcessInfo& c = s.closers[closed.closer];
    const auto [at, inserted] = rowOf.try_emplace(
        std::make_tuple(closed.netns, c.comm, c.user, ownerOrDash(c)), rows.size());
    if (inserted) {
      LiveRow r;
      r.netns = multiNs ? netnsLabel(closed.netns) : std::string();
      r.pidValue = c.key.pid;
      r.pid = std::to_string(c.key.pid);
      r.user = c.user;
      r.owner = ownerOrDash(c);
      r.command = command(c);
      rows.push_back(std::move(r));
      processesOf.push_back(0);
    }
    LiveRow& r = rows[at->second];
    r.timeWaitClosed += closed.timeWait;
    if (++processesOf[at->second] > 1) {
      r.pid = "-";
      r.command = c.comm + " (" + std::to_string(processesOf[at->second]) + " processes)";
    }
  }
  return rows;
}

bool matches(const LiveRow& r, const std::string& pattern) {
  if (pattern.empty()) return true;
  const std::string needle = lower(pattern);
  for (const std::string* cell : {&r.pid, &r.user, &r.owner, &r.command, &r.netns}) {
    if (lower(*cell).find(needle) != std::string::npos) return true;
  }
  return false;
}

void sortRows(std::vector<LiveRow>& rows, LiveSort sort) {
  auto key = [sort](const LiveRow& r) -> std::int64_t {
    switch (sort) {
      case LiveSort::CloseWait:
        return static_cast<std::int64_t>(r.closeWait);
      case LiveSort::Growth:
        return r.history.growth;
      case LiveSort::TimeWaitClosed:
        return static_cast<std::int64_t>(r.timeWaitClosed);
      case LiveSort::Age:
        return r.oldest ? r.oldest->age.count() : -1;
    }
    return 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const LiveRow& a, const LiveRow& b) {
    if (key(a) != key(b)) return key(a) > key(b);
    if (a.closeWait != b.closeWait) return a.closeWait > b.closeWait;
    if (a.total != b.total) return a.total > b.total;
    return a.pidValue < b.pidValue;
  });
}

// The states this tool is about first, so that a narrow screen cuts the others.
std::string totalsLine(const Snapshot& s) {
  const StateCounts t = s.totals();
  std::string line = "CLOSE-WAIT " + std::to_string(t[TcpState::CloseWait]) + "  TIME-WAIT " +
                     std::to_string(t[TcpState::TimeWait]);
  for (TcpState st : kAllTcpStates) {
    if (t[st] > 0 && st != TcpState::CloseWait && st != TcpState::TimeWait) {
      line += "  " + std::string(ssStateName(st)) + " " + std::to_string(t[st]);
    }
  }
  return line + "  (TCP " + std::to_string(t.total()) + ")";
}

// `left` and `right` on one line of `width`: the left part is cut first, so that the view's
// sort and filter stay in sight; the right part goes only where nothing else would fit.
std::string spread(const std::string& left, const std::string& right, std::size_t width) {
  const std::size_t r = displayWidth(right);
  if (r + 12 > width) return cutEnd(left, width);
  const std::string l = cutMiddle(left, width - r - 2);
  return l + std::string(width - displayWidth(l) - r, ' ') + right;
}

std::string keyLine(const LiveControls& c, bool keys) {
  if (!keys) return "Ctrl-C quits (no keys: no terminal to read them from)";
  if (c.typing) return "filter: " + c.typed + "_   (Enter applies, Esc cancels)";
  return "q quit  sort: c close-wait g growth t tw-closed a age  / filter  w time-wait";
}

}  // namespace

KeyAction applyKey(LiveControls& c, char key) {
  if (c.typing) {
    if (key == '\r' || key == '\n') {
      c.filter = c.typed;
      c.typing = false;
      return KeyAction::Redraw;
    }
    if (key == 27) {  // Esc
      c.typing = false;
      return KeyAction::Redraw;
    }
    if (key == 127 || key == 8) {  // Backspace: one code point
      while (!c.typed.empty() && (static_cast<unsigned char>(c.typed.back()) & 0xC0) == 0x80)
        c.typed.pop_back();
      if (!c.typed.empty()) c.typed.pop_back();
      return KeyAction::Redraw;
    }
    if (key == 21) {  // Ctrl-U
      c.typed.clear();
      return KeyAction::Redraw;
    }
    if (static_cast<unsigned char>(key) >= 0x20 && key != 127 && c.typed.size() < kMaxFilter) {
      c.typed += key;
      return KeyAction::Redraw;
    }
    return KeyAction::None;
  }
  switch (key) {
    case 'q':
    case 'Q':
    case 4:  // Ctrl-D
      return KeyAction::Quit;
    case 'c':
      c.sort = LiveSort::CloseWait;
      return KeyAction::Redraw;
    case 'g':
      c.sort = LiveSort::Growth;
      return KeyAction::Redraw;
    case 't':
      c.sort = LiveSort::TimeWaitClosed;
      return KeyAction::Redraw;
    case 'a':
      c.sort = LiveSort::Age;
      return KeyAction::Redraw;
    case 'w':
      c.timeWaitGroups = !c.timeWaitGroups;
      return KeyAction::Redraw;
    case '/':
      c.typing = true;
      c.typed = c.filter;
      return KeyAction::Redraw;
    case 27:  // Esc: drop the filter
      if (c.filter.empty()) return KeyAction::None;
      c.filter.clear();
      return KeyAction::Redraw;
    default:
      return KeyAction::None;
  }
}

KeyAction applyKeys(LiveControls& c, std::string_view bytes) {
  KeyAction result = KeyAction::None;
  for (std::size_t i = 0; i < bytes.size() && result != KeyAction::Quit; ++i) {
    if (bytes[i] == 27 && i + 1 < bytes.size()) {
      // ESC [ params final (CSI), ESC O x (SS3), or ESC x (Alt-x): skipped whole.
      const char next = bytes[++i];
      if (next == '[') {
        while (i + 1 < bytes.size()) {
          const auto b = static_cast<unsigned char>(bytes[++i]);
          if (b >= 0x40 && b <= 0x7e) break;
        }
      } else if (next == 'O' && i + 1 < bytes.size()) {
        ++i;
      }
      continue;
    }
    const KeyAction a = applyKey(c, bytes[i]);
    if (a == KeyAction::Quit || (a == KeyAction::Redraw && result == KeyAction::None)) result = a;
  }
  return result;
}

void LiveHistory::record(const Snapshot& s, TimePoint at, Duration interval) {
  cell_ = std::max<Duration>(interval, 30s);
  ++refreshes_;
  latest_ = at;
  for (const ProcessEntry& p : s.processes) {
    const std::uint64_t inode = p.netns < s.namespaces.size() ? s.namespaces[p.netns].ref.inode : 0;
    Track& t = tracks_[std::make_tuple(inode, p.info.key.pid, p.info.key.startTime)];
    if (t.seenAt == refreshes_) {  // a second row of one process in one namespace: add up
      t.samples.back().second += p.states[TcpState::CloseWait];
      continue;
    }
    const bool seenBefore = refreshes_ > 1 && t.seenAt == refreshes_ - 1;
    t.previous = seenBefore && !t.samples.empty() ? t.samples.back().second : 0;
    t.samples.emplace_back(at, p.states[TcpState::CloseWait]);
    t.seenAt = refreshes_;
  }
  const TimePoint oldest = at - span();
  for (auto it = tracks_.begin(); it != tracks_.end();) {
    auto& samples = it->second.samples;
    samples.erase(samples.begin(),
                  std::find_if(samples.begin(), samples.end(),
                               [&](const auto& sample) { return sample.first > oldest; }));
    it = samples.empty() ? tracks_.erase(it) : std::next(it);
  }
}

LiveHistory::Row LiveHistory::row(std::uint64_t netnsInode, const ProcessKey& key,
                                  bool unicode) const {
  Row out;
  out.trend.assign(kTrendCells, ' ');
  const auto it = tracks_.find(std::make_tuple(netnsInode, key.pid, key.startTime));
  if (it == tracks_.end() || it->second.samples.empty()) return out;
  const Track& t = it->second;
  if (refreshes_ > 1 && t.seenAt == refreshes_) {
    out.change =
        static_cast<std::int64_t>(t.samples.back().second) - static_cast<std::int64_t>(t.previous);
  }
  out.growth = static_cast<std::int64_t>(t.samples.back().second) -
               static_cast<std::int64_t>(t.samples.front().second);

  // Each cell: the last count seen in its span, the newest cell on the right.
  std::array<std::optional<std::uint64_t>, kTrendCells> cells{};
  for (const auto& [at, count] : t.samples) {
    const auto back = (latest_ - at) / cell_;  // 0: the newest cell
    if (back < 0 || back >= static_cast<std::int64_t>(kTrendCells)) continue;
    cells[kTrendCells - 1 - static_cast<std::size_t>(back)] = count;
  }
  // From zero to the row's highest: 1000 -> 1001 is a flat line, not a climb from the bottom.
  std::uint64_t hi = 0;
  for (const auto& c : cells) {
    if (c) hi = std::max(hi, *c);
  }
  static constexpr std::array<std::string_view, 8> kBlocks = {"▁", "▂", "▃", "▄",
                                                              "▅", "▆", "▇", "█"};
  static constexpr std::string_view kAscii = "_.-~=+*#";
  std::string trend;
  for (const auto& c : cells) {
    if (!c) {
      trend += ' ';
      continue;
    }
    const std::size_t level = hi == 0 ? 0 : static_cast<std::size_t>(*c * 7 / hi);
    if (unicode) {
      trend += kBlocks[level];
    } else {
      trend += kAscii[level];
    }
  }
  out.trend = std::move(trend);
  return out;
}

LiveFrame renderLive(const LiveSample& sample, const LiveHistory& history,
                     const LiveControls& controls, const LiveScreen& screen) {
  const std::size_t width = std::max<std::size_t>(screen.width, 1);
  const std::size_t height = std::max<std::size_t>(screen.height, 1);
  LiveFrame frame;
  frame.width = width;
  std::vector<std::string>& lines = frame.lines;

  // Title: what, when, how often; on the right the view's sort and filter.
  std::string title = sample.source;
  if (sample.timeUnixSeconds > 0) title += "  " + timeOfDay(sample.timeUnixSeconds);
  if (sample.interval.count() > 0) title += "  every " + humanDuration(sample.interval);
  std::string view = "sort: " + sortName(controls.sort);
  if (!controls.filter.empty()) view += "  filter: " + controls.filter;
  lines.push_back(spread(title, view, width));

  const Snapshot* s = sample.snapshot;
  std::string totals = s != nullptr ? totalsLine(*s) : std::string("no data");
  if (sample.alerts != nullptr) {
    const std::size_t n = sample.alerts->size();
    std::string alerts = n == 0 ? "no alert firing"
                                : std::to_string(n) + (n == 1 ? " ALERT" : " ALERTS") + " FIRING";
    if (sample.alertsElsewhere > 0) {
      alerts += " (" + std::to_string(sample.alertsElsewhere) + " more outside this view)";
    }
    totals = alerts + "   " + totals;
  }
  lines.push_back(totals);
  if (sample.alerts != nullptr && !sample.alerts->empty()) {
    const api::AlertSummary* worst = &sample.alerts->front();
    for (const api::AlertSummary& a : *sample.alerts) {
      if (a.severity == "critical" && worst->severity != "critical") worst = &a;
    }
    lines.push_back(alertLine(*worst));
  }
  for (std::size_t i = 0; i < sample.notes.size() && i < kMaxNotes; ++i)
    lines.push_back(sample.notes[i]);

  const std::string keys = keyLine(controls, screen.keys);
  std::size_t room = height > lines.size() + 1 ? height - lines.size() - 1 : 0;

  if (s != nullptr && room > 0) {
    std::vector<LiveRow> rows = buildRows(sample, history, screen.unicode);
    const std::size_t all = rows.size();
    std::erase_if(rows, [&](const LiveRow& r) { return !matches(r, controls.filter); });
    sortRows(rows, controls.sort);

    const bool multiNs = s->namespaces.size() > 1;
    const bool ages = !sample.closeWaitOldest.empty();
    const bool kinds =
        std::any_of(rows.begin(), rows.end(), [](const LiveRow& r) { return !r.kinds.empty(); });
    const bool runsOut =
        std::any_of(rows.begin(), rows.end(), [](const LiveRow& r) { return !r.runsOut.empty(); });
    const bool closers = s->closerSource != CloserSource::None;

    std::vector<Column> fixed;
    fixed.push_back({"PID", 7, true, 0, [](const LiveRow& r) { return r.pid; }});
    if (multiNs) fixed.push_back({"NETNS", 12, false, 3, [](const LiveRow& r) { return r.netns; }});
    fixed.push_back(
        {"CLOSE-WAIT", 10, true, 0, [](const LiveRow& r) { return std::to_string(r.closeWait); }});
    fixed.push_back({"CHANGE", 6, true, 0, [](const LiveRow& r) {
                       return r.history.change ? signedCount(*r.history.change) : std::string();
                     }});
    if (controls.sort == LiveSort::Growth) {
      fixed.push_back(
          {"GROWTH", 8, true, 0, [](const LiveRow& r) { return signedCount(r.history.growth); }});
    }
    fixed.push_back({"LAST " + spanText(history.span()), LiveHistory::kTrendCells, false, 0,
                     [](const LiveRow& r) { return r.history.trend; }});
    if (ages) {
      fixed.push_back({"OLDEST", 7, true, 0, [](const LiveRow& r) {
                         if (!r.oldest) return std::string("-");
                         return (r.oldest->lowerBound ? ">" : "") + shortAge(r.oldest->age);
                       }});
    }
    // Numbers are never cut: these columns are as wide as their widest cell, or dropped.
    if (kinds) fixed.push_back({"KIND", 24, false, 4, [](const LiveRow& r) { return r.kinds; }});
    if (runsOut) {
      fixed.push_back({"RUNS-OUT", 12, true, 2, [](const LiveRow& r) { return r.runsOut; }});
    }
    if (closers) {
      fixed.push_back({"TW-CLOSED", 9, true, 0,
                       [](const LiveRow& r) { return std::to_string(r.timeWaitClosed); }});
    }
    fixed.push_back(
        {"ESTAB", 6, true, 6, [](const LiveRow& r) { return std::to_string(r.established); }});
    fixed.push_back({"USER", 9, false, 5, [](const LiveRow& r) { return r.user; }});

    // Each fixed column as wide as its header or widest cell, up to its width.
    for (Column& c : fixed) {
      std::size_t w = displayWidth(c.header);
      for (const LiveRow& r : rows)
        w = std::max(w, displayWidth(c.cell(r)));
      c.width = std::min(c.width, w);
    }
    // UNIT/CONTAINER and COMMAND share what the fixed columns leave. They want their longest
    // name, up to half the screen: until they have it, the least telling fixed columns go.
    std::size_t longestOwner = 4;
    std::size_t longestCommand = 7;
    for (const LiveRow& r : rows) {
      longestOwner = std::max(longestOwner, displayWidth(r.owner));
      longestCommand = std::max(longestCommand, displayWidth(r.command));
    }
    const std::size_t gap = width >= 120 ? 2 : 1;
    auto rest = [&] {
      std::size_t used = 0;
      for (const Column& c : fixed)
        used += c.width + gap;
      used += gap;  // between the two name columns
      return width > used ? width - used : 0;
    };
    const std::size_t wanted = std::min(longestOwner + longestCommand, width / 2);
    while (rest() < wanted) {
      auto drop = std::max_element(
          fixed.begin(), fixed.end(),
          [](const Column& a, const Column& b) { return a.dropOrder < b.dropOrder; });
      if (drop == fixed.end() || drop->dropOrder == 0) break;
      fixed.erase(drop);
    }
    const std::size_t names = rest();
    std::size_t ownerWidth = longestOwner;
    if (longestOwner + longestCommand > names) {
      ownerWidth =
          std::min(longestOwner,
                   std::max(names * 2 / 5, names > longestCommand ? names - longestCommand : 0));
    }
    ownerWidth = std::min(ownerWidth, names);
    const std::size_t commandWidth = names > ownerWidth ? names - ownerWidth : 0;

    auto render = [&](const std::function<std::string(const Column&)>& fixedCell,
                      const std::string& owner, const std::string& cmd) {
      std::string line;
      for (const Column& c : fixed) {
        const std::string cell = fixedCell(c);
        line += c.right ? padLeft(cell, c.width) : padRight(cell, c.width);
        line.append(gap, ' ');
      }
      if (ownerWidth > 0) line += padRight(cutMiddle(owner, ownerWidth), ownerWidth);
      line.append(gap, ' ');
      if (commandWidth > 0) line += cutMiddle(cmd, commandWidth);
      while (!line.empty() && line.back() == ' ')
        line.pop_back();
      return line;
    };

    std::vector<std::string> tw;
    if (controls.timeWaitGroups && room > 6)
      tw = timeWaitLines(*s, std::max<std::size_t>(3, room / 4));
    const std::size_t rowRoom = room - 1 - tw.size();  // 1: the column header
    frame.headerLine = lines.size();
    lines.push_back(render([](const Column& c) { return c.header; },
                           ownerWidth >= 14 ? "UNIT/CONTAINER" : "UNIT", "COMMAND"));
    std::size_t shown = 0;
    if (rows.empty()) {
      lines.push_back(controls.filter.empty()
                          ? (all == 0 ? "no process holds TCP sockets in this view" : "")
                          : "no row matches \"" + controls.filter + "\" (Esc shows all)");
    } else {
      const std::size_t fit =
          rows.size() <= rowRoom ? rows.size() : (rowRoom > 0 ? rowRoom - 1 : 0);
      for (; shown < fit; ++shown) {
        const LiveRow& r = rows[shown];
        lines.push_back(render([&](const Column& c) { return c.cell(r); }, r.owner, r.command));
      }
      if (shown < rows.size() && rowRoom > 0) {
        std::uint64_t closeWait = 0;
        for (std::size_t i = shown; i < rows.size(); ++i)
          closeWait += rows[i].closeWait;
        lines.push_back("... " + std::to_string(rows.size() - shown) + " more (" +
                        std::to_string(closeWait) + " CLOSE-WAIT)");
      }
    }
    while (lines.size() + tw.size() + 1 < height)
      lines.emplace_back();
    for (std::string& l : tw)
      lines.push_back(std::move(l));
  }
  while (lines.size() + 1 < height)
    lines.emplace_back();
  lines.resize(height - 1);
  lines.push_back(keys);
  for (std::string& l : lines)
    l = cutEnd(safe(l), width);
  if (frame.headerLine >= lines.size()) frame.headerLine = LiveFrame::kNoHeader;
  return frame;
}

}  // namespace waitwatch::cli
