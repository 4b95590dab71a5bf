// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: see README.md (entry coreText in fuzz_entries.hpp).
#include <cstdio>
#include <cstdlib>

#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* broken = waitwatch::fuzz::coreText(data, size)) {
    std::fprintf(stderr, "invariant broken: %s\n", broken);
    std::abort();
  }
  return 0;
}
