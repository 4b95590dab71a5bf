// SPDX-License-Identifier: Apache-2.0
#include "rules/glob.hpp"

#include <cstddef>

namespace waitwatch {
namespace {

// Matches one bracket expression starting at pattern[i] == '['; sets `next` past the closing
// ']'. The pattern was validated at compile time, so the ']' exists.
bool matchBracket(std::string_view p, std::size_t i, char c, std::size_t& next) {
  ++i;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (first || p[i] != ']')) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      if (hi == '\\' && i + 3 < p.size()) {
        hi = p[i + 3];
        ++i;
      }
      i += 2;
    }
    if (static_cast<unsigned char>(c) >= static_cast<unsigned char>(lo) &&
        static_cast<unsigned char>(c) <= static_cast<unsigned char>(hi)) {
      matched = true;
    }
    ++i;
  }
  next = i + 1;  // past ']'
  return matched != negate;
}

// Finds the end of a bracket expression at p[i] == '['; npos when unterminated.
std::size_t bracketEnd(std::string_view p, std::size_t i) {
  ++i;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) ++i;
  bool first = true;
  while (i < p.size()) {
    if (p[i] == ']' && !first) return i;
    if (p[i] == '\\') ++i;
    first = false;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<Glob> Glob::compile(std::string_view pattern, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Glob> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  if (pattern.empty()) return fail("an empty pattern matches nothing");
  if (pattern.find('\0') != std::string_view::npos)
    return fail("a NUL byte never occurs in a name");
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (i + 1 == pattern.size()) return fail("a trailing \\ escapes nothing");
      ++i;
    } else if (pattern[i] == '[') {
      const std::size_t end = bracketEnd(pattern, i);
      if (end == std::string_view::npos) return fail("unterminated [");
      // fnmatch reads "[[:alpha:]]" as a class; read as a plain set it would match "a]" and
      // not "a". Refused, so that a pattern means what fnmatch(3) users expect or nothing.
      for (std::size_t j = i + 1; j + 1 < end; ++j) {
        if (pattern[j] == '\\') {
          ++j;
        } else if (pattern[j] == '[' &&
                   (pattern[j + 1] == ':' || pattern[j + 1] == '.' || pattern[j + 1] == '=')) {
          return fail(
              "[: [. and [= (POSIX classes) are not supported; list the characters, e.g. "
              "[a-zA-Z], or escape the [");
        }
      }
      i = end;
    }
  }
  return Glob(std::string(pattern));
}

// Iterative matcher with single-star backtracking: linear in practice, no recursion.
bool Glob::matches(std::string_view text) const {
  const std::string_view p = pattern_;
  std::size_t pi = 0;
  std::size_t ti = 0;
  std::size_t starP = std::string_view::npos;
  std::size_t starT = 0;
  while (ti < text.size()) {
    if (pi < p.size()) {
      const char pc = p[pi];
      if (pc == '*') {
        starP = ++pi;
        starT = ti;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++ti;
        continue;
      }
      if (pc == '[') {
        std::size_t next = 0;
        if (matchBracket(p, pi, text[ti], next)) {
          pi = next;
          ++ti;
          continue;
        }
      } else {
        char lit = pc;
        std::size_t step = 1;
        if (pc == '\\' && pi + 1 < p.size()) {
          lit = p[pi + 1];
          step = 2;
        }
        if (lit == text[ti]) {
          pi += step;
          ++ti;
          continue;
        }
      }
    }
    if (starP == std::string_view::npos) return false;
    pi = starP;
    ti = ++starT;
  }
  while (pi < p.size() && p[pi] == '*')
    ++pi;
  return pi == p.size();
}

}  // namespace waitwatch
