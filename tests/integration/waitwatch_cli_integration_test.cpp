// SPDX-License-Identifier: Apache-2.0
// `waitwatch --json` on a namespace holding 500 CLOSE_WAIT and 2,000
// TIME_WAIT sockets reports exactly those counts, whichever way the namespace is selected.
#include <unistd.h>

#include "netns_fixture.hpp"

namespace waitwatch::testing {
namespace {

using nlohmann::json;

std::string cliPath() {
  return WAITWATCH_CLI_PATH;
}

class WaitwatchCliTest : public NetnsTest {
 protected:
  void SetUp() override {
    if (cliPath().empty() || ::access(cliPath().c_str(), X_OK) != 0) {
      GTEST_SKIP() << "the waitwatch binary was not built (no `waitwatch` target at configure "
                      "time): "
                   << cliPath();
    }
    NetnsTest::SetUp();
  }

  // Runs waitwatch with `args` (inside the namespace when `inside`) and parses its JSON.
  json runJson(const std::vector<std::string>& args, bool inside = false) {
    std::vector<std::string> argv = {cliPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = inside ? netns().run(argv) : runCommand(argv);
    EXPECT_EQ(r.exitCode, 0) << r.describe();
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << r.out;
    return j.is_object() ? j : json::object();
  }
};

StateCounts leakedPopulation() {
  StateCounts c;
  c[TcpState::Listen] = 1;
  c[TcpState::CloseWait] = 500;
  c[TcpState::TimeWait] = 2000;
  return c;
}

void expectAllElevenStates(const json& states) {
  ASSERT_TRUE(states.is_object());
  EXPECT_EQ(states.size(), 11u) << states.dump();
  for (TcpState s : kAllTcpStates)
    EXPECT_TRUE(states.contains(stateName(s))) << stateName(s);
}

TEST_F(WaitwatchCliTest, ReportsExactly500CloseWaitAnd2000TimeWait) {
  auto farm =
      SockFarm::start(netns(), {"--close-wait", "500", "--time-wait", "2000", "--holders", "4"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  ASSERT_EQ(farm->expectedStates(), leakedPopulation()) << describe(farm->expectedStates());

  const json out = runJson({"--json", "--netns", netns().name()});
  ASSERT_NO_FATAL_FAILURE(expectAllElevenStates(out["states"]));
  EXPECT_EQ(out["states"]["CLOSE_WAIT"], 500);
  EXPECT_EQ(out["states"]["TIME_WAIT"], 2000);
  auto states = statesFromJson(out["states"]);
  ASSERT_TRUE(states.ok()) << states.error().message;
  EXPECT_EQ(*states, leakedPopulation()) << describe(*states);

  ASSERT_TRUE(out["namespaces"].is_array());
  ASSERT_EQ(out["namespaces"].size(), 1u) << out["namespaces"].dump();
  const json& ns = out["namespaces"][0];
  EXPECT_EQ(ns["inode"], netns().inode());
  EXPECT_EQ(ns["name"], netns().name());
  auto nsStates = statesFromJson(ns["states"]);
  ASSERT_TRUE(nsStates.ok()) << nsStates.error().message;
  EXPECT_EQ(*nsStates, leakedPopulation());

  // The same counts as ss in the same namespace.
  auto ss = ssSockets(netns());
  ASSERT_TRUE(ss.ok()) << ss.error().message;
  EXPECT_EQ(countStates(*ss), *states);
}

TEST_F(WaitwatchCliTest, DefaultIsTheNamespaceItRunsIn) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "50", "--time-wait", "70", "--established",
                                        "4", "--fin-wait2", "3"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const json out = runJson({"--json"}, /*inside=*/true);
  auto states = statesFromJson(out["states"]);
  ASSERT_TRUE(states.ok()) << states.error().message;
  EXPECT_EQ(*states, farm->expectedStates()) << describe(*states);
}

TEST_F(WaitwatchCliTest, AllNamespacesIncludesOursByName) {
  auto farm = SockFarm::start(netns(), {"--close-wait", "5", "--time-wait", "6"});
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  const json out = runJson({"--json", "--netns", "all"});
  int found = 0;
  StateCounts sum;
  for (const auto& ns : out["namespaces"]) {
    auto s = statesFromJson(ns["states"]);
    ASSERT_TRUE(s.ok()) << s.error().message;
    sum += *s;
    if (ns["inode"] != netns().inode()) continue;
    ++found;
    EXPECT_EQ(ns["name"], netns().name());
    EXPECT_EQ(*s, farm->expectedStates()) << describe(*s);
  }
  EXPECT_EQ(found, 1);
  // Totals are the sum over namespaces (other tests' namespaces may come and go meanwhile, so
  // only within this one output).
  auto totals = statesFromJson(out["states"]);
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(*totals, sum);
}

TEST_F(WaitwatchCliTest, UnknownNamespaceIsAClearError) {
  const std::string name = netns().name() + "-missing";
  const auto r = runCommand({cliPath(), "--json", "--netns", name});
  EXPECT_EQ(r.exitCode, 1) << r.describe();
  EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
}  // namespace waitwatch::testing
