// SPDX-License-Identifier: Apache-2.0
// The fuzzers' seed corpora as a plain regression test (as pdns's standalone fuzz target
// runner does): every file goes through the same entry function the fuzzer calls, in every
// build, with any compiler. Inputs the fuzzer found go into the corpus and stay fixed here.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_entries.hpp"

namespace waitwatch::fuzz {
namespace {

using Entry = const char* (*)(const std::uint8_t*, std::size_t);

std::size_t runCorpus(const std::string& name, Entry entry) {
  const std::filesystem::path dir =
      std::filesystem::path(WAITWATCH_TEST_DATA_DIR) / "corpus" / name;
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    // An exactly sized heap copy, so a read past the end shows under ASan.
    std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
    const char* broken = entry(input.data(), input.size());
    EXPECT_EQ(broken, nullptr) << e.path().filename() << ": " << (broken ? broken : "");
    ++files;
  }
  return files;
}

TEST(FuzzCorpus, NetlinkReplies) {
  EXPECT_GE(runCorpus("netlink", netlinkReply), 10u);
}
TEST(FuzzCorpus, TcpWalkRecords) {
  EXPECT_GE(runCorpus("tcp_walk", tcpWalkRecords), 4u);
}
TEST(FuzzCorpus, KernelCounters) {
  EXPECT_GE(runCorpus("kernel_counters", kernelCounters), 4u);
}
TEST(FuzzCorpus, ProcTexts) {
  EXPECT_GE(runCorpus("proc", procTexts), 20u);
}
TEST(FuzzCorpus, CoreText) {
  EXPECT_GE(runCorpus("core_text", coreText), 20u);
}
TEST(FuzzCorpus, JsonConfig) {
  EXPECT_GE(runCorpus("config", jsonConfig), 20u);
}
TEST(FuzzCorpus, ApiDocuments) {
  EXPECT_GE(runCorpus("api", apiDocuments), 3u);
}
TEST(FuzzCorpus, StateFiles) {
  EXPECT_GE(runCorpus("state", stateFile), 4u);
}

TEST(FuzzCorpus, HttpRequests) {
  EXPECT_GE(runCorpus("http", httpRequest), 15u);
  // After every input of the corpus, the daemon's HTTP server still answers a scrape.
  const char* broken = httpServerAlive();
  EXPECT_EQ(broken, nullptr) << broken;
}

TEST(FuzzCorpus, ContainerRuntimeFiles) {
  EXPECT_GE(runCorpus("containers", containerFiles), 10u);
}

}  // namespace
}  // namespace waitwatch::fuzz
