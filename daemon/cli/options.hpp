#pragma once
// The `waitwatch` command line, parsed by a pure function so every bad argument has a test.
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch::cli {

enum class NetnsSelection {
  Own,    // the namespace waitwatch runs in (default)
  All,    // every network namespace on the host
  Named,  // one `ip netns` namespace, CliOptions::netnsName
};

struct CliOptions {
  bool json = false;
  NetnsSelection netns = NetnsSelection::Own;
  std::string netnsName;  // NetnsSelection::Named only
  bool help = false;
  bool version = false;
};

// `args` excludes the program name. A bad argument gives an Error whose message is one line
// naming it ("unknown option '--jsn'"), for exit status 2.
Result<CliOptions> parseArguments(std::span<const std::string_view> args);

// The --help text.
std::string usage();

}  // namespace waitwatch::cli
