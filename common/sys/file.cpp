#include "sys/file.hpp"

#include <fcntl.h>

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
    return Error{err, p + ": " + std::strerror(err)};
  }
}

Result<void> readFileAt(int dirFd, std::string_view path, std::string& out, std::size_t limit) {
  auto fd = openAt(dirFd, path);
  if (!fd) return fd.error();
  out.clear();
  std::size_t used = 0;
  for (;;) {
    if (out.size() < used + 4096) out.resize(std::min(limit, used + 4096 + used));
    if (used >= limit) break;
    const ssize_t n = ::read(fd->get(), out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      out.clear();
      return Error{err, std::string(path) + ": " + std::strerror(err)};
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return {};
}

Result<std::string> readFile(std::string_view path, std::size_t limit) {
  std::string out;
  auto r = readFileAt(AT_FDCWD, path, out, limit);
  if (!r) return r.error();
  return out;
}

}  // namespace waitwatch
