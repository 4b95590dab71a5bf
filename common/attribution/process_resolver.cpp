// SPDX-License-Identifier: Apache-2.0
#include "attribution/process_resolver.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>

#include "proc/cgroup.hpp"
#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

constexpr std::size_t kMaxCgroupDirs = 100'000;  // bound on a cgroup tree scan

// A /proc entry that is a process: a positive pid.
std::optional<std::int32_t> parsePid(const char* name) {
  const auto pid = parseProcNumber(name);
  if (pid && *pid > 0) return pid;
  return std::nullopt;
}

bool isCgroup2(const char* path) {
  struct statfs fs {};
  return ::statfs(path, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

}  // namespace

ProcessResolver::ProcessResolver(ProcessResolverOptions options) : options_(std::move(options)) {
  if (!options_.cgroupRoot.empty()) {
    cgroupRoot_ = options_.cgroupRoot;
  } else if (isCgroup2("/sys/fs/cgroup")) {
    cgroupRoot_ = "/sys/fs/cgroup";
  } else if (isCgroup2("/sys/fs/cgroup/unified")) {
    cgroupRoot_ = "/sys/fs/cgroup/unified";
  }
}

std::uint32_t ProcessResolver::addProc(std::int32_t pid, std::uint64_t dirIno) {
  std::uint32_t slot = 0;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(procs_.size());
    procs_.emplace_back();
  }
  Proc& p = procs_[slot];
  p.pid = pid;
  p.inUse = true;
  p.dirIno = dirIno;
  p.seenPoll = poll_;
  slotOfPid_[pid] = slot;
  newSlots_.push_back(slot);
  return slot;
}

void ProcessResolver::releaseProc(std::uint32_t slot) {
  Proc& p = procs_[slot];
  if (!p.inUse) return;
  if (p.unreadable) --unreadable_;
  for (const FdLink& l : p.sockets)
    table_.removeOwner(l.inode, slot);
  const auto it = slotOfPid_.find(p.pid);
  if (it != slotOfPid_.end() && it->second == slot) slotOfPid_.erase(it);
  // Not reusable before the next poll: this poll's snapshot may still name the slot, and
  // process(slot) must still answer for it (the aggregator copies the info at the end).
  ProcessInfo info = std::move(p.info);
  p = Proc{};
  p.info = std::move(info);
  releasedSlots_.push_back(slot);
}

Result<void> ProcessResolver::scanProc(bool onlyNew) {
  auto dir = openAt(AT_FDCWD, options_.procRoot, O_DIRECTORY);
  if (!dir) return dir.error().wrap("listing processes");
  procFd_ = std::move(*dir);
  std::vector<std::pair<std::uint32_t, std::uint64_t>> changed;
  const int err = forEachDirEntry(procFd_.get(), dents_,
                                  [&](const char* name, std::uint64_t ino, unsigned char) {
                                    const auto pid = parsePid(name);
                                    if (!pid) return;
                                    const auto it = slotOfPid_.find(*pid);
                                    if (it == slotOfPid_.end()) {
                                      addProc(*pid, ino);
                                      return;
                                    }
                                    if (onlyNew) return;
                                    Proc& p = procs_[it->second];
                                    p.seenPoll = poll_;
                                    if (p.dirIno != ino) changed.emplace_back(it->second, ino);
                                  });
  if (err != 0) return osError(err, options_.procRoot);
  stats_.processes = slotOfPid_.size();
  // A new inode for /proc/<pid> means the dentry was rebuilt: the pid was reused, or the
  // kernel evicted and recreated it. The start time tells which.
  for (auto [slot, ino] : changed) {
    Proc& p = procs_[slot];
    const PidName pidName(p.pid);
    const std::string path = std::string(pidName.text) + "/stat";
    const auto read = readFileAt(procFd_.get(), path, text_, kMaxProcFileBytes);
    auto st = read ? parseProcStat(text_) : Result<ProcStat>(read.error());
    if (st && p.walked && st->startTime == p.startTime) {
      p.dirIno = ino;
      continue;
    }
    const std::int32_t pid = p.pid;
    releaseProc(slot);
    if (st || (read.error().errnum != ENOENT && read.error().errnum != ESRCH)) addProc(pid, ino);
  }
  return {};
}

Result<void> ProcessResolver::beginPoll(TimePoint now) {
  (void)now;
  ++poll_;
  stats_.walks = stats_.fdsRead = stats_.changeChecks = 0;
  stats_.pending = stats_.unresolved = 0;
  stats_.fullWalk = false;
  for (std::uint32_t slot : releasedSlots_)
    procs_[slot].info = ProcessInfo{};
  freeSlots_.insert(freeSlots_.end(), releasedSlots_.begin(), releasedSlots_.end());
  releasedSlots_.clear();
  table_.beginPoll();
  newSlots_.clear();
  if (auto r = scanProc(false); !r) return r;
  for (std::uint32_t slot = 0; slot < procs_.size(); ++slot) {
    if (procs_[slot].inUse && procs_[slot].seenPoll != poll_) releaseProc(slot);  // exited
  }
  // Walk new processes now, before the dump, so that a socket inherited across fork() lists
  // the child as well from the very poll that first sees it.
  const std::vector<std::uint32_t> fresh = newSlots_;
  for (std::uint32_t slot : fresh) {
    if (procs_[slot].inUse && !procs_[slot].walked) walk(slot, WalkMode::BeforeDump);
  }
  return {};
}

bool ProcessResolver::fdTableChanged(std::uint32_t slot) {
  Proc& p = procs_[slot];
  if (p.dirty) return true;
  const PidName pidName(p.pid);
  char path[24];
  std::snprintf(path, sizeof(path), "%s/fd", pidName.text);
  struct stat st {};
  ++stats_.changeChecks;
  if (::fstatat(procFd_.get(), path, &st, 0) != 0) return errno != EACCES;
  // Linux < 6.2 reports 0 for /proc/<pid>/fd: no way to tell, so assume it changed.
  return st.st_size == 0 || st.st_size != p.fdDirSize || mtimeNs(st) != p.fdDirMtimeNs;
}

bool ProcessResolver::walk(std::uint32_t slot, WalkMode mode) {
  const PidName pidName(procs_[slot].pid);
  UniqueFd pidFd;
  {
    auto fd = openAt(procFd_.get(), pidName.text, O_DIRECTORY);
    if (!fd) {
      releaseProc(slot);
      return false;
    }
    pidFd = std::move(*fd);
  }
  // The start time names the process: a different one means the pid was reused since the
  // listing, so the old claims go and the newcomer gets a slot of its own.
  if (auto read = readFileAt(pidFd.get(), "stat", text_, kMaxProcFileBytes); !read) {
    releaseProc(slot);
    return false;
  }
  auto st = parseProcStat(text_);
  if (!st) {
    releaseProc(slot);
    return false;
  }
  if (procs_[slot].walked && st->startTime != procs_[slot].startTime) {
    const std::int32_t pid = procs_[slot].pid;
    const std::uint64_t ino = procs_[slot].dirIno;
    releaseProc(slot);
    slot = addProc(pid, ino);
  }
  Proc& p = procs_[slot];
  p.startTime = st->startTime;
  p.walked = true;
  // A walk before the dump cannot vouch for the sockets a new process opens between it and the
  // dump (a client connecting just after its start), so the searches after the dump may read it
  // again. Not at the first poll: every process is new then, and a second look at them all
  // would double its cost for a socket the next poll finds anyway.
  if (mode == WalkMode::AfterDump || poll_ == 1) p.walkedPoll = poll_;
  ++stats_.walks;

  auto fdDir = openAt(pidFd.get(), "fd", O_DIRECTORY);
  if (!fdDir) {
    const int err = fdDir.error().errnum;
    if (err == EACCES || err == EPERM) {
      markUnreadable(slot, pidFd.get(), st->comm, err);
      return true;
    }
    releaseProc(slot);
    return false;
  }
  if (p.unreadable) {
    p.unreadable = false;
    --unreadable_;
  }
  struct stat ds {};
  if (::fstat(fdDir->get(), &ds) == 0) {
    p.uid = ds.st_uid;
    p.fdDirSize = ds.st_size;
    p.fdDirMtimeNs = mtimeNs(ds);
  }

  fdNumbers_.clear();
  forEachDirEntry(fdDir->get(), dents_, [&](const char* name, std::uint64_t, unsigned char) {
    if (const auto fd = parseProcNumber(name)) fdNumbers_.push_back(*fd);
  });
  if (!std::is_sorted(fdNumbers_.begin(), fdNumbers_.end())) {
    std::sort(fdNumbers_.begin(), fdNumbers_.end());
  }

  newLinks_.clear();
  auto old = p.sockets.begin();
  char target[64];
  for (std::int32_t fd : fdNumbers_) {
    while (old != p.sockets.end() && old->fd < fd)
      ++old;
    // A fd that held a socket we still have a claim on is the same socket: fd numbers are only
    // reused after close(), and closing a socket ends the claim (the dump no longer shows it,
    // or a later walk of this process finds the fd changed).
    if (old != p.sockets.end() && old->fd == fd && table_.hasOwner(old->inode, slot)) {
      newLinks_.push_back(*old);
      continue;
    }
    const PidName fdName(fd);
    ++stats_.fdsRead;
    const ssize_t n = ::readlinkat(fdDir->get(), fdName.text, target, sizeof(target));
    if (n < 0 && (errno == EACCES || errno == EPERM)) {
      // The directory was readable but the links are not (ptrace access denied): every fd
      // of this process is hidden from us.
      markUnreadable(slot, pidFd.get(), st->comm, errno);
      return true;
    }
    if (n <= 0) continue;  // closed since the listing
    const auto inode = parseSocketLink(std::string_view(target, static_cast<std::size_t>(n)));
    if (inode) newLinks_.push_back(FdLink{fd, *inode});
  }

  // Claims: add the sockets it holds now, drop those it no longer holds on any fd.
  const bool insert = mode == WalkMode::BeforeDump;
  for (const FdLink& l : newLinks_)
    table_.addOwner(l.inode, slot, insert);
  inodeScratch_.clear();
  for (const FdLink& l : newLinks_)
    inodeScratch_.push_back(l.inode);
  std::sort(inodeScratch_.begin(), inodeScratch_.end());
  for (const FdLink& l : p.sockets) {
    if (!std::binary_search(inodeScratch_.begin(), inodeScratch_.end(), l.inode)) {
      table_.removeOwner(l.inode, slot);
    }
  }
  p.sockets.swap(newLinks_);
  if (p.sockets.capacity() > 4 * p.sockets.size() + 64) p.sockets.shrink_to_fit();
  p.dirty = false;
  p.info.key = ProcessKey{p.pid, p.startTime};
  p.info.comm = st->comm;
  if (!p.sockets.empty()) loadInfo(p, pidFd.get());
  return true;
}

void ProcessResolver::markUnreadable(std::uint32_t slot, int pidFd, const std::string& comm,
                                     int err) {
  Proc& p = procs_[slot];
  if (!p.unreadable) ++unreadable_;
  p.unreadable = true;
  struct stat ds {};
  if (::fstat(pidFd, &ds) == 0) p.uid = ds.st_uid;
  const auto it = std::lower_bound(unreadableUids_.begin(), unreadableUids_.end(), p.uid);
  if (it == unreadableUids_.end() || *it != p.uid) unreadableUids_.insert(it, p.uid);
  if (firstUnreadable_.empty()) {
    const PidName pidName(p.pid);
    firstUnreadable_ = options_.procRoot + "/" + pidName.text + "/fd (" + comm + ", uid " +
                       std::to_string(p.uid) + "): " + std::strerror(err);
  }
}

namespace {

// cmdline and exe: what only a reader showing command lines (the CLI) needs.
void readDetails(int pidFd, std::size_t cmdlineMaxBytes, bool cmdline, std::string& scratch,
                 ProcessInfo& info) {
  if (cmdline) readProcessCmdline(pidFd, cmdlineMaxBytes, scratch, info);
  char exe[4096];
  const ssize_t n = ::readlinkat(pidFd, "exe", exe, sizeof(exe));
  info.exe = n > 0 ? printable(std::string_view(exe, static_cast<std::size_t>(n)), sizeof(exe))
                   : std::string();
}

void readFacts(int pidFd, std::uint32_t fallbackUid, std::size_t cmdlineMaxBytes, bool details,
               bool cmdline, std::string& scratch, ProcessInfo& info) {
  info.uid = fallbackUid;
  if (readFileAt(pidFd, "status", scratch, kMaxProcFileBytes)) {
    if (auto status = parseProcStatus(scratch)) info.uid = status->effectiveUid;
  }
  if (details) readDetails(pidFd, cmdlineMaxBytes, cmdline, scratch, info);
  if (readFileAt(pidFd, "cgroup", scratch, kMaxProcFileBytes)) {
    if (auto cg = parseCgroupFile(scratch)) {
      if (details) info.cgroup = std::move(cg->path);
      info.unit = std::move(cg->unit);
      info.container = std::move(cg->container);
    }
  }
}

}  // namespace

void readProcessFacts(int pidFd, std::uint32_t fallbackUid, std::size_t cmdlineMaxBytes,
                      std::string& scratch, ProcessInfo& info, bool cmdline) {
  readFacts(pidFd, fallbackUid, cmdlineMaxBytes, true, cmdline, scratch, info);
}

void readProcessCmdline(int pidFd, std::size_t cmdlineMaxBytes, std::string& scratch,
                        ProcessInfo& info) {
  if (readFileAt(pidFd, "cmdline", scratch, 4096)) {
    info.cmdline = formatCmdline(scratch, cmdlineMaxBytes);
  }
}

void ProcessResolver::loadInfo(Proc& p, int pidFd) {
  readFacts(pidFd, p.uid, options_.cmdlineMaxBytes, options_.processDetails, true, text_, p.info);
  p.info.user = userName_(p.info.uid);
}

const std::string& UserNames::operator()(std::uint32_t uid) {
  auto it = names_.find(uid);
  if (it != names_.end()) return it->second;
  std::string name = std::to_string(uid);
  struct passwd pw {};
  struct passwd* result = nullptr;
  std::vector<char> buf(16 * 1024);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr &&
      result->pw_name != nullptr) {
    name = printable(result->pw_name, 64);
  }
  return names_.emplace(uid, std::move(name)).first->second;
}

void ProcessResolver::scanCgroups() {
  cgroupPaths_.clear();
  missingCgroups_.clear();
  auto root = openAt(AT_FDCWD, cgroupRoot_, O_DIRECTORY);
  if (!root) return;
  struct stat st {};
  if (::fstat(root->get(), &st) == 0) cgroupPaths_[st.st_ino] = "";
  std::deque<std::string> queue{""};
  std::vector<char> buffer;
  while (!queue.empty() && cgroupPaths_.size() < kMaxCgroupDirs) {
    const std::string rel = std::move(queue.front());
    queue.pop_front();
    auto dir =
        rel.empty() ? openAt(root->get(), ".", O_DIRECTORY) : openAt(root->get(), rel, O_DIRECTORY);
    if (!dir) continue;
    forEachDirEntry(dir->get(), buffer, [&](const char* name, std::uint64_t, unsigned char type) {
      if (type != DT_DIR && type != DT_UNKNOWN) return;
      struct stat sub {};
      if (::fstatat(dir->get(), name, &sub, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sub.st_mode)) {
        return;
      }
      std::string path = rel.empty() ? std::string(name) : rel + "/" + name;
      cgroupPaths_[sub.st_ino] = path;
      queue.push_back(std::move(path));
    });
  }
}

const std::string* ProcessResolver::findCgroup(std::uint64_t id) {
  if (cgroupRoot_.empty()) return nullptr;
  auto it = cgroupPaths_.find(id);
  // A new cgroup: rescan the tree, at most once per poll. One that was already missing from
  // the last scan (removed since the socket was made) is not worth another.
  if (it == cgroupPaths_.end() && !missingCgroups_.count(id) && cgroupScanPoll_ != poll_) {
    cgroupScanPoll_ = poll_;
    scanCgroups();
    it = cgroupPaths_.find(id);
  }
  if (it == cgroupPaths_.end()) {
    if (missingCgroups_.size() < kMaxCgroupDirs) missingCgroups_.insert(id);
    return nullptr;
  }
  return &it->second;
}

bool ProcessResolver::describe(const ProcessKey& key, std::uint64_t cgroupId, ProcessInfo& info) {
  if (auto it = slotOfPid_.find(key.pid); it != slotOfPid_.end()) {
    const Proc& p = procs_[it->second];
    // Facts are read for processes that held sockets at a walk (user set then).
    if (p.inUse && p.startTime == key.startTime && !p.info.user.empty()) {
      info = p.info;
      return true;
    }
  }
  info.user = userName_(info.uid);
  const std::string* path = cgroupId != 0 ? findCgroup(cgroupId) : nullptr;
  if (path == nullptr) return false;
  // The unified hierarchy's paths are what /proc/<pid>/cgroup's "0::" line shows, from "/".
  const std::string full = "/" + *path;
  info.unit = unitFromCgroupPath(full);
  info.container = containerFromCgroupPath(full);
  if (options_.processDetails) info.cgroup = full;
  return true;
}

void ProcessResolver::collectCgroupPids(const std::vector<std::uint64_t>& cgroupIds) {
  cgroupPids_.clear();
  if (cgroupRoot_.empty() || cgroupIds.empty()) return;
  auto root = openAt(AT_FDCWD, cgroupRoot_, O_DIRECTORY);
  if (!root) return;
  for (std::uint64_t id : cgroupIds) {
    const std::string* path = findCgroup(id);
    if (path == nullptr) continue;
    const std::string procs = path->empty() ? "cgroup.procs" : *path + "/cgroup.procs";
    if (!readFileAt(root->get(), procs, text_, 16 << 20)) continue;
    std::string_view rest = text_;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      std::int32_t pid = 0;
      auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), pid);
      if (ec == std::errc() && ptr == line.data() + line.size() && pid > 0)
        cgroupPids_.push_back(pid);
    }
  }
  std::sort(cgroupPids_.begin(), cgroupPids_.end());
  cgroupPids_.erase(std::unique(cgroupPids_.begin(), cgroupPids_.end()), cgroupPids_.end());
}

void ProcessResolver::resolve(const PendingHints& hints, TimePoint now) {
  stats_.pending = table_.count(InodeTable::State::Pending);
  auto pendingLeft = [&] { return table_.count(InodeTable::State::Pending) > 0; };

  if (hints.sockets > 0 && pendingLeft()) {
    // 1. Processes born since the listing.
    newSlots_.clear();
    (void)scanProc(true);
    const std::vector<std::uint32_t> fresh = newSlots_;
    for (std::uint32_t slot : fresh) {
      if (procs_[slot].inUse && !procs_[slot].walked) walk(slot, WalkMode::AfterDump);
    }
  }
  if (hints.sockets > 0 && pendingLeft()) {
    // 2. Processes in the sockets' cgroups or with their uids, whose fd table changed.
    collectCgroupPids(hints.cgroupIds);
    for (std::uint32_t slot = 0; slot < procs_.size(); ++slot) {
      const Proc& p = procs_[slot];
      if (!p.inUse || !p.walked || p.unreadable || p.walkedPoll == poll_) continue;
      const bool uidMatch = std::binary_search(hints.uids.begin(), hints.uids.end(), p.uid);
      const bool cgroupMatch = std::binary_search(cgroupPids_.begin(), cgroupPids_.end(), p.pid);
      if ((uidMatch || cgroupMatch) && fdTableChanged(slot)) walk(slot, WalkMode::AfterDump);
    }
  }
  // 3. A few owner processes per poll, so stale claims (a socket closed here but still held
  //    by another process) do not outlive a round of the cursor.
  if (options_.revalidatePerPoll > 0 && !procs_.empty()) {
    std::size_t checked = 0;
    for (std::size_t n = 0; n < procs_.size() && checked < options_.revalidatePerPoll; ++n) {
      revalidateCursor_ = (revalidateCursor_ + 1) % procs_.size();
      const auto slot = static_cast<std::uint32_t>(revalidateCursor_);
      const Proc& p = procs_[slot];
      if (!p.inUse || p.sockets.empty() || p.unreadable || p.walkedPoll == poll_) continue;
      ++checked;
      if (fdTableChanged(slot)) walk(slot, WalkMode::AfterDump);
    }
  }
  // 4. Still unknown (or unknown since an earlier poll): a full walk, rate-limited.
  if ((pendingLeft() || unsearched_) &&
      (!lastFullWalk_ || now - *lastFullWalk_ >= options_.fullWalkInterval)) {
    lastFullWalk_ = now;
    unsearched_ = false;
    stats_.fullWalk = true;
    ++stats_.fullWalks;
    for (std::uint32_t slot = 0; slot < procs_.size(); ++slot) {
      const Proc& p = procs_[slot];
      if (!p.inUse || p.unreadable || p.walkedPoll == poll_) continue;
      walk(slot, WalkMode::AfterDump);
    }
  }
  stats_.unresolved = table_.count(InodeTable::State::Pending);
  stats_.unreadableProcesses = unreadable_;
  // What settle() now calls Vanished without a full search gets one at the next chance.
  if (stats_.unresolved > 0 && !stats_.fullWalk) unsearched_ = true;
}

InodeTable::State ProcessResolver::classify(std::uint32_t uid) const {
  // A socket is created with its creator's uid: if processes of that uid are hidden from us,
  // its holder is most likely one of them; otherwise every candidate was read and it is gone.
  return std::binary_search(unreadableUids_.begin(), unreadableUids_.end(), uid)
             ? InodeTable::State::NoPermission
             : InodeTable::State::Vanished;
}

InodeTable::View ProcessResolver::settle(std::uint32_t inode, std::uint32_t uid) {
  const auto v = table_.find(inode);
  if (!v) return InodeTable::View{classify(uid), 0, {}};
  if (v->state != InodeTable::State::Pending) return *v;
  const InodeTable::State state = classify(uid);
  table_.setUnresolved(inode, state);
  return InodeTable::View{state, 0, {}};
}

const ProcessInfo& ProcessResolver::process(std::uint32_t slot) {
  return procs_[slot].info;
}

void ProcessResolver::endPoll() {
  // A socket a dump had shown is gone: its holders' fd tables changed, so they are re-read
  // when next searched. Claims no dump confirmed (the unix, UDP and netlink sockets a walk
  // meets) say nothing about a change: marking their holders would re-walk every process the
  // first poll walked (at 1M sockets, the second poll took 2.7 s instead of 1.3 s).
  table_.sweep([&](std::uint32_t, std::span<const std::uint32_t> owners, bool confirmed) {
    if (!confirmed) return;
    for (std::uint32_t slot : owners) {
      if (slot < procs_.size()) procs_[slot].dirty = true;
    }
  });
  stats_.cachedInodes = table_.size();
  stats_.cacheBytes = table_.memoryBytes();
}

std::string unreadableProcessesWarning(std::uint64_t count, const std::string& first) {
  return "cannot read the open files of " + std::to_string(count) +
         " process(es) (first: " + first +
         "); the sockets they hold are counted but not attributed. Other users' processes "
         "need root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH; a process the kernel shields "
         "from ptrace (some init and sandbox processes) stays unreadable even then.";
}

std::optional<std::string> ProcessResolver::takePermissionWarning() {
  if (warned_ || unreadable_ == 0) return std::nullopt;
  warned_ = true;
  return unreadableProcessesWarning(unreadable_, firstUnreadable_);
}

}  // namespace waitwatch
