#include "cli/options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace waitwatch::cli {
namespace {

Result<CliOptions> parse(std::vector<std::string_view> args) {
  return parseArguments(args);
}

TEST(CliOptions, DefaultsToOwnNamespaceTable) {
  auto o = parse({});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->json);
  EXPECT_EQ(o->netns, NetnsSelection::Own);
  EXPECT_FALSE(o->help);
  EXPECT_FALSE(o->version);
}

TEST(CliOptions, ParsesEveryOption) {
  auto o = parse({"--json", "--netns", "all"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->netns, NetnsSelection::All);

  o = parse({"--netns=blue", "--json"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->netns, NetnsSelection::Named);
  EXPECT_EQ(o->netnsName, "blue");

  o = parse({"--netns", "blue", "--netns", "all"});  // the last one wins, as usual
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->netns, NetnsSelection::All);
  EXPECT_EQ(o->netnsName, "");

  EXPECT_TRUE(parse({"--help"})->help);
  EXPECT_TRUE(parse({"-h"})->help);
  EXPECT_TRUE(parse({"--version"})->version);
}

TEST(CliOptions, BadArgumentsNameTheArgument) {
  struct Case {
    std::vector<std::string_view> args;
    std::string error;
  };
  const Case cases[] = {
      {{"--jsn"}, "unknown option '--jsn'"},
      {{"-x"}, "unknown option '-x'"},
      {{"--json", "extra"}, "unexpected argument 'extra'"},
      {{"--netns"}, "--netns needs a value: 'all' or a namespace name"},
      {{"--netns="}, "--netns needs a value: 'all' or a namespace name"},
      {{"--netns", ""}, "--netns needs a value: 'all' or a namespace name"},
      {{"--json=yes"}, "unknown option '--json=yes'"},
  };
  for (const auto& c : cases) {
    auto o = parse(c.args);
    ASSERT_FALSE(o.ok()) << c.error;
    EXPECT_EQ(o.error().message, c.error);
    EXPECT_EQ(o.error().message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace waitwatch::cli
