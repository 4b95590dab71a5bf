// SPDX-License-Identifier: Apache-2.0
#include "cli/text.hpp"

namespace waitwatch::cli {
namespace {

bool startsCodePoint(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
}

// The byte offset after the first `columns` code points of `s`.
std::size_t prefixBytes(std::string_view s, std::size_t columns) {
  std::size_t cols = 0;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    if (startsCodePoint(s[i])) {
      if (cols == columns) break;
      ++cols;
    }
  }
  return i;
}

}  // namespace

std::size_t displayWidth(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    n += startsCodePoint(c) ? 1 : 0;
  return n;
}

std::string cutEnd(std::string_view s, std::size_t width) {
  if (width == 0 || displayWidth(s) <= width) return std::string(s);
  if (width <= 3) return std::string(s.substr(0, prefixBytes(s, width)));
  return std::string(s.substr(0, prefixBytes(s, width - 3))) + "...";
}

std::string cutMiddle(std::string_view s, std::size_t width) {
  const std::size_t total = displayWidth(s);
  if (width == 0 || total <= width) return std::string(s);
  if (width <= 5) return cutEnd(s, width);
  // The end usually tells names apart (an instance number before a suffix): it gets two thirds.
  const std::size_t keep = width - 3;
  const std::size_t head = keep / 3;
  const std::size_t tail = keep - head;
  return std::string(s.substr(0, prefixBytes(s, head))) + "..." +
         std::string(s.substr(prefixBytes(s, total - tail)));
}

std::string padRight(std::string_view s, std::size_t width) {
  if (width == 0) return {};
  std::string out = cutEnd(s, width);
  out.append(width - displayWidth(out), ' ');
  return out;
}

std::string padLeft(std::string_view s, std::size_t width) {
  if (width == 0) return {};
  std::string cell = cutEnd(s, width);
  return std::string(width - displayWidth(cell), ' ') + cell;
}

}  // namespace waitwatch::cli
