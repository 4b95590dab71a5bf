// SPDX-License-Identifier: Apache-2.0
// Text cut to a terminal's columns. Pure.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace waitwatch::cli {

// Display width of UTF-8 text: one column per code point (the texts are made printable when
// read, so there are no control characters; wide CJK glyphs are rare in process names).
std::size_t displayWidth(std::string_view s);

// At most `width` columns, cut at a code point with "..." marking the cut at the end
// ("java -jar /opt/app..."). 0: no limit.
std::string cutEnd(std::string_view s, std::size_t width);

// At most `width` columns with "..." in the middle, so that both the start and the end, where
// names that share a prefix differ, stay ("qa2-payments...shard-07.service"). 0: no limit.
std::string cutMiddle(std::string_view s, std::size_t width);

// `s` cut at the end, then padded with spaces to exactly `width` columns (0: empty).
std::string padRight(std::string_view s, std::size_t width);
std::string padLeft(std::string_view s, std::size_t width);

}  // namespace waitwatch::cli
