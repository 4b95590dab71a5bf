// SPDX-License-Identifier: Apache-2.0
#pragma once
// Checks shared by the fuzz entries: what text shown to an operator (a terminal, a journal
// field, a JSON document, a one-line error) must look like, whatever the input was.
#include <cstddef>
#include <string_view>

namespace waitwatch::fuzz {

// Valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF) without C0 or C1
// control characters or DEL. Written independently of the code under test.
inline bool isPrintableUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x20 || b0 == 0x7F) return false;
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned cp = 0;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cp = b0 & 0x1Fu;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cp = b0 & 0x0Fu;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cp = b0 & 0x07u;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    const unsigned minimum = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp >= 0x80 && cp <= 0x9F) return false;  // C1 controls
    i += len;
  }
  return true;
}

// One line an operator reads: not empty, printable, no line break.
inline bool isOneLine(std::string_view s) {
  return !s.empty() && isPrintableUtf8(s);
}

inline bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace waitwatch::fuzz
