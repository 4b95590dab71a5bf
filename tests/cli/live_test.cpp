// SPDX-License-Identifier: Apache-2.0
// The live view's frames: always the screen's size, the worst rows first, the change since the
// last refresh and the trend from the history, the keys, and names cut where they differ least.
#include "cli/live.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/text.hpp"

namespace waitwatch::cli {
namespace {

using namespace std::chrono_literals;

ProcessEntry leaker(std::int32_t pid, std::uint64_t closeWait, std::string comm,
                    std::string unit = {}) {
  ProcessEntry p;
  p.info.key = ProcessKey{pid, 1000u + static_cast<std::uint64_t>(pid)};
  p.info.comm = comm;
  p.info.cmdline = "/usr/bin/" + comm + " --serve";
  p.info.user = "app";
  p.info.unit = std::move(unit);
  p.netns = 0;
  p.states[TcpState::CloseWait] = closeWait;
  p.states[TcpState::Established] = 2;
  p.closeWaitKinds[CloseWaitKind::Abandoned] = static_cast<std::uint32_t>(closeWait);
  return p;
}

// `n` leaking processes: pid 1000 + i holds 10 + i CLOSE_WAIT sockets, in unit
// "qa2-payments-settlement-shard-NN.service".
Snapshot host(int n) {
  Snapshot s;
  NetnsEntry ns;
  ns.ref = NetnsRef{4026531840u, "", "host"};
  s.namespaces.push_back(ns);
  for (int i = 0; i < n; ++i) {
    char unit[64];
    std::snprintf(unit, sizeof unit, "qa2-payments-settlement-shard-%02d.service", i);
    s.processes.push_back(leaker(1000 + i, 10u + static_cast<std::uint64_t>(i), "settle", unit));
  }
  for (const ProcessEntry& p : s.processes) {
    s.namespaces[0].states[TcpState::CloseWait] += p.states[TcpState::CloseWait];
    s.namespaces[0].states[TcpState::Established] += p.states[TcpState::Established];
  }
  return s;
}

LiveFrame frame(const Snapshot& s, const LiveHistory& h, const LiveControls& c, std::size_t width,
                std::size_t height, bool unicode = true) {
  LiveSample sample;
  sample.snapshot = &s;
  sample.source = "waitwatch on db-1";
  sample.timeUnixSeconds = 1'800'000'000;
  sample.interval = 2s;
  return renderLive(sample, h, c, LiveScreen{width, height, unicode});
}

std::string dump(const LiveFrame& f) {
  std::string out;
  for (const std::string& l : f.lines)
    out += "|" + l + "|\n";
  return out;
}

// The row of process `pid` (the PID column comes first), or the frame's size.
std::size_t rowOfPid(const LiveFrame& f, int pid) {
  const std::string p = std::to_string(pid) + " ";
  for (std::size_t i = f.headerLine + 1; i < f.lines.size(); ++i) {
    const std::string& l = f.lines[i];
    const auto start = l.find_first_not_of(' ');
    if (start != std::string::npos && l.compare(start, p.size(), p) == 0) return i;
  }
  return f.lines.size();
}

std::size_t rowOf(const LiveFrame& f, const std::string& text) {
  for (std::size_t i = 0; i < f.lines.size(); ++i) {
    if (f.lines[i].find(text) != std::string::npos) return i;
  }
  return f.lines.size();
}

void expectFits(const LiveFrame& f, std::size_t width, std::size_t height) {
  ASSERT_EQ(f.lines.size(), height);
  for (const std::string& l : f.lines)
    EXPECT_LE(displayWidth(l), width) << l;
}

TEST(LiveView, ThirtyLeakersAt80x24ShowTheHeaderAndTheWorstFirst) {
  const Snapshot s = host(30);
  LiveHistory h;
  h.record(s, TimePoint(100s), 2s);
  const LiveFrame f = frame(s, h, LiveControls{}, 80, 24);
  ASSERT_NO_FATAL_FAILURE(expectFits(f, 80, 24));
  EXPECT_EQ(f.lines[0].rfind("waitwatch on db-1  ", 0), 0u) << f.lines[0];
  EXPECT_NE(f.lines[0].find("sort: CLOSE-WAIT"), std::string::npos) << f.lines[0];
  // 30 processes of 10..39 sockets: 735.
  EXPECT_EQ(f.lines[1].rfind("CLOSE-WAIT 735  TIME-WAIT 0  ESTAB 60", 0), 0u) << f.lines[1];
  EXPECT_EQ(f.headerLine, 2u);
  EXPECT_NE(f.lines[2].find("PID"), std::string::npos);
  EXPECT_NE(f.lines[2].find("CLOSE-WAIT"), std::string::npos);
  // The worst first: pid 1029 with 39, then 1028.
  EXPECT_EQ(rowOfPid(f, 1029), 3u) << dump(f);
  EXPECT_NE(f.lines[3].find(" 39 "), std::string::npos) << f.lines[3];
  EXPECT_EQ(rowOfPid(f, 1028), 4u);
  // 24 lines: title, totals, header, 19 rows, "... N more", keys.
  EXPECT_EQ(f.lines[22], "... 11 more (165 CLOSE-WAIT)");
  EXPECT_EQ(f.lines[23].rfind("q quit", 0), 0u) << f.lines[23];
  // The units differ only at the end: it stays.
  EXPECT_NE(f.lines[3].find("...shard-29.service"), std::string::npos) << dump(f);
}

TEST(LiveView, AWideScreenShowsEveryRowAndWholeNames) {
  const Snapshot s = host(30);
  LiveHistory h;
  h.record(s, TimePoint(100s), 2s);
  const LiveFrame f = frame(s, h, LiveControls{}, 200, 50);
  ASSERT_NO_FATAL_FAILURE(expectFits(f, 200, 50));
  EXPECT_EQ(rowOf(f, "... "), f.lines.size()) << "every row fits";
  EXPECT_LT(rowOfPid(f, 1000), f.lines.size());
  EXPECT_LT(rowOf(f, "qa2-payments-settlement-shard-00.service"), f.lines.size());
  EXPECT_LT(rowOf(f, "settle --serve"), f.lines.size());
  EXPECT_NE(f.lines[f.headerLine].find("UNIT/CONTAINER"), std::string::npos);
  EXPECT_NE(f.lines[f.headerLine].find("USER"), std::string::npos);
}

TEST(LiveView, ChangeSinceTheLastRefreshAndTheTrend) {
  Snapshot s = host(3);
  LiveHistory h;
  h.record(s, TimePoint(0s), 2s);
  {
    const LiveFrame first = frame(s, h, LiveControls{}, 120, 20);
    EXPECT_EQ(rowOf(first, "+"), first.lines.size()) << "no change on the first refresh";
  }
  // pid 1000 grows by 12 at each of five refreshes, 30 s apart; pid 1001 stays.
  for (int i = 1; i <= 5; ++i) {
    s.processes[0].states[TcpState::CloseWait] += 12;
    h.record(s, TimePoint(std::chrono::seconds(30 * i)), 2s);
  }
  const LiveFrame f = frame(s, h, LiveControls{}, 120, 20);
  const std::size_t row = rowOfPid(f, 1000);
  ASSERT_LT(row, f.lines.size());
  EXPECT_NE(f.lines[row].find(" +12 "), std::string::npos) << f.lines[row];
  // Six cells, 30 s apart, rising from 10 to 70, drawn from zero to the highest.
  EXPECT_NE(f.lines[row].find("▂▃▄▅▆█"), std::string::npos) << f.lines[row];
  // 11 all along: flat at the top of its own scale.
  const std::size_t flat = rowOfPid(f, 1001);
  ASSERT_LT(flat, f.lines.size());
  EXPECT_NE(f.lines[flat].find("██████"), std::string::npos) << f.lines[flat];
  EXPECT_EQ(f.lines[flat].find('+'), std::string::npos) << f.lines[flat];
  // A terminal without UTF-8 gets ASCII.
  const LiveFrame ascii = frame(s, h, LiveControls{}, 120, 20, false);
  EXPECT_NE(ascii.lines[rowOfPid(ascii, 1000)].find(".-~=+#"), std::string::npos)
      << ascii.lines[rowOfPid(ascii, 1000)];
  EXPECT_NE(f.lines[f.headerLine].find("LAST 5m"), std::string::npos) << f.lines[f.headerLine];
}

TEST(LiveView, KeysSortFilterToggleAndQuit) {
  Snapshot s = host(3);
  LiveHistory h;
  h.record(s, TimePoint(0s), 2s);
  s.processes[0].states[TcpState::CloseWait] += 50;  // pid 1000: 10 -> 60, the fastest
  s.processes[2].states[TcpState::CloseWait] = 100;  // pid 1002: 12 -> 100, now the largest
  s.processes[1].states[TcpState::CloseWait] = 200;  // pid 1001: 11 -> 200
  h.record(s, TimePoint(40s), 2s);
  s.processes[1].states[TcpState::CloseWait] = 11;  // and back: it grew nothing over the span
  h.record(s, TimePoint(80s), 2s);

  LiveControls c;
  EXPECT_EQ(rowOfPid(frame(s, h, c, 100, 12), 1002), 3u);
  EXPECT_EQ(applyKey(c, 'g'), KeyAction::Redraw);
  const LiveFrame byGrowth = frame(s, h, c, 100, 12);
  EXPECT_EQ(rowOfPid(byGrowth, 1002), 3u) << dump(byGrowth);  // +88
  EXPECT_EQ(rowOfPid(byGrowth, 1000), 4u) << dump(byGrowth);  // +50
  EXPECT_NE(byGrowth.lines[0].find("sort: growth"), std::string::npos);
  // What the rows are sorted by shows.
  EXPECT_NE(byGrowth.lines[byGrowth.headerLine].find("GROWTH"), std::string::npos);
  EXPECT_NE(byGrowth.lines[3].find("+88"), std::string::npos) << byGrowth.lines[3];

  // "/" edits a filter on the key line; Enter applies it, Esc drops it.
  EXPECT_EQ(applyKey(c, '/'), KeyAction::Redraw);
  for (char k : std::string("1001"))
    applyKey(c, k);
  EXPECT_EQ(frame(s, h, c, 100, 12).lines.back().rfind("filter: 1001_", 0), 0u);
  EXPECT_EQ(applyKey(c, '\r'), KeyAction::Redraw);
  const LiveFrame filtered = frame(s, h, c, 100, 12);
  EXPECT_EQ(rowOfPid(filtered, 1001), 3u) << dump(filtered);
  EXPECT_EQ(filtered.lines[4], "");
  EXPECT_NE(filtered.lines[0].find("filter: 1001"), std::string::npos);
  applyKey(c, '/');
  applyKey(c, 127);  // Backspace
  applyKey(c, '9');
  EXPECT_EQ(applyKey(c, 27), KeyAction::Redraw);  // Esc: the filter stays as it was
  EXPECT_EQ(c.filter, "1001");
  applyKey(c, '/');
  applyKey(c, 'x');
  applyKey(c, '\n');
  EXPECT_NE(frame(s, h, c, 100, 12).lines[3].find("no row matches \"1001x\""), std::string::npos);
  EXPECT_EQ(applyKey(c, 27), KeyAction::Redraw);
  EXPECT_EQ(c.filter, "");

  // Arrow keys, the mouse wheel (arrow keys on the alternate screen) and function keys are
  // escape sequences: skipped whole, they neither drop the filter nor act as commands.
  applyKey(c, '/');
  for (char k : std::string("10"))
    applyKey(c, k);
  applyKey(c, '\r');
  EXPECT_EQ(applyKeys(c, "\033[A\033[B\033OP\033[5~\033[c\033g"), KeyAction::None);
  EXPECT_EQ(c.filter, "10");
  EXPECT_EQ(c.sort, LiveSort::Growth);
  EXPECT_EQ(applyKeys(c, "\033"), KeyAction::Redraw);  // Esc alone
  EXPECT_EQ(c.filter, "");
  EXPECT_EQ(applyKeys(c, "tq"), KeyAction::Quit);
  EXPECT_EQ(c.sort, LiveSort::TimeWaitClosed);
  c.sort = LiveSort::Growth;

  // Typed text is text: q does not quit while a filter is typed.
  applyKey(c, '/');
  EXPECT_EQ(applyKey(c, 'q'), KeyAction::Redraw);
  applyKey(c, 27);
  EXPECT_EQ(applyKey(c, 'w'), KeyAction::Redraw);
  EXPECT_FALSE(c.timeWaitGroups);
  EXPECT_EQ(applyKey(c, 'x'), KeyAction::None);
  EXPECT_EQ(applyKey(c, 'q'), KeyAction::Quit);
}

TEST(LiveView, TimeWaitGroupsAndClosersFromADaemon) {
  Snapshot s = host(2);
  s.closerSource = CloserSource::KernelProbe;
  TimeWaitGroup g;
  g.netns = 0;
  g.source = IpAddress::v4({10, 0, 0, 1});
  g.destination = Endpoint{IpAddress::v4({10, 0, 0, 9}), 5432};
  g.timeWait = 700;
  g.live = 3;
  g.portUsageRatio = 703.0 / 28232.0;
  s.timeWait.push_back(g);
  s.namespaces[0].states[TcpState::TimeWait] = 700;
  // Three short-lived curl processes closed 600 of them, pid 1000 the other 100.
  for (int i = 0; i < 3; ++i) {
    ProcessInfo curl;
    curl.key = ProcessKey{5000 + i, 7};
    curl.comm = "curl";
    curl.user = "cron";
    s.closers.push_back(curl);
    s.timeWaitByCloser.push_back(TimeWaitByCloser{0, static_cast<std::uint32_t>(i), 200, 20});
  }
  s.closers.push_back(s.processes[0].info);
  s.timeWaitByCloser.push_back(TimeWaitByCloser{0, 3, 100, 0});
  const std::vector<api::AlertSummary> alerts = {
      {.rule = "tw", .severity = "warning", .message = "curl closed 600 connections"},
      {.rule = "cw", .severity = "critical", .message = "settle[1001] holds 11 CLOSE_WAIT"}};
  const std::vector<SocketAge> ages = {{Duration(90'000), false}, {Duration(3'600'000), true}};

  LiveHistory h;
  h.record(s, TimePoint(0s), 2s);
  LiveSample sample;
  sample.snapshot = &s;
  sample.closeWaitOldest = ages;
  sample.alerts = &alerts;
  sample.alertsElsewhere = 1;
  sample.source = "waitwatchd 1.0 at http://db-1:9929";
  sample.interval = 2s;
  LiveControls c;
  LiveFrame f = renderLive(sample, h, c, LiveScreen{120, 16, true});
  ASSERT_NO_FATAL_FAILURE(expectFits(f, 120, 16));
  EXPECT_EQ(f.lines[1].rfind("2 ALERTS FIRING (1 more outside this view)   CLOSE-WAIT 21", 0), 0u)
      << f.lines[1];
  EXPECT_EQ(f.lines[2], "! critical cw: settle[1001] holds 11 CLOSE_WAIT");  // the most severe
  EXPECT_NE(f.lines[f.headerLine].find("OLDEST"), std::string::npos);
  EXPECT_NE(f.lines[f.headerLine].find("TW-CLOSED"), std::string::npos);
  EXPECT_NE(f.lines[rowOfPid(f, 1001)].find(">1h"), std::string::npos)
      << f.lines[rowOfPid(f, 1001)];
  const std::size_t tw = rowOf(f, "TIME-WAIT by destination (1 group)");
  ASSERT_LT(tw, f.lines.size());
  EXPECT_EQ(f.lines[tw + 1],
            "  700 TIME-WAIT  10.0.0.1 -> 10.0.0.9:5432r  3 live, 2.5% of the ports");

  applyKey(c, 't');
  f = renderLive(sample, h, c, LiveScreen{120, 16, true});
  // The exited curls are one row, first by TIME-WAIT closed; then pid 1000.
  EXPECT_NE(f.lines[f.headerLine + 1].find("curl (3 processes)"), std::string::npos)
      << f.lines[f.headerLine + 1];
  EXPECT_NE(f.lines[f.headerLine + 1].find(" 600 "), std::string::npos);
  EXPECT_EQ(rowOfPid(f, 1000), f.headerLine + 2) << dump(f);
  EXPECT_NE(f.lines[f.headerLine + 2].find(" 100 "), std::string::npos);
  applyKey(c, 'w');
  f = renderLive(sample, h, c, LiveScreen{120, 16, true});
  EXPECT_EQ(rowOf(f, "TIME-WAIT by destination"), f.lines.size());
}

TEST(LiveView, TinyScreensAndHostileTextStayInTheirBox) {
  Snapshot s = host(5);
  s.processes[0].info.cmdline = "evil\033[2J\033]0;title\007";
  s.processes[1].info.cmdline =
      "c1\xC2\x9B"
      "2J and invalid \xff bytes";
  LiveHistory h;
  h.record(s, TimePoint(0s), 2s);
  for (std::size_t w : {1u, 10u, 40u}) {
    for (std::size_t height : {1u, 2u, 5u}) {
      const LiveFrame f = frame(s, h, LiveControls{}, w, height);
      ASSERT_NO_FATAL_FAILURE(expectFits(f, w, height));
    }
  }
  const LiveFrame f = frame(s, h, LiveControls{}, 200, 20);
  for (const std::string& l : f.lines) {
    EXPECT_EQ(l.find('\033'), std::string::npos) << l;
    EXPECT_EQ(l.find("\xC2\x9B"), std::string::npos) << l;
    EXPECT_EQ(l.find('\xff'), std::string::npos) << l;
  }
  LiveSample failed;
  failed.source = "waitwatchd ? at http://x:1";
  failed.notes = {"http://x:1/api/v1/snapshot: connection refused"};
  const LiveFrame none = renderLive(failed, h, LiveControls{}, LiveScreen{60, 6, true});
  ASSERT_NO_FATAL_FAILURE(expectFits(none, 60, 6));
  EXPECT_EQ(none.lines[1], "no data");
  EXPECT_EQ(none.lines[2], "http://x:1/api/v1/snapshot: connection refused");
  EXPECT_EQ(none.headerLine, LiveFrame::kNoHeader);  // nothing drawn in reverse video
  // Without a keyboard the key line says how to quit.
  const LiveFrame noKeys = renderLive(failed, h, LiveControls{}, LiveScreen{60, 6, true, false});
  EXPECT_EQ(noKeys.lines.back().rfind("Ctrl-C quits", 0), 0u) << noKeys.lines.back();
  // A long source is cut; the sort and filter stay in the title.
  LiveControls filtered;
  filtered.filter = "api";
  failed.source = "waitwatchd 1.0 at https://a-rather-long-host-name.example.internal:9929";
  const LiveFrame title = renderLive(failed, h, filtered, LiveScreen{60, 6, true});
  EXPECT_NE(title.lines[0].find("filter: api"), std::string::npos) << title.lines[0];
}

TEST(CliText, CutsKeepTheirWidth) {
  EXPECT_EQ(cutMiddle("qa2-payments-settlement-shard-07.service", 24), "qa2-pay...ard-07.service");
  EXPECT_EQ(cutMiddle("short", 24), "short");
  EXPECT_EQ(cutEnd("java -jar /opt/app.jar", 12), "java -jar...");
  EXPECT_EQ(displayWidth(cutMiddle("ünïcödé-names-of-some-length", 10)), 10u);
  EXPECT_EQ(padLeft("12", 5), "   12");
  EXPECT_EQ(padRight("abcdef", 3), "abc");
}

}  // namespace
}  // namespace waitwatch::cli
