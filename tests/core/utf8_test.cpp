// SPDX-License-Identifier: Apache-2.0
#include "core/utf8.hpp"

#include <gtest/gtest.h>

#include <string_view>

namespace waitwatch {
namespace {

using namespace std::string_view_literals;

TEST(Utf8, WellFormedSequencesHaveTheirLength) {
  EXPECT_EQ(utf8SequenceLength("a"sv), 1u);
  EXPECT_EQ(utf8SequenceLength("\x01"sv), 1u);          // a C0 control is still one character
  EXPECT_EQ(utf8SequenceLength("\xc3\xa9x"sv), 2u);     // é
  EXPECT_EQ(utf8SequenceLength("\xe2\x82\xac"sv), 3u);  // €
  EXPECT_EQ(utf8SequenceLength("\xf0\x9f\x98\x80"sv), 4u);
  EXPECT_EQ(utf8SequenceLength("\xf4\x8f\xbf\xbf"sv), 4u);  // U+10FFFF, the last one
}

TEST(Utf8, MalformedSequencesAreZero) {
  EXPECT_EQ(utf8SequenceLength(""sv), 0u);
  EXPECT_EQ(utf8SequenceLength("\x80"sv), 0u);              // a continuation byte alone
  EXPECT_EQ(utf8SequenceLength("\xc0\xaf"sv), 0u);          // overlong '/'
  EXPECT_EQ(utf8SequenceLength("\xe0\x80\xaf"sv), 0u);      // overlong, three bytes
  EXPECT_EQ(utf8SequenceLength("\xed\xa0\x80"sv), 0u);      // a UTF-16 surrogate
  EXPECT_EQ(utf8SequenceLength("\xf4\x90\x80\x80"sv), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8SequenceLength("\xe2\x82"sv), 0u);          // cut short
  EXPECT_EQ(utf8SequenceLength("\xe2(\xac"sv), 0u);         // not a continuation
}

TEST(Utf8, C1ControlsAreTold) {
  EXPECT_TRUE(isC1Control("\xc2\x85"sv));   // NEL
  EXPECT_TRUE(isC1Control("\xc2\x9b"sv));   // CSI
  EXPECT_FALSE(isC1Control("\xc2\xa0"sv));  // no-break space
  EXPECT_FALSE(isC1Control("a"sv));
}

}  // namespace
}  // namespace waitwatch
