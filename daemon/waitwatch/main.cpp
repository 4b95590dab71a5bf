// SPDX-License-Identifier: Apache-2.0
// `waitwatch`: the operator's command. The logic lives in waitwatch::cli (daemon/cli).
#include <unistd.h>

#include <iostream>
#include <string_view>
#include <vector>

#include "cli/run.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  return waitwatch::cli::run(args, std::cout, std::cerr,
                             waitwatch::cli::Environment{.stdoutIsTerminal = ::isatty(1) == 1});
}
