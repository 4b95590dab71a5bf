// SPDX-License-Identifier: Apache-2.0
#include "sys/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace waitwatch {

Result<UniqueFd> openAt(int dirFd, std::string_view path, int extraFlags) {
  const std::string p(path);
  for (;;) {
    int fd = ::openat(dirFd, p.c_str(), O_RDONLY | O_CLOEXEC | extraFlags);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR) continue;
    const int err = errno;
    return osError(err, p);
  }
}

namespace {

Result<void> readOpened(int fd, std::string_view path, std::string& out, std::size_t limit) {
  out.clear();
  std::size_t used = 0;
  for (;;) {
    if (out.size() < used + 4096) out.resize(std::min(limit, used + 4096 + used));
    if (used >= limit) break;
    const ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      out.clear();
      return osError(err, path);
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return {};
}

std::string_view fileTypeName(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

Result<void> readFileAt(int dirFd, std::string_view path, std::string& out, std::size_t limit) {
  auto fd = openAt(dirFd, path);
  if (!fd) return fd.error();
  return readOpened(fd->get(), path, out, limit);
}

Result<std::string> readFile(std::string_view path, std::size_t limit) {
  std::string out;
  auto r = readFileAt(AT_FDCWD, path, out, limit);
  if (!r) return r.error();
  return out;
}

Result<std::string> readRegularFile(std::string_view path, std::size_t limit) {
  // O_NONBLOCK: opening a FIFO for reading blocks until a writer comes; with it the open
  // returns at once and fstat tells what the file is. Regular files ignore the flag.
  auto fd = openAt(AT_FDCWD, path, O_NONBLOCK);
  if (!fd) return fd.error();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) {
    const int err = errno;
    return osError(err, path);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error{EINVAL, std::string(path) + ": " + std::string(fileTypeName(st.st_mode)) +
                             ", not a regular file"};
  }
  std::string out;
  auto r = readOpened(fd->get(), path, out, limit);
  if (!r) return r.error();
  return out;
}

}  // namespace waitwatch
