#include "cli/run.hpp"

#include <ostream>

#include "cli/options.hpp"
#include "cli/render.hpp"
#include "waitwatch_version.hpp"

namespace waitwatch::cli {

int run(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
        const Environment& env) {
  auto options = parseArguments(args);
  if (!options) {
    err << "waitwatch: " << options.error().message << " (see waitwatch --help)\n";
    return 2;
  }
  if (options->help) {
    out << usage();
    return 0;
  }
  if (options->version) {
    out << "waitwatch " << kVersion << '\n';
    return 0;
  }

  auto collected = collectStateCounts(*options, env);
  if (!collected) {
    err << "waitwatch: " << collected.error().message << '\n';
    return 1;
  }
  for (const auto& w : collected->warnings)
    err << "waitwatch: warning: " << w << '\n';
  if (options->json) {
    out << snapshotJson(collected->snapshot).dump() << '\n';
  } else {
    out << renderStateTable(collected->snapshot);
  }
  return out.good() ? 0 : 1;
}

}  // namespace waitwatch::cli
