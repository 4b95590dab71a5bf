// SPDX-License-Identifier: Apache-2.0
#pragma once
// UTF-8, as every text that leaves waitwatch needs it: metric labels (Prometheus rejects a
// scrape with invalid UTF-8), what a terminal shows, error messages quoting a file.
#include <cstddef>
#include <string_view>

namespace waitwatch {

// Length of the well-formed UTF-8 sequence at the start of `s` (1 for ASCII, 2 to 4 otherwise),
// or 0 when it is not one: a stray continuation byte, an overlong form, a UTF-16 surrogate, a
// code point past U+10FFFF, or a sequence cut short.
constexpr std::size_t utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) return 0;
  }
  return len;
}

// Whether the well-formed sequence at the start of `s` is a C1 control character
// (U+0080..U+009F): as unsafe in a terminal as the C0 ones.
constexpr bool isC1Control(std::string_view s) {
  return s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0xC2 &&
         static_cast<unsigned char>(s[1]) <= 0x9F;
}

}  // namespace waitwatch
