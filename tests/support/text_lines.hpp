// SPDX-License-Identifier: Apache-2.0
#pragma once
// A text's lines, for tests that compare what a command or a renderer printed line by line.
#include <sstream>
#include <string>
#include <vector>

namespace waitwatch::testing {

inline std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

}  // namespace waitwatch::testing
