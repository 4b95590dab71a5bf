// SPDX-License-Identifier: Apache-2.0
#pragma once
// The terminal the live view draws on: the alternate screen, keys read one at a time without
// echo, the window's size, and the terminal as it was on every way out. Plain ANSI (every
// terminal emulator since the VT100 and tmux take these sequences); no curses.
#include <termios.h>

#include <cstddef>
#include <optional>
#include <string>

#include "cli/live.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::cli {

class Terminal {
 public:
  // Takes over `outFd` (a terminal) and, for keys, `inFd` when it is a terminal, else the
  // controlling terminal (/dev/tty) as top and less do, else none.
  explicit Terminal(int outFd, int inFd);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Into the alternate screen, cursor hidden, keys unbuffered; leave() undoes it. Both may be
  // called again (Ctrl-Z leaves, the shell's fg enters).
  void enter();
  void leave();

  // The window's size (TIOCGWINSZ), 80x24 when it cannot be read.
  [[nodiscard]] LiveScreen screen() const;
  // The frame in one write: each line in place, the rest of each line erased, no scrolling.
  bool draw(const LiveFrame& frame);
  // -1 when keys cannot be read.
  [[nodiscard]] int keysFd() const { return keys_ ? inFd_ : -1; }

 private:
  int outFd_;
  int inFd_;
  UniqueFd ownTty_;  // /dev/tty, opened when `inFd` is not a terminal
  bool keys_ = false;
  bool entered_ = false;
  std::optional<termios> saved_;
  bool unicode_ = true;
};

}  // namespace waitwatch::cli
