// SPDX-License-Identifier: Apache-2.0
#include "attribution/fd_usage.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <unordered_map>
#include <utility>

#include "proc/proc_text.hpp"
#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch {

FdUsageReader::FdUsageReader(std::string procRoot) : procRoot_(std::move(procRoot)) {}

void FdUsageReader::read(Snapshot& snap) {
  listed_ = 0;
  if (!procFd_) {
    auto dir = openAt(AT_FDCWD, procRoot_, O_DIRECTORY);
    if (!dir) return;
    procFd_ = std::move(*dir);
  }
  // A process with sockets in two namespaces has two entries: read it once.
  std::unordered_map<std::int32_t, std::pair<std::uint64_t, std::uint64_t>> done;
  for (ProcessEntry& p : snap.processes) {
    if (p.states[TcpState::CloseWait] == 0) continue;
    const std::int32_t pid = p.info.key.pid;
    if (auto it = done.find(pid); it != done.end()) {
      p.openFds = it->second.first;
      p.maxFds = it->second.second;
      continue;
    }
    auto& out = done[pid];
    // Everything through one /proc/<pid> directory fd, which stays with that process: once it
    // exits, reads through the fd fail even when its pid is reused.
    auto dir = openAt(procFd_.get(), PidName(pid).text, O_DIRECTORY);
    if (!dir) continue;
    if (!readFileAt(dir->get(), "stat", text_, kMaxProcFileBytes)) continue;
    const auto st = parseProcStat(text_);
    if (!st || st->startTime != p.info.key.startTime) continue;

    // fs/proc/fd.c, proc_fd_getattr() (Linux 6.2+): the size of /proc/<pid>/fd is the number of
    // open fds (proc_readfd_count(), a bitmap weight), and stat() needs no access to the
    // process. Older kernels report 0, which no process holding a socket has: list it instead.
    struct stat fdDir {};
    if (::fstatat(dir->get(), "fd", &fdDir, 0) != 0) continue;
    std::uint64_t open = fdDir.st_size > 0 ? static_cast<std::uint64_t>(fdDir.st_size) : 0;
    if (open == 0) {
      auto fds = openAt(dir->get(), "fd", O_DIRECTORY);
      if (!fds) continue;
      ++listed_;
      if (forEachDirEntry(fds->get(), dents_,
                          [&](const char*, std::uint64_t, unsigned char) { ++open; }) != 0) {
        continue;
      }
    }
    // An unreadable or malformed limits file leaves the limit unknown, not the count.
    std::uint64_t max = 0;
    if (readFileAt(dir->get(), "limits", text_, kMaxProcFileBytes)) {
      const auto limit = parseMaxOpenFiles(text_);
      if (limit && *limit) max = **limit;
    }
    out = {open, max};
    p.openFds = out.first;
    p.maxFds = out.second;
  }
}

}  // namespace waitwatch
