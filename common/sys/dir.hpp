// SPDX-License-Identifier: Apache-2.0
#pragma once
// Walking /proc directories: getdents64 into a buffer the caller reuses, no allocation per
// entry (a poll may list hundreds of thousands of fds).
#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace waitwatch {

inline constexpr std::size_t kDirentBufferSize = 32 * 1024;

// Calls fn(name, d_ino, d_type) for each entry of the open directory `fd` but "." and "..".
// Returns the errno of a failed getdents64, 0 otherwise.
template <typename Fn>
int forEachDirEntry(int fd, std::vector<char>& buffer, Fn&& fn) {
  if (buffer.size() < kDirentBufferSize) buffer.resize(kDirentBufferSize);
  for (;;) {
    const ssize_t n = ::getdents64(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    for (ssize_t off = 0; off < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buffer.data() + off);
      off += d->d_reclen;
      if (d->d_name[0] == '.' &&
          (d->d_name[1] == '\0' || (d->d_name[1] == '.' && d->d_name[2] == '\0'))) {
        continue;
      }
      fn(static_cast<const char*>(d->d_name), static_cast<std::uint64_t>(d->d_ino), d->d_type);
    }
  }
}

// A /proc entry name that is a pid or an fd number: a non-negative decimal without leading
// zeros ("0" itself is an fd number; pid callers reject it).
inline std::optional<std::int32_t> parseProcNumber(const char* name) {
  std::int32_t n = 0;
  const char* end = name + std::strlen(name);
  auto [ptr, ec] = std::from_chars(name, end, n);
  if (ec != std::errc() || ptr != end || n < 0 || (name[0] == '0' && name[1] != '\0')) {
    return std::nullopt;
  }
  return n;
}

// The name of /proc entry `n` (a pid or an fd number), the inverse of parseProcNumber, without
// an allocation.
struct PidName {
  char text[16];
  explicit PidName(std::int32_t n) {
    auto [end, ec] = std::to_chars(text, text + sizeof(text) - 1, n);
    *end = '\0';
  }
};

// A directory's modification time in nanoseconds: /proc/<pid>/fd's changes when fds come and go.
inline std::int64_t mtimeNs(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace waitwatch
