// SPDX-License-Identifier: Apache-2.0
#pragma once
// Files of the source tree the tests compare the code with (the shipped configuration, its
// JSON Schema). WAITWATCH_SOURCE_DIR is set by the test's CMakeLists.txt.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
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
inline const std::string kManDir = std::string(WAITWATCH_SOURCE_DIR) + "/packaging/man";

// The options a text names: "-V" (one letter) and "--state", after a space, a bracket, a comma
// or a bar ("ss -tanp" is not one).
inline std::set<std::string> optionsIn(const std::string& text) {
  static const std::regex option(R"((?:^|[\s\[,|(])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![A-Za-z0-9-]))");
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), option), end; it != end; ++it)
    out.insert((*it)[1].str());
  return out;
}

// The options a man page lists: the tags of its .TP paragraphs, roff's "\-" read as "-".
inline std::set<std::string> manPageOptions(const std::string& roff) {
  std::set<std::string> out;
  std::istringstream in(roff);
  bool tag = false;
  for (std::string line; std::getline(in, line);) {
    if (tag && line.rfind(".B", 0) == 0) {
      line = std::regex_replace(line, std::regex(R"(\\-)"), "-");
      const auto found = optionsIn(line);
      out.insert(found.begin(), found.end());
    }
    tag = line == ".TP" || line == ".TQ";
  }
  return out;
}

}  // namespace waitwatch::testing
