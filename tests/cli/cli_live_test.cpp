// SPDX-License-Identifier: Apache-2.0
// `waitwatch top` in a real terminal: tmux at 80x24 and 200x50 in front of 32 leaking processes
// in a private namespace. The header and the worst offender show, with their growth; no line
// wraps and nothing scrolls; a resize redraws at the new size; keys sort and quit; and the
// terminal is given back as it was, on q and on Ctrl-C.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "netns_fixture.hpp"
#include "support/text_lines.hpp"

namespace waitwatch::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kHolders = 30;  // 20 CLOSE_WAIT each
constexpr int kWorst = 150;   // one more holder with 150: the top offender

// Display width of UTF-8: one column per code point (the view's glyphs are all one wide).
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// A tmux server of its own (its own socket, no user configuration), killed at the end.
class Tmux {
 public:
  Tmux() : socket_("waitwatch-test-" + std::to_string(::getpid())) {}
  ~Tmux() { runCommand({"tmux", "-L", socket_, "kill-server"}, 5s); }

  CommandResult run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"tmux", "-L", socket_});
    return runCommand(args, 10s);
  }
  // The visible screen, wrapped lines joined (-J): a line wider than the window wrapped.
  std::vector<std::string> screen() const {
    return splitLines(run({"capture-pane", "-p", "-J", "-t", "ww"}).out);
  }
  std::string format(const std::string& f) const {
    std::string out = run({"display-message", "-p", "-t", "ww", f}).out;
    while (!out.empty() && out.back() == '\n')
      out.pop_back();
    return out;
  }
  bool waitFor(const std::function<bool(const std::vector<std::string>&)>& seen,
               std::chrono::milliseconds timeout = 20s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (seen(screen())) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

 private:
  std::string socket_;
};

bool contains(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines)
    out += "|" + l + "\n";
  return out;
}

// The first process row: the line after the column header.
std::string firstRow(const std::vector<std::string>& lines) {
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].find("PID") != std::string::npos &&
        lines[i].find("COMMAND") != std::string::npos) {
      return lines[i + 1];
    }
  }
  return {};
}

class CliLiveTest : public NetnsTest {
 protected:
  void SetUp() override {
    if (::access(WAITWATCH_CLI_PATH, X_OK) != 0) GTEST_SKIP() << "no " << WAITWATCH_CLI_PATH;
    if (runCommand({"sh", "-c", "command -v tmux"}).exitCode != 0) {
      GTEST_SKIP() << "tmux is not installed (Debian package tmux)";
    }
    NetnsTest::SetUp();
    dir_ =
        std::filesystem::temp_directory_path() / ("waitwatch-live-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A shell in the pane notes the terminal's settings, runs the view, notes its exit status and
  // the settings again, and waits. Like an interactive shell it outlives a Ctrl-C of its child.
  void startView(const Tmux& tmux, int width, int height) {
    const std::string script = "trap : INT; stty -g > " + (dir_ / "before").string() +
                               "; env LANG=C.UTF-8 " + WAITWATCH_CLI_PATH + " top --netns " +
                               netns().name() + "; echo EXITED=$? > " + (dir_ / "status").string() +
                               "; stty -g > " + (dir_ / "after").string() + "; exec sleep 600";
    const auto r =
        tmux.run({"-f", "/dev/null", "new-session", "-d", "-s", "ww", "-x", std::to_string(width),
                  "-y", std::to_string(height), "bash", "-c", script});
    ASSERT_EQ(r.exitCode, 0) << r.describe();
  }

  std::string file(const char* name) const {
    std::ifstream in(dir_ / name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  bool waitForFile(const char* name) const {
    for (int i = 0; i < 100; ++i) {
      if (!file(name).empty()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::filesystem::path dir_;
};

TEST_F(CliLiveTest, ShowsTheWorstAtEverySizeAndGivesTheTerminalBack) {
  auto farm = SockFarm::start(netns(), {"--holders", std::to_string(kHolders), "--close-wait",
                                        std::to_string(20 * kHolders)});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto worst =
      SockFarm::start(netns(), {"--listen-port", "9100", "--close-wait", std::to_string(kWorst)});
  ASSERT_TRUE(worst.ok()) << worst.error().message;
  const std::string worstPid = std::to_string(worst->holders()[0]["pid"].get<int>());
  // A process whose leak grows while the view runs: 5 sockets a second.
  auto growing = SockFarm::startProgram(netns(), WAITWATCH_FDLEAK_PATH,
                                        {"--port", "8300", "--rate", "5", "--nofile", "5000"});
  ASSERT_TRUE(growing.ok()) << growing.error().message;

  Tmux tmux;
  ASSERT_NO_FATAL_FAILURE(startView(tmux, 80, 24));
  // Two refreshes (2 s apart): the change column has something to say.
  ASSERT_TRUE(tmux.waitFor([](const std::vector<std::string>& s) { return contains(s, " +"); }))
      << joined(tmux.screen());
  std::vector<std::string> screen = tmux.screen();
  ASSERT_EQ(screen.size(), 24u) << joined(screen);
  for (const std::string& l : screen)
    EXPECT_LE(columns(l), 80u) << "wrapped: " << l;
  EXPECT_EQ(screen[0].rfind("waitwatch on ", 0), 0u) << joined(screen);
  EXPECT_EQ(screen[1].rfind("CLOSE-WAIT ", 0), 0u) << joined(screen);
  const std::string top = firstRow(screen);
  EXPECT_EQ(top.substr(top.find_first_not_of(' '), worstPid.size() + 1), worstPid + " ")
      << joined(screen);
  EXPECT_NE(top.find(" " + std::to_string(kWorst) + " "), std::string::npos) << top;
  EXPECT_TRUE(contains(screen, "more (")) << "32 rows do not fit in 24 lines: " << joined(screen);
  EXPECT_EQ(screen.back().rfind("q quit", 0), 0u) << joined(screen);
  EXPECT_EQ(tmux.format("#{alternate_on}"), "1");

  // g: by growth, the growing leak first, with its change.
  tmux.run({"send-keys", "-t", "ww", "g"});
  ASSERT_TRUE(tmux.waitFor([](const std::vector<std::string>& s) {
    return contains(s, "sort: growth") && firstRow(s).find("fdleak") != std::string::npos &&
           firstRow(s).find(" +") != std::string::npos;
  })) << joined(tmux.screen());

  // A resize redraws at the new size at once: every row fits, whole command lines show.
  tmux.run({"resize-window", "-t", "ww", "-x", "200", "-y", "50"});
  ASSERT_TRUE(tmux.waitFor(
      [](const std::vector<std::string>& s) {
        return s.size() == 50 && contains(s, "q quit") && contains(s, "--close-wait 600");
      },
      3s))
      << joined(tmux.screen());
  screen = tmux.screen();
  for (const std::string& l : screen)
    EXPECT_LE(columns(l), 200u) << "wrapped: " << l;
  EXPECT_FALSE(contains(screen, "more (")) << joined(screen);
  EXPECT_EQ(screen[0].rfind("waitwatch on ", 0), 0u);

  // A filter survives arrow keys and the mouse wheel (escape sequences), and Esc drops it.
  tmux.run({"send-keys", "-t", "ww", "/", "fdleak", "Enter"});
  ASSERT_TRUE(tmux.waitFor(
      [](const std::vector<std::string>& s) {
        return !s.empty() && s[0].find("filter: fdleak") != std::string::npos &&
               firstRow(s).find("fdleak") != std::string::npos && !contains(s, "sockfarm");
      },
      3s))
      << joined(tmux.screen());
  tmux.run({"send-keys", "-t", "ww", "Up", "Down", "PageUp", "F1"});
  std::this_thread::sleep_for(300ms);
  screen = tmux.screen();
  EXPECT_NE(screen[0].find("filter: fdleak"), std::string::npos) << joined(screen);
  EXPECT_NE(screen[0].find("sort: growth"), std::string::npos) << joined(screen);
  tmux.run({"send-keys", "-t", "ww", "Escape"});
  ASSERT_TRUE(
      tmux.waitFor([](const std::vector<std::string>& s) { return contains(s, "sockfarm"); }, 3s))
      << joined(tmux.screen());

  // Ctrl-Z where no shell can resume a stopped process (this pane's shell has no job control):
  // the view goes on instead of hanging.
  tmux.run({"send-keys", "-t", "ww", "C-z"});
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(
      tmux.waitFor([](const std::vector<std::string>& s) { return contains(s, "q quit"); }, 5s))
      << joined(tmux.screen());
  EXPECT_EQ(tmux.format("#{alternate_on}"), "1");

  // q: the shell's screen and the terminal's settings come back.
  tmux.run({"send-keys", "-t", "ww", "q"});
  ASSERT_TRUE(waitForFile("after"));
  EXPECT_EQ(file("status"), "EXITED=0\n");
  EXPECT_EQ(file("after"), file("before"));
  EXPECT_EQ(tmux.format("#{alternate_on}"), "0");
  EXPECT_EQ(tmux.format("#{cursor_flag}"), "1");
  // Every frame went to the alternate screen: nothing scrolled into the shell's scrollback.
  EXPECT_EQ(tmux.format("#{history_size}"), "0");
}

TEST_F(CliLiveTest, CtrlCGivesTheTerminalBack) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "5"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  Tmux tmux;
  ASSERT_NO_FATAL_FAILURE(startView(tmux, 80, 24));
  ASSERT_TRUE(tmux.waitFor([](const std::vector<std::string>& s) { return contains(s, "q quit"); }))
      << joined(tmux.screen());
  tmux.run({"send-keys", "-t", "ww", "C-c"});
  ASSERT_TRUE(waitForFile("after")) << joined(tmux.screen());
  EXPECT_EQ(file("status"), "EXITED=0\n");
  EXPECT_EQ(file("after"), file("before"));
  EXPECT_EQ(tmux.format("#{alternate_on}"), "0");
}

}  // namespace
}  // namespace waitwatch::testing
