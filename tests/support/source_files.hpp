// SPDX-License-Identifier: Apache-2.0
#pragma once
// Files of the source tree the tests compare the code with (the shipped configuration, its
// JSON Schema). WAITWATCH_SOURCE_DIR is set by the test's CMakeLists.txt.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace waitwatch::testing {

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline const std::string kConfigDir = std::string(WAITWATCH_SOURCE_DIR) + "/config";

}  // namespace waitwatch::testing
