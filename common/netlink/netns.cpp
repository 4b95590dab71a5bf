// SPDX-License-Identifier: Apache-2.0
#include "netlink/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "netlink/sampler.hpp"
#include "proc/cgroup.hpp"
#include "proc/proc_text.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

bool isPid(const char* name) {
  if (*name == '\0') return false;
  for (const char* p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return true;
}

bool validNetnsName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.size() <= 255;
}

// inode -> `ip netns` name; when one namespace has several names, the smallest, so the choice is
// stable across runs.
using NameMap = std::unordered_map<std::uint64_t, std::string>;

// Opens every network namespace file in `runNetns`; calls `found(name, fd, inode)` for each.
template <typename F>
void walkRunNetns(const std::string& runNetns, F&& found) {
  DirPtr dir(::opendir(runNetns.c_str()));
  if (!dir) return;  // no `ip netns` namespaces at all
  while (const dirent* e = ::readdir(dir.get())) {
    const std::string name = e->d_name;
    if (!validNetnsName(name)) continue;
    auto fd = openAt(::dirfd(dir.get()), name);
    if (!fd || !isNetworkNamespace(fd->get())) continue;
    auto ino = namespaceInode(fd->get());
    if (!ino) continue;
    found(name, std::move(*fd), *ino);
  }
}

// The namespace file of the calling thread, through `procRoot`.
Result<UniqueFd> openOwnNamespace(const std::string& procRoot) {
  auto fd = openAt(AT_FDCWD, procRoot + "/thread-self/ns/net");
  if (!fd) fd = openAt(AT_FDCWD, procRoot + "/self/ns/net");  // kernels before 3.17
  return fd;
}

// A label for an unnamed namespace from the process found first in it (the lowest pid: most
// often the container's or service's first process): the Kubernetes pod, the container, or
// the systemd service or scope it runs in. Empty when it is none of those.
std::string holderAlias(int procFd, const char* pid) {
  std::string text;
  if (!readFileAt(procFd, std::string(pid) + "/cgroup", text, kMaxProcFileBytes)) return {};
  auto cg = parseCgroupFile(text);
  if (!cg) return {};
  if (!cg->container.pod.empty()) return "pod:" + cg->container.pod;
  if (!cg->container.empty()) return cg->container.shortName();
  if (cg->unit.ends_with(".service") || cg->unit.ends_with(".scope")) return cg->unit;
  return {};
}

NameMap namesIn(const std::string& runNetns) {
  NameMap names;
  walkRunNetns(runNetns, [&](const std::string& name, UniqueFd, std::uint64_t ino) {
    auto [it, inserted] = names.emplace(ino, name);
    if (!inserted && name < it->second) it->second = name;
  });
  return names;
}

}  // namespace

Result<NetnsGuard> NetnsGuard::enter(int netnsFd) {
  // thread-self, not self: setns() moves only the calling thread.
  auto original = openAt(AT_FDCWD, "/proc/thread-self/ns/net");
  if (!original) return original.error().wrap("saving the current network namespace");
  if (::setns(netnsFd, CLONE_NEWNET) != 0) {
    const int err = errno;
    Error e = osError(err, "setns into network namespace");
    if (err == EPERM) e.message += " (entering another network namespace needs CAP_SYS_ADMIN)";
    return e;
  }
  return NetnsGuard(std::move(*original));
}

Result<void> NetnsGuard::restore() {
  if (!original_) return {};
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    return osError(errno, "setns back to the original network namespace");
  }
  original_.reset();
  return {};
}

NetnsGuard::~NetnsGuard() {
  // Best effort: a destructor cannot report, and restore() is the checked path.
  if (original_) (void)restore();
}

Result<std::uint64_t> namespaceInode(int netnsFd) {
  struct stat st {};
  if (::fstat(netnsFd, &st) != 0) return osError(errno, "fstat network namespace");
  return static_cast<std::uint64_t>(st.st_ino);
}

bool isNetworkNamespace(int fd) {
  return ::ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

Result<NetnsHandle> currentNetworkNamespace(const std::string& procRoot) {
  return currentNetworkNamespace(procRoot, "/run/netns");
}

Result<NetnsHandle> currentNetworkNamespace(const std::string& procRoot,
                                            const std::string& runNetns) {
  auto fd = openOwnNamespace(procRoot);
  if (!fd) return fd.error().wrap("opening the current network namespace");
  auto ino = namespaceInode(fd->get());
  if (!ino) return ino.error();
  NetnsHandle h;
  h.ref.inode = *ino;
  h.ref.alias = kOwnNetnsAlias;
  const NameMap names = namesIn(runNetns);
  if (auto it = names.find(*ino); it != names.end()) h.ref.name = it->second;
  h.fd = std::move(*fd);
  return h;
}

std::string describeNetnsGaps(const NetnsListingGaps& gaps) {
  return "the network namespaces of " + std::to_string(gaps.hiddenProcesses) +
         " process(es) could not be opened (first: pid " + gaps.firstHidden +
         "): a namespace that only they are in was skipped. Every namespace needs root, or "
         "CAP_SYS_ADMIN and CAP_SYS_PTRACE";
}

Result<std::vector<NetnsHandle>> listNetworkNamespaces(const std::string& procRoot,
                                                       const std::string& runNetns,
                                                       NetnsListingGaps* gaps,
                                                       NetnsAliasCache* aliases) {
  std::vector<NetnsHandle> out;
  std::unordered_map<std::uint64_t, std::size_t> byInode;
  std::uint64_t ownInode = 0;
  if (auto own = openOwnNamespace(procRoot)) {
    if (auto ino = namespaceInode(own->get())) ownInode = *ino;
  }

  DirPtr proc(::opendir(procRoot.c_str()));
  if (!proc) {
    const int err = errno;  // before the message is built
    return osError(err, "opening " + procRoot);
  }
  while (const dirent* e = ::readdir(proc.get())) {
    if (!isPid(e->d_name)) continue;
    // A process that exited is skipped; one whose namespace we may not open is counted.
    auto fd = openAt(::dirfd(proc.get()), std::string(e->d_name) + "/ns/net");
    if (!fd) {
      const int err = fd.error().errnum;
      if (gaps != nullptr && (err == EACCES || err == EPERM)) {
        if (gaps->hiddenProcesses++ == 0) {
          struct stat st {};
          const bool owned = ::fstatat(::dirfd(proc.get()), e->d_name, &st, 0) == 0;
          gaps->firstHidden = std::string(e->d_name) +
                              (owned ? " (uid " + std::to_string(st.st_uid) + ")" : "") + ": " +
                              std::strerror(err);
        }
      }
      continue;
    }
    auto ino = namespaceInode(fd->get());
    if (!ino || byInode.contains(*ino)) continue;
    byInode.emplace(*ino, out.size());
    NetnsHandle h;
    h.ref.inode = *ino;
    if (*ino == ownInode) {
      h.ref.alias = kOwnNetnsAlias;
    } else if (aliases == nullptr) {
      h.ref.alias = holderAlias(::dirfd(proc.get()), e->d_name);
    } else if (auto it = aliases->find(*ino); it != aliases->end()) {
      h.ref.alias = it->second;
    } else {
      h.ref.alias = holderAlias(::dirfd(proc.get()), e->d_name);
      // Not found (the holder exited before its cgroup was read): asked again next time.
      if (!h.ref.alias.empty()) aliases->emplace(*ino, h.ref.alias);
    }
    h.fd = std::move(*fd);
    out.push_back(std::move(h));
  }

  // Named namespaces may have no process in them at all.
  walkRunNetns(runNetns, [&](const std::string& name, UniqueFd fd, std::uint64_t ino) {
    auto it = byInode.find(ino);
    if (it == byInode.end()) {
      byInode.emplace(ino, out.size());
      NetnsHandle h;
      h.ref = NetnsRef{ino, name, {}};
      h.fd = std::move(fd);
      out.push_back(std::move(h));
      return;
    }
    auto& ref = out[it->second].ref;
    if (ref.name.empty() || name < ref.name) ref.name = name;
  });

  std::sort(out.begin(), out.end(),
            [](const NetnsHandle& a, const NetnsHandle& b) { return a.ref.inode < b.ref.inode; });
  if (aliases != nullptr) {  // forget namespaces that are gone (an inode can be reused)
    std::erase_if(*aliases, [&](const auto& kv) { return !byInode.contains(kv.first); });
  }
  // Two namespaces with one label (two held by one service, or an alias that is also an
  // `ip netns` name) would merge in every metric: an alias shared so keeps the inode beside it.
  std::unordered_map<std::string, int> labelUses;
  for (const NetnsHandle& h : out)
    ++labelUses[h.ref.label()];
  for (NetnsHandle& h : out) {
    if (h.ref.name.empty() && !h.ref.alias.empty() && labelUses[h.ref.alias] > 1) {
      h.ref.alias += "/net:[" + std::to_string(h.ref.inode) + "]";
    }
  }
  return out;
}

Result<NetnsHandle> openNamedNetworkNamespace(const std::string& name,
                                              const std::string& runNetns) {
  if (!validNetnsName(name)) {
    return Error{EINVAL, "'" + name + "' is not a valid network namespace name"};
  }
  const std::string path = runNetns + "/" + name;
  auto fd = openAt(AT_FDCWD, path);
  if (!fd) {
    if (fd.error().errnum == ENOENT) {
      return Error{ENOENT, "no network namespace named '" + name + "' (" + path + ")"};
    }
    return fd.error();
  }
  if (!isNetworkNamespace(fd->get())) {
    return Error{EINVAL, path + " is not a network namespace"};
  }
  auto ino = namespaceInode(fd->get());
  if (!ino) return ino.error().wrap(path);
  NetnsHandle h;
  h.ref = NetnsRef{*ino, name, {}};
  h.fd = std::move(*fd);
  return h;
}

}  // namespace waitwatch
