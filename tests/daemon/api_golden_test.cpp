// SPDX-License-Identifier: Apache-2.0
// The /api/v1 documents pinned: what the daemon serves for a known poll is compared byte for
// byte with checked-in files (tests/daemon/golden), read and reviewed by a person once, so a
// change to the wire format shows in review instead of passing through the CLI, which reads
// what the same serialiser writes. docs/api/*.schema.json describe them; check_api_schema.py
// validates these files against them. WAITWATCH_UPDATE_GOLDEN=1 rewrites the files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "service/api.hpp"
#include "support/sample_poll.hpp"

namespace waitwatch {
namespace {

const std::string kGolden = std::string(WAITWATCH_TEST_DATA_DIR) + "/golden/";

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expectGolden(const std::string& file, nlohmann::ordered_json doc) {
  // The version changes with every release; that it is there is what the document promises.
  if (doc.contains("version")) {
    EXPECT_TRUE(doc["version"].is_string());
    doc["version"] = "VERSION";
  }
  const std::string text = doc.dump(2) + "\n";
  const std::string path = kGolden + file;
  if (const char* update = std::getenv("WAITWATCH_UPDATE_GOLDEN"); update && *update == '1') {
    std::ofstream(path) << text;
  }
  EXPECT_EQ(text, readText(path)) << "the document differs from " << path
                                  << " (WAITWATCH_UPDATE_GOLDEN=1 rewrites it; review the diff)";
}

TEST(ApiGolden, SnapshotDocument) {
  expectGolden("api_v1_snapshot.json", snapshotJson(*testing::sampleView()));
}

TEST(ApiGolden, AlertsDocument) {
  expectGolden("api_v1_alerts.json", alertsJson(*testing::sampleView()));
}

}  // namespace
}  // namespace waitwatch
