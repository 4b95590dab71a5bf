// SPDX-License-Identifier: Apache-2.0
// waitwatchd: thin entry point. Parses the command line and hands over to waitwatch::service.
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "service/collector_source.hpp"
#include "service/daemon.hpp"
#include "service/options.hpp"
#include "waitwatch_version.hpp"

int main(int argc, char** argv) {
  using namespace waitwatch;
  // Each poll builds vectors of tens of MB (the CLOSE_WAIT records: 22 MB at 500k) and frees
  // the previous poll's. glibc raises its mmap threshold to the size of the largest block freed,
  // so from the second poll on these came from the heap, which fragmented as the population
  // changed: at 1M sockets the RSS crept to 77 MiB over 20 polls (bench/, 64 MiB target). A fixed
  // threshold keeps blocks of 1 MiB and more in their own mappings, returned on free: resting
  // RSS 61 -> 38 MiB, peak 62 -> 59 MiB on the same population.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  auto parsed = parseDaemonArgs(args);
  if (!parsed) {
    std::fprintf(stderr, "waitwatchd: %s\n", parsed.error().message.c_str());
    return 2;
  }
  try {
    switch (parsed->mode) {
      case DaemonArgs::Mode::Help:
        std::fputs(daemonUsage().c_str(), stdout);
        return 0;
      case DaemonArgs::Mode::Version:
        std::printf("waitwatchd %s\n", kVersion);
        return 0;
      case DaemonArgs::Mode::CheckConfig: {
        const ConfigSource source = chooseConfigSource(*parsed);
        auto config = loadConfig(source, *parsed);
        if (!config) {
          std::fprintf(stderr, "%s\n", config.error().message.c_str());
          return 1;
        }
        std::printf("%s: OK: %s\n", source.describe().c_str(), config->summary().c_str());
        return 0;
      }
      case DaemonArgs::Mode::Run:
        break;
    }
    DaemonOptions options;
    options.args = *parsed;
    options.sourceFactory = collectorSourceFactory(parsed->verifySampler);
    return runDaemon(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waitwatchd: %s\n", e.what());
    return 1;
  }
}
