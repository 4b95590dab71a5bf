// SPDX-License-Identifier: Apache-2.0
#include "iterator_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bpf/pins.hpp"
#include "libbpf_log.hpp"
#include "sys/file.hpp"

namespace waitwatch::bpf::detail {
namespace {

constexpr const char* kDefaultPinDirectory = "/sys/fs/bpf/waitwatch";
// The system user the packaged unit runs the daemon as (systemd/waitwatch.sysusers).
constexpr const char* kDaemonUser = "waitwatch";

std::string withoutTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return dir;
}

std::string parentOf(const std::string& dir) {
  const auto slash = dir.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

// The iterator target ("tcp", "task_file") of the link behind `fd`; nullopt when `fd` is not
// an iterator's link. Maps, programs and links share bpf_obj_get_info_by_fd() but fill
// different structures, so what the fd is comes first, from its fdinfo (kernel/bpf/syscall.c,
// bpf_link_show_fdinfo(): "link_type:\titer").
std::optional<std::string> iteratorTarget(int fd) {
  std::string info;
  if (!readFileAt(AT_FDCWD, "/proc/self/fdinfo/" + std::to_string(fd), info)) return std::nullopt;
  if (info.find("\nlink_type:\titer\n") == std::string::npos &&
      !info.starts_with("link_type:\titer\n")) {
    return std::nullopt;
  }
  char name[64] = {};
  bpf_link_info link{};
  link.iter.target_name = reinterpret_cast<std::uint64_t>(name);
  link.iter.target_name_len = sizeof(name);
  std::uint32_t len = sizeof(link);
  if (bpf_obj_get_info_by_fd(fd, &link, &len) != 0 || link.type != BPF_LINK_TYPE_ITER) {
    return std::nullopt;
  }
  name[sizeof(name) - 1] = '\0';
  return std::string(name);
}

// Whom a pin directory may belong to for this process to run what is in it: root, this user,
// or the daemon's own user. Nobody else may be able to write to it.
Result<void> trustedDirectory(const std::string& dir, bool mustBeOurs) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return osError(errno, dir);
  if (!S_ISDIR(st.st_mode)) return Error{ENOTDIR, dir + " is not a directory"};
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Error{EPERM, dir + " is writable by others than its owner: not used for pins"};
  }
  const uid_t me = ::geteuid();
  bool trusted = st.st_uid == me;
  if (!trusted && !mustBeOurs) {
    trusted = st.st_uid == 0;
    if (!trusted) {
      passwd pw{};
      passwd* found = nullptr;
      char buf[1024];
      if (::getpwnam_r(kDaemonUser, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
        trusted = st.st_uid == found->pw_uid;
      }
    }
  }
  if (!trusted) {
    return Error{EPERM,
                 dir + " belongs to uid " + std::to_string(st.st_uid) + ": not used for pins"};
  }
  return {};
}

// Pins this process made and still owns, for removePinsOfThisProcess().
std::mutex ownPinsMutex;
std::vector<PinFile> ownPins;

// Removes the pin when its path still holds the file this process made there.
void removeIfOurs(const PinFile& pin) {
  struct stat st {};
  if (::lstat(pin.path.c_str(), &st) == 0 && st.st_dev == pin.dev && st.st_ino == pin.ino) {
    ::unlink(pin.path.c_str());
  }
}

}  // namespace

std::string pinDirectory() {
  const char* v = std::getenv("WAITWATCH_BPF_PIN_DIR");
  return withoutTrailingSlashes(v != nullptr && *v != '\0' ? std::string(v)
                                                           : std::string(kDefaultPinDirectory));
}

std::string pinName(std::span<const unsigned char> object, const char* program) {
  // FNV-1a: a name per build, not a defence (the directory's owner is checked).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : object) {
    h = (h ^ c) * 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return std::string(program) + "-" + hex;
}

Result<IteratorProgram> IteratorProgram::load(std::span<const unsigned char> object,
                                              const char* objectName, const char* program,
                                              std::string_view what, std::string_view requirement) {
  silenceLibbpf();
  // Without the kernel's BTF the CO-RE relocations cannot be done; say so rather than relay
  // libbpf's generic failure.
  if (auto btf = requireKernelBtf(); !btf) return btf.error();
  IteratorProgram p;
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = objectName;
  p.object_ = bpf_object__open_mem(object.data(), object.size(), &opts);
  if (p.object_ == nullptr) {
    const int err = errno;
    return Error{err, withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                       std::strerror(err))};
  }
  if (const int r = bpf_object__load(p.object_); r != 0) {
    return loadError(-r, "loading " + std::string(what), requirement);
  }
  bpf_program* prog = bpf_object__find_program_by_name(p.object_, program);
  if (prog == nullptr) {
    return Error{ENOENT, "the BPF object has no program " + std::string(program)};
  }
  p.link_ = bpf_program__attach_iter(prog, nullptr);
  if (p.link_ == nullptr) return loadError(errno, "attaching " + std::string(what), requirement);
  return p;
}

Result<IteratorProgram> IteratorProgram::openPinned(std::span<const unsigned char> object,
                                                    const char* program, std::string_view target) {
  silenceLibbpf();
  const std::string dir = pinDirectory();
  if (auto trusted = trustedDirectory(dir, false); !trusted) return trusted.error();
  const std::string path = dir + "/" + pinName(object, program);
  IteratorProgram p;
  p.link_ = bpf_link__open(path.c_str());
  if (p.link_ == nullptr) return osError(errno, path);
  const auto found = iteratorTarget(bpf_link__fd(p.link_));
  if (!found) return Error{EINVAL, path + " is not an iterator's link"};
  if (*found != target) {
    return Error{EINVAL, path + " iterates " + *found + ", not " + std::string(target)};
  }
  return p;
}

Result<std::string> IteratorProgram::pin(std::span<const unsigned char> object,
                                         const char* program) {
  const std::string dir = pinDirectory();
  // Where no BPF filesystem is mounted the directory would be made on whatever is there (sysfs
  // refuses, a tmpfs would not), and the pin would fail less clearly.
  struct statfs fs {};
  const std::string parent = parentOf(dir);
  if (::statfs(parent.c_str(), &fs) != 0) return osError(errno, parent);
  if (fs.f_type != BPF_FS_MAGIC) {
    return Error{ENOTSUP, parent + " is not a BPF filesystem (mount -t bpf -o mode=0700 bpf " +
                              parent + ")"};
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return osError(errno, dir);
  // Made by this process or for it (the unit makes it for the daemon's user): one that someone
  // else made first, or that others may write to, could hand the command line their programs.
  if (auto trusted = trustedDirectory(dir, true); !trusted) return trusted.error();
  const std::string name = pinName(object, program);
  const std::string prefix = std::string(program) + "-";
  if (DIR* d = ::opendir(dir.c_str()); d != nullptr) {
    // Pins of other builds: left by a daemon that was killed before an upgrade; nothing of this
    // build reads them.
    while (const dirent* e = ::readdir(d)) {
      const std::string_view n(e->d_name);
      if (n.starts_with(prefix) && n != name) ::unlinkat(::dirfd(d), e->d_name, 0);
    }
    ::closedir(d);
  }
  PinFile own{dir + "/" + name};
  ::unlink(own.path.c_str());  // a pin of a process that is gone, or of another daemon: ours now
  if (const int r = bpf_link__pin(link_, own.path.c_str()); r != 0) return osError(-r, own.path);
  struct stat st {};
  if (::lstat(own.path.c_str(), &st) == 0) {
    own.dev = st.st_dev;
    own.ino = st.st_ino;
  }
  pin_ = own;
  const std::lock_guard lock(ownPinsMutex);
  ownPins.push_back(own);
  return own.path;
}

void removeOwnPins() {
  const std::lock_guard lock(ownPinsMutex);
  for (const PinFile& pin : ownPins)
    removeIfOurs(pin);
  ownPins.clear();
}

IteratorProgram::IteratorProgram(IteratorProgram&& other) noexcept
    : object_(std::exchange(other.object_, nullptr)),
      link_(std::exchange(other.link_, nullptr)),
      pin_(std::exchange(other.pin_, std::nullopt)) {}

IteratorProgram& IteratorProgram::operator=(IteratorProgram&& other) noexcept {
  if (this != &other) {
    reset();
    object_ = std::exchange(other.object_, nullptr);
    link_ = std::exchange(other.link_, nullptr);
    pin_ = std::exchange(other.pin_, std::nullopt);
  }
  return *this;
}

IteratorProgram::~IteratorProgram() {
  reset();
}

void IteratorProgram::unpin() {
  if (!pin_) return;
  const PinFile pin = *std::exchange(pin_, std::nullopt);
  const std::lock_guard lock(ownPinsMutex);
  // Only while the pin is still the file this process made: another daemon may have replaced
  // it since. The file's identity, not a bpf() call, which may need a capability dropped since.
  const auto it = std::find(ownPins.begin(), ownPins.end(), pin);
  if (it == ownPins.end()) return;  // removePinsOfThisProcess() did
  removeIfOurs(pin);
  ownPins.erase(it);
}

void IteratorProgram::reset() {
  if (link_ != nullptr) {
    unpin();
    bpf_link__destroy(std::exchange(link_, nullptr));
  }
  if (object_ != nullptr) bpf_object__close(std::exchange(object_, nullptr));
}

Result<UniqueFd> IteratorProgram::start(std::string_view what) const {
  UniqueFd walk(bpf_iter_create(bpf_link__fd(link_)));
  if (!walk) return osError(errno, "starting " + std::string(what));
  return walk;
}

Result<void> readRecords(int walk, std::vector<char>& buffer, std::size_t recordSize,
                         FunctionRef<std::size_t(std::span<const std::byte>)> consume,
                         std::string_view what) {
  std::size_t carried = 0;  // bytes of a record cut by the previous read
  for (;;) {
    const ssize_t n = ::read(walk, buffer.data() + carried, buffer.size() - carried);
    if (n < 0) {
      // EAGAIN: the kernel visited its maximum number of objects in one read without writing a
      // record; the next read goes on from there.
      if (errno == EINTR || errno == EAGAIN) continue;
      return osError(errno, "reading " + std::string(what));
    }
    if (n == 0) break;
    const std::size_t have = carried + static_cast<std::size_t>(n);
    const std::size_t whole = have - have % recordSize;
    const std::size_t used = consume(std::as_bytes(std::span<const char>(buffer.data(), whole)));
    carried = have - used;
    if (carried > 0) std::memmove(buffer.data(), buffer.data() + used, carried);
  }
  if (carried != 0) {
    return Error{EPROTO, std::string(what) + " ended inside a record (" + std::to_string(carried) +
                             " bytes left)"};
  }
  return {};
}

}  // namespace waitwatch::bpf::detail

namespace waitwatch::bpf {

void removePinsOfThisProcess() {
  detail::removeOwnPins();
}

}  // namespace waitwatch::bpf
