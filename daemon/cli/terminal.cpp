// SPDX-License-Identifier: Apache-2.0
#include "cli/terminal.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "cli/text.hpp"

namespace waitwatch::cli {
namespace {

// ECMA-48 / xterm control sequences.
constexpr std::string_view kAltScreenOn = "\033[?1049h";
constexpr std::string_view kAltScreenOff = "\033[?1049l";
constexpr std::string_view kCursorOff = "\033[?25l";
constexpr std::string_view kCursorOn = "\033[?25h";
constexpr std::string_view kReverse = "\033[7m";
constexpr std::string_view kPlain = "\033[0m";
constexpr std::string_view kEraseLine = "\033[K";

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The locale's character set, as the C library would pick it: LC_ALL, LC_CTYPE, then LANG.
bool utf8Locale() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    const std::string_view value(v);
    return value.find("UTF-8") != std::string_view::npos ||
           value.find("utf-8") != std::string_view::npos ||
           value.find("UTF8") != std::string_view::npos ||
           value.find("utf8") != std::string_view::npos;
  }
  return false;
}

}  // namespace

Terminal::Terminal(int outFd, int inFd)
    : outFd_(outFd), inFd_(inFd), keys_(::isatty(inFd) == 1), unicode_(utf8Locale()) {
  if (!keys_) {
    ownTty_ = UniqueFd(::open("/dev/tty", O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (ownTty_.get() >= 0 && ::isatty(ownTty_.get()) == 1) {
      inFd_ = ownTty_.get();
      keys_ = true;
    }
  }
}

Terminal::~Terminal() {
  leave();
}

void Terminal::enter() {
  if (entered_) return;
  if (keys_) {
    termios t{};
    if (::tcgetattr(inFd_, &t) == 0) {
      saved_ = t;
      // Keys as they are typed, not echoed; Ctrl-C and Ctrl-Z still signal (ISIG stays).
      t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      t.c_cc[VMIN] = 0;
      t.c_cc[VTIME] = 0;
      ::tcsetattr(inFd_, TCSANOW, &t);
    }
  }
  std::string seq;
  seq += kAltScreenOn;
  seq += kCursorOff;
  writeAll(outFd_, seq);
  entered_ = true;
}

void Terminal::leave() {
  if (!entered_) return;
  std::string seq;
  seq += kPlain;
  seq += kCursorOn;
  seq += kAltScreenOff;
  writeAll(outFd_, seq);
  if (saved_) ::tcsetattr(inFd_, TCSANOW, &*saved_);
  entered_ = false;
}

LiveScreen Terminal::screen() const {
  LiveScreen s;
  s.unicode = unicode_;
  s.keys = keys_;
  winsize w{};
  if (::ioctl(outFd_, TIOCGWINSZ, &w) == 0 && w.ws_col > 0 && w.ws_row > 0) {
    s.width = w.ws_col;
    s.height = w.ws_row;
  }
  return s;
}

bool Terminal::draw(const LiveFrame& frame) {
  // Each line is placed with its own cursor move and ends in an erase, so nothing of the
  // previous frame stays and no line feed ever scrolls the screen; no line is wider than the
  // screen, so none wraps.
  std::string out;
  for (std::size_t i = 0; i < frame.lines.size(); ++i) {
    out += "\033[" + std::to_string(i + 1) + ";1H";
    if (i == frame.headerLine) out += kReverse;
    out += frame.lines[i];
    if (i == frame.headerLine) out += kPlain;
    // A full line leaves the cursor on its last column, which an erase would blank.
    if (displayWidth(frame.lines[i]) < frame.width) out += kEraseLine;
  }
  return writeAll(outFd_, out);
}

}  // namespace waitwatch::cli
