// SPDX-License-Identifier: Apache-2.0
// waitwatchd's command line: every accepted form and every rejected one with its message.
#include "service/options.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "support/source_files.hpp"

namespace waitwatch {
namespace {

Result<DaemonArgs> parse(std::initializer_list<std::string_view> args) {
  const std::vector<std::string_view> v(args);
  return parseDaemonArgs(v);
}

TEST(DaemonArgs, NoArgumentsRunsOnDefaults) {
  auto a = parse({});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, DaemonArgs::Mode::Run);
  EXPECT_FALSE(a->configPath);
  EXPECT_FALSE(a->listen);
}

TEST(DaemonArgs, ConfigAndListenInBothSpellings) {
  auto a = parse({"--config", "/tmp/w.json", "--listen=127.0.0.1:9999"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a->configPath, "/tmp/w.json");
  EXPECT_EQ(*a->listen, "127.0.0.1:9999");
  auto b = parse({"--config=/x.json", "--listen", "[::1]:9929"});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b->configPath, "/x.json");
  EXPECT_EQ(*b->listen, "[::1]:9929");
}

TEST(DaemonArgs, CheckConfigWithAndWithoutFile) {
  auto a = parse({"--check-config", "/etc/w.json"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode, DaemonArgs::Mode::CheckConfig);
  EXPECT_EQ(*a->configPath, "/etc/w.json");
  auto b = parse({"--check-config"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->mode, DaemonArgs::Mode::CheckConfig);
  EXPECT_FALSE(b->configPath);
  auto c = parse({"--check-config", "--config", "/c.json"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c->configPath, "/c.json");
}

TEST(DaemonArgs, VerifySamplerIsAFlag) {
  EXPECT_FALSE(parse({})->verifySampler);
  auto a = parse({"--verify-sampler", "--config", "/x.json"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a->verifySampler);
  EXPECT_EQ(a->mode, DaemonArgs::Mode::Run);
  auto b = parse({"--verify-sampler=yes"});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "--verify-sampler: takes no value");
}

TEST(DaemonArgs, HelpAndVersionWin) {
  EXPECT_EQ(parse({"--config", "/x", "--help"})->mode, DaemonArgs::Mode::Help);
  EXPECT_EQ(parse({"--version"})->mode, DaemonArgs::Mode::Version);
  EXPECT_EQ(parse({"-h"})->mode, DaemonArgs::Mode::Help);
}

TEST(DaemonArgs, BadCommandLines) {
  struct Case {
    std::vector<std::string_view> args;
    std::string error;
  };
  const Case cases[] = {
      {{"--bogus"}, "unknown option \"--bogus\" (see --help)"},
      {{"extra"}, "unexpected argument \"extra\" (see --help)"},
      {{"--config"}, "--config: missing value"},
      {{"--config", "--listen", "1.2.3.4:5"}, "--config: missing value"},
      {{"--config="}, "--config: empty value"},
      {{"--config", ""}, "--config: empty value"},
      {{"-c", ""}, "--config: empty value"},
      {{"--check-config", ""}, "--check-config: empty value"},
      {{"--check-config="}, "--check-config: empty value"},
      {{"--listen", ""}, "--listen: empty value"},
      {{"--config", "a", "--config", "b"}, "--config: given twice"},
      {{"--listen", "localhost"},
       "--listen: \"localhost\" is not ADDR:PORT (e.g. 127.0.0.1:9929 or [::1]:9929)"},
      {{"--listen", "1.2.3.4:70000"},
       "--listen: \"1.2.3.4:70000\" is not ADDR:PORT (e.g. 127.0.0.1:9929 or [::1]:9929)"},
      {{"--check-config", "a", "--config", "b"}, "--config: given twice"},
      {{"--config", "b", "--check-config", "a"}, "--check-config FILE and --config: name one file"},
      {{"--version=1"}, "--version: takes no value"},
  };
  for (const auto& c : cases) {
    auto r = parseDaemonArgs(c.args);
    ASSERT_FALSE(r.ok()) << c.error;
    EXPECT_EQ(r.error().message, c.error);
  }
}

TEST(ConfigSource, FileOnCommandLineThenDefaultPathThenEmbedded) {
  DaemonArgs args;
  const std::string missing = ::testing::TempDir() + "waitwatch-no-such.json";
  EXPECT_TRUE(chooseConfigSource(args, missing).embedded());
  EXPECT_EQ(chooseConfigSource(args, missing).describe(), "embedded defaults");
  const std::string present = ::testing::TempDir() + "waitwatch-present.json";
  std::ofstream(present) << "{}";
  EXPECT_EQ(chooseConfigSource(args, present).path, present);
  args.configPath = "/given.json";
  EXPECT_EQ(chooseConfigSource(args, present).path, "/given.json");
}

TEST(ConfigSource, LoadAppliesListenOverrideAndNamesBadFiles) {
  DaemonArgs args;
  args.listen = "127.0.0.1:1234";
  auto embedded = loadConfig(ConfigSource{}, args);
  ASSERT_TRUE(embedded.ok()) << embedded.error().message;
  EXPECT_EQ(embedded->listen, "127.0.0.1:1234");
  EXPECT_EQ(embedded->rules, defaultConfig().rules);

  const std::string missing = ::testing::TempDir() + "waitwatch-missing.json";
  auto r = loadConfig(ConfigSource{missing}, args);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, missing + ": No such file or directory");

  const std::string bad = ::testing::TempDir() + "waitwatch-bad.json";
  std::ofstream(bad) << R"({"poll_interval": "soon"})";
  auto b = loadConfig(ConfigSource{bad}, args);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message.rfind(bad + ": poll_interval", 0), 0u) << b.error().message;
}

// --help and waitwatchd(8) name the same options, short spellings included.
TEST(DaemonArgs, HelpAndManPageNameTheSameOptions) {
  const auto help = testing::optionsIn(daemonUsage());
  const auto man = testing::manPageOptions(testing::readFile(testing::kManDir + "/waitwatchd.8"));
  EXPECT_EQ(help, man);
  EXPECT_TRUE(help.count("-c") && help.count("-l") && help.count("-V") && help.count("-h"));
}

}  // namespace
}  // namespace waitwatch
