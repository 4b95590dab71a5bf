// SPDX-License-Identifier: Apache-2.0
// The waitwatchd binary's own command line: --check-config, --version, --help and bad arguments
// (exit status and the exact one-line error). No root needed: nothing here starts the daemon.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace waitwatch {
namespace {

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr
};

Outcome waitwatchd(const std::string& args) {
  Outcome r;
  FILE* p = ::popen((std::string(WAITWATCHD_PATH) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p))
    r.output += buf;
  const int s = ::pclose(p);
  r.status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
  return r;
}

std::string writeFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(WaitwatchdCli, CheckConfigGoodFile) {
  const auto path = writeFile("ww-good.json", R"({"poll_interval": "2s", "rules": []})");
  const Outcome r = waitwatchd("--check-config " + path);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind(path + ": OK: poll every 2s, listen on 0.0.0.0:9929", 0), 0u)
      << r.output;
}

TEST(WaitwatchdCli, CheckConfigBadFileNamesThePlace) {
  const auto path = writeFile("ww-bad.json", R"({"rules": [{"name": "x", "type": "nope"}]})");
  const Outcome r = waitwatchd("--check-config " + path);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.rfind(path + ": rules[0].type: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  const Outcome missing = waitwatchd("--check-config " + ::testing::TempDir() + "ww-none.json");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("No such file or directory"), std::string::npos);
}

TEST(WaitwatchdCli, VersionHelpAndBadArguments) {
  const Outcome v = waitwatchd("--version");
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.output.rfind("waitwatchd ", 0), 0u);
  const Outcome h = waitwatchd("--help");
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.output.find("--check-config"), std::string::npos);
  const Outcome bad = waitwatchd("--listen nowhere");
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.output,
            "waitwatchd: --listen: \"nowhere\" is not ADDR:PORT (e.g. 127.0.0.1:9929 or "
            "[::1]:9929)\n");
  const Outcome unknown = waitwatchd("--frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_EQ(unknown.output, "waitwatchd: unknown option \"--frobnicate\" (see --help)\n");
}

TEST(WaitwatchdCli, BadConfigFileStopsStartUp) {
  const auto path = writeFile("ww-bad-start.json", R"({"poll_interval": "0s"})");
  const Outcome r = waitwatchd("--config " + path + " --listen 127.0.0.1:1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.output.rfind("waitwatchd: " + path + ": poll_interval", 0), 0u) << r.output;
}

}  // namespace
}  // namespace waitwatch
