// SPDX-License-Identifier: Apache-2.0
#pragma once
// The live view (`waitwatch --watch` on a terminal, `waitwatch top`): one frame of exactly the
// terminal's size, from the latest sample, what earlier samples showed, and the keys pressed.
// Pure: values in, lines out; cli/terminal draws them.
//
// Top to bottom: a title line (source, time, interval, sort, filter), the totals per state with
// the firing alerts, the most severe alert, the column header, one row per process (the worst
// first, as many as fit, then "... N more"), the TIME-WAIT groups, and a line of keys.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "api/alerts_json.hpp"
#include "core/duration.hpp"
#include "core/snapshot.hpp"

namespace waitwatch::cli {

enum class LiveSort : std::uint8_t {
  CloseWait,       // c: CLOSE-WAIT sockets held
  Growth,          // g: CLOSE-WAIT growth over the trend's span
  TimeWaitClosed,  // t: TIME-WAIT sockets of connections it closed (a daemon's view)
  Age,             // a: the oldest CLOSE-WAIT socket (a daemon's view)
};

// What the operator chose with keys.
struct LiveControls {
  LiveSort sort = LiveSort::CloseWait;
  std::string filter;          // a case-insensitive substring of any cell; empty: all rows
  bool timeWaitGroups = true;  // w: show the TIME-WAIT groups
  bool typing = false;         // after '/': the key line edits `typed` until Enter or Esc
  std::string typed;
};

enum class KeyAction : std::uint8_t { None, Redraw, Quit };

// One byte of keyboard input. q (or Ctrl-D) quits; c, g, t, a sort; / starts a filter that Enter
// applies (empty: none) and Esc abandons; w toggles the TIME-WAIT groups.
KeyAction applyKey(LiveControls& controls, char key);
// What one read of the keyboard brought: escape sequences (arrow and function keys, the mouse
// wheel on many terminals, Alt-combinations) are skipped whole; an Esc alone at the end of the
// read is the Esc key. Quit wins over Redraw over None.
KeyAction applyKeys(LiveControls& controls, std::string_view bytes);

// The rows' CLOSE-WAIT counts over time: the change since the previous refresh and the trend.
class LiveHistory {
 public:
  // The trend is drawn in kTrendCells cells, each the last count seen in its span.
  static constexpr std::size_t kTrendCells = 10;

  // Records every process row of `snapshot`, taken at `at`; `interval` is the refresh interval
  // (a cell spans max(interval, 30 s)).
  void record(const Snapshot& snapshot, TimePoint at, Duration interval);

  struct Row {
    std::optional<std::int64_t> change;  // since the previous refresh; none on the first
    std::int64_t growth = 0;             // over the trend's span
    std::string trend;                   // kTrendCells glyphs, blank where nothing was seen
  };
  [[nodiscard]] Row row(std::uint64_t netnsInode, const ProcessKey& key, bool unicode) const;
  // The span the trend covers.
  [[nodiscard]] Duration span() const { return cell_ * static_cast<int>(kTrendCells); }

 private:
  struct Track {
    std::vector<std::pair<TimePoint, std::uint64_t>> samples;  // oldest first, within span()
    std::uint64_t previous = 0;  // at the refresh before the latest (0: not seen there)
    std::uint64_t seenAt = 0;    // the refresh it was last seen at
  };
  std::map<std::tuple<std::uint64_t, std::int32_t, std::uint64_t>, Track> tracks_;
  TimePoint latest_{};
  Duration cell_{std::chrono::seconds(30)};
  std::uint64_t refreshes_ = 0;
};

// One sample of what the view shows.
struct LiveSample {
  const Snapshot* snapshot = nullptr;  // null: nothing could be read (see notes)
  // A daemon's view: index-aligned with the snapshot's processes; empty otherwise.
  std::span<const SocketAge> closeWaitOldest{};
  // A daemon's firing alerts about the rows shown; null for a local view.
  const std::vector<api::AlertSummary>* alerts = nullptr;
  std::size_t alertsElsewhere = 0;  // firing alerts about processes the selection leaves out
  std::string source;               // "waitwatch on db-1", "waitwatchd 1.4.0 at http://..."
  double timeUnixSeconds = 0;       // when the sample was taken (a daemon: its poll)
  Duration interval{};
  std::vector<std::string> notes;  // warnings and errors of this sample
};

struct LiveFrame {
  static constexpr std::size_t kNoHeader = static_cast<std::size_t>(-1);
  std::vector<std::string> lines;      // exactly the height; none wider than the width
  std::size_t headerLine = kNoHeader;  // the column header, drawn in reverse video
  std::size_t width = 0;               // the screen's
};

struct LiveScreen {
  std::size_t width = 80;
  std::size_t height = 24;
  bool unicode = true;  // the terminal takes UTF-8: block glyphs for the trend
  bool keys = true;     // keys can be read (a terminal to read them from)
};

LiveFrame renderLive(const LiveSample& sample, const LiveHistory& history,
                     const LiveControls& controls, const LiveScreen& screen);

}  // namespace waitwatch::cli
