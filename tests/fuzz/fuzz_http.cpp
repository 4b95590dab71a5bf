// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: see README.md (entry httpRequest in fuzz_entries.hpp). Every 256 inputs,
// a plain scrape must still be answered.
#include <cstdio>
#include <cstdlib>

#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static unsigned inputs = 0;
  const char* broken = waitwatch::fuzz::httpRequest(data, size);
  if (broken == nullptr && ++inputs % 256 == 0) broken = waitwatch::fuzz::httpServerAlive();
  if (broken != nullptr) {
    std::fprintf(stderr, "invariant broken: %s\n", broken);
    std::abort();
  }
  return 0;
}
