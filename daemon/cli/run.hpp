// SPDX-License-Identifier: Apache-2.0
#pragma once
// The whole `waitwatch` command as a function of its arguments and output streams, so that
// main() stays a line and tests can run it.
#include <iosfwd>
#include <span>
#include <string_view>

#include "cli/collect.hpp"

namespace waitwatch::cli {

// Returns the exit status: 0 success, 1 nothing could be read, 2 bad arguments.
// With --watch it returns when SIGINT or SIGTERM arrives (0) or `out` fails.
int run(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
        const Environment& env = {});

}  // namespace waitwatch::cli
