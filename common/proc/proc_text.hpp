// SPDX-License-Identifier: Apache-2.0
#pragma once
// Pure parsers of /proc/<pid> texts. They take the bytes a read returned and never touch the
// file system. Every input is treated as untrusted: lengths are bounded, malformed text gives an
// Error naming the field, and whatever is kept for display is made printable.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch {

// /proc/<pid>/stat, the fields attribution needs.
struct ProcStat {
  std::int32_t pid = 0;
  std::string comm;  // printable (see appendPrintable), at most kMaxCommBytes
  char state = '?';
  std::int32_t ppid = 0;
  std::uint64_t startTime = 0;  // field 22: clock ticks after boot
};

inline constexpr std::size_t kMaxCommBytes = 64;      // the kernel's is 16; be generous
inline constexpr std::size_t kMaxCmdlineBytes = 256;  // default display bound for cmdlines
inline constexpr std::size_t kMaxCgroupPathBytes = 1024;
// Bound on a /proc/<pid> text read whole (stat, status, cgroup): far above any real one.
inline constexpr std::size_t kMaxProcFileBytes = 64 * 1024;

// The comm field may hold spaces and parentheses ("(sd-pam)", "a) b"), so it is delimited by
// the first '(' and the last ')'.
Result<ProcStat> parseProcStat(std::string_view text);

// /proc/<pid>/status "Uid:" line: real, effective, saved set, file system.
struct ProcStatus {
  std::uint32_t realUid = 0;
  std::uint32_t effectiveUid = 0;
  std::uint32_t savedUid = 0;
  std::uint32_t fsUid = 0;
};
Result<ProcStatus> parseProcStatus(std::string_view text);

// /proc/<pid>/limits, the "Max open files" soft limit (RLIMIT_NOFILE): the fd count at which
// the process's next open, accept() or socket() fails with EMFILE. nullopt for "unlimited".
Result<std::optional<std::uint64_t>> parseMaxOpenFiles(std::string_view text);

// /proc/<pid>/cmdline: NUL-separated arguments joined by single spaces, trailing NULs dropped,
// made printable and cut to at most `maxBytes` bytes ("..." marks a cut). Empty for kernel
// threads and zombies.
std::string formatCmdline(std::string_view raw, std::size_t maxBytes = kMaxCmdlineBytes);

// "socket:[12345]" (the target of a /proc/<pid>/fd link) -> 12345. nullopt for any other
// target (files, pipes, anon inodes) and for malformed or out-of-range numbers.
std::optional<std::uint32_t> parseSocketLink(std::string_view target);

// Appends `text` to `out` keeping valid UTF-8 and replacing control characters and invalid
// bytes with '?', so that names from /proc are safe in a terminal and in JSON. Stops before
// `out` would exceed `maxBytes`, never inside a multi-byte character; returns false when it
// had to stop.
bool appendPrintable(std::string& out, std::string_view text, std::size_t maxBytes);
std::string printable(std::string_view text, std::size_t maxBytes);

}  // namespace waitwatch
