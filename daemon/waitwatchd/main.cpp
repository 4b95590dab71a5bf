// waitwatchd: thin entry point. Parses the command line and hands over to waitwatch::service.
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
    options.sourceFactory = &makeCollectorSource;
    return runDaemon(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waitwatchd: %s\n", e.what());
    return 1;
  }
}
