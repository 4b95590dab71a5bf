// SPDX-License-Identifier: Apache-2.0
#pragma once
// Small, allocation-conscious file reads for /proc and /sys texts.
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

// Opens `path` relative to directory fd `dirFd` (AT_FDCWD for the current directory),
// read-only and close-on-exec.
Result<UniqueFd> openAt(int dirFd, std::string_view path, int extraFlags = 0);

// Reads a whole (small, possibly unseekable /proc) file into `out`, reusing its capacity.
// At most `limit` bytes are read; the rest is ignored.
Result<void> readFileAt(int dirFd, std::string_view path, std::string& out,
                        std::size_t limit = 1 << 20);
Result<std::string> readFile(std::string_view path, std::size_t limit = 1 << 20);

// The same for a file another program or the operator names (configuration, certificates,
// password files): anything but a regular file (a FIFO, a device, a directory) is refused at
// once, never opened for a blocking read that could hang the caller.
Result<std::string> readRegularFile(std::string_view path, std::size_t limit = 1 << 20);

}  // namespace waitwatch
