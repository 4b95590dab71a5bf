// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the BPF TCP socket walk's record decoder. See README.md.
#include <cstdio>
#include <cstdlib>

#include "fuzz_entries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (const char* broken = waitwatch::fuzz::tcpWalkRecords(data, size)) {
    std::fprintf(stderr, "invariant broken: %s\n", broken);
    std::abort();
  }
  return 0;
}
