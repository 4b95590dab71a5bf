// SPDX-License-Identifier: Apache-2.0
#include "core/enum_names.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

enum class Colour { Red, Green, Blue, Unnamed };

constexpr EnumNames<Colour, 3> kColours({{Colour::Red, "red"},
                                         {Colour::Green, "green"},
                                         {Colour::Blue, "blue"}});

TEST(EnumNames, NamesAndParsesFromOneTable) {
  static_assert(kColours.name(Colour::Green) == "green");
  EXPECT_EQ(kColours.name(Colour::Unnamed), "?");
  EXPECT_EQ(kColours.name(Colour::Unnamed, "unknown"), "unknown");
  for (const auto& [value, name] : kColours.entries())
    EXPECT_EQ(kColours.parse(name), value);
  EXPECT_EQ(kColours.parse("Red"), std::nullopt);  // names are exact
  EXPECT_EQ(kColours.parse(""), std::nullopt);
}

TEST(EnumNames, ListsTheNamesAsAnErrorExpectsThem) {
  EXPECT_EQ(kColours.quotedList(), "\"red\", \"green\" or \"blue\"");
  constexpr EnumNames<Colour, 1> one({{Colour::Red, "red"}});
  EXPECT_EQ(one.quotedList(), "\"red\"");
}

}  // namespace
}  // namespace waitwatch
