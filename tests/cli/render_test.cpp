#include "cli/render.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "cli/run.hpp"

namespace waitwatch::cli {
namespace {

Snapshot twoNamespaces() {
  Snapshot s;
  NetnsEntry host;
  host.ref = NetnsRef{4026531833, ""};
  host.states[TcpState::Established] = 12;
  host.states[TcpState::Listen] = 3;
  host.states[TcpState::CloseWait] = 500;
  NetnsEntry blue;
  blue.ref = NetnsRef{4026532290, "blue"};
  blue.states[TcpState::TimeWait] = 2000;
  blue.states[TcpState::Listen] = 1;
  blue.states[TcpState::Close] = 2;
  s.namespaces = {host, blue};
  return s;
}

TEST(CliRender, JsonHasEveryStateNameTotalsAndNamespaces) {
  // Parsed back as plain JSON, as a consumer would.
  const auto j = nlohmann::json::parse(snapshotJson(twoNamespaces()).dump());
  const std::vector<std::string> names = {"ESTABLISHED", "SYN_SENT",  "SYN_RECV", "FIN_WAIT1",
                                          "FIN_WAIT2",   "TIME_WAIT", "CLOSE",    "CLOSE_WAIT",
                                          "LAST_ACK",    "LISTEN",    "CLOSING"};
  ASSERT_EQ(j.at("states").size(), names.size());
  for (const auto& n : names)
    ASSERT_TRUE(j.at("states").contains(n)) << n;
  EXPECT_EQ(j["states"]["CLOSE_WAIT"], 500);
  EXPECT_EQ(j["states"]["TIME_WAIT"], 2000);
  EXPECT_EQ(j["states"]["LISTEN"], 4);
  EXPECT_EQ(j["states"]["CLOSE"], 2);
  EXPECT_EQ(j["states"]["SYN_SENT"], 0);

  ASSERT_EQ(j.at("namespaces").size(), 2u);
  EXPECT_EQ(j["namespaces"][0]["inode"], 4026531833u);
  EXPECT_TRUE(j["namespaces"][0]["name"].is_null());
  EXPECT_EQ(j["namespaces"][0]["states"]["CLOSE_WAIT"], 500);
  EXPECT_EQ(j["namespaces"][1]["name"], "blue");
  EXPECT_EQ(j["namespaces"][1]["states"]["TIME_WAIT"], 2000);
  EXPECT_EQ(j["namespaces"][1]["states"]["CLOSE_WAIT"], 0);
}

TEST(CliRender, TableHasSsNamesPerNamespaceAndTotals) {
  const std::string t = renderStateTable(twoNamespaces());
  std::istringstream in(t);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> cells;
    for (std::string c; f >> c;)
      cells.push_back(c);
    rows.push_back(cells);
  }
  ASSERT_EQ(rows.size(), 4u) << t;  // header, two namespaces, TOTAL
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"NETNS", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1",
                                      "FIN-WAIT-2", "TIME-WAIT", "UNCONN", "CLOSE-WAIT", "LAST-ACK",
                                      "LISTEN", "CLOSING", "TOTAL"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"net:[4026531833]", "12", "0", "0", "0", "0", "0",
                                               "0", "500", "0", "3", "0", "515"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"blue", "0", "0", "0", "0", "0", "2000", "2", "0",
                                               "0", "1", "0", "2003"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"TOTAL", "12", "0", "0", "0", "0", "2000", "2",
                                               "500", "0", "4", "0", "2518"}));
  // Columns line up: every line has the same length.
  std::istringstream again(t);
  std::string first;
  std::getline(again, first);
  for (std::string line; std::getline(again, line);)
    EXPECT_EQ(line.size(), first.size());
}

TEST(CliRender, OneNamespaceHasNoTotalRow) {
  Snapshot s = twoNamespaces();
  s.namespaces.resize(1);
  const std::string t = renderStateTable(s);
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 2);  // the header and the namespace
  EXPECT_EQ(t.find("\nTOTAL"), std::string::npos);
}

int runWith(std::vector<std::string_view> args, std::string& out, std::string& err) {
  std::ostringstream o;
  std::ostringstream e;
  const int rc = run(args, o, e);
  out = o.str();
  err = e.str();
  return rc;
}

TEST(CliRun, BadArgumentsExitTwoWithOneLine) {
  std::string out;
  std::string err;
  EXPECT_EQ(runWith({"--bogus"}, out, err), 2);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "waitwatch: unknown option '--bogus' (see waitwatch --help)\n");
}

TEST(CliRun, HelpAndVersion) {
  std::string out;
  std::string err;
  EXPECT_EQ(runWith({"--help"}, out, err), 0);
  EXPECT_NE(out.find("--netns all|NAME"), std::string::npos);
  EXPECT_NE(out.find("--json"), std::string::npos);
  EXPECT_EQ(err, "");
  EXPECT_EQ(runWith({"--version"}, out, err), 0);
  EXPECT_EQ(out.rfind("waitwatch 0.", 0), 0u) << out;
}

TEST(CliRun, UnknownNamespaceNameExitsOne) {
  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string_view> args{"--netns", "no-such-ns"};
  EXPECT_EQ(run(args, out, err, Environment{.procRoot = "/proc", .runNetns = "/nonexistent"}), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            "waitwatch: no network namespace named 'no-such-ns' (/nonexistent/no-such-ns)\n");
}

}  // namespace
}  // namespace waitwatch::cli
