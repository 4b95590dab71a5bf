// SPDX-License-Identifier: Apache-2.0
#include "iterator_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "libbpf_log.hpp"

namespace waitwatch::bpf::detail {
namespace {

constexpr const char* kDefaultPinDirectory = "/sys/fs/bpf/waitwatch";

std::string parentOf(const std::string& dir) {
  const auto slash = dir.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : dir.substr(0, slash);
}

// The link id of an open link fd (0 when it is not one).
std::uint32_t linkId(int fd) {
  bpf_link_info info{};
  std::uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.id;
}

}  // namespace

std::string pinDirectory() {
  const char* v = std::getenv("WAITWATCH_BPF_PIN_DIR");
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(kDefaultPinDirectory);
}

std::string pinName(std::span<const unsigned char> object, const char* program) {
  // FNV-1a: not a defence (only root can write the directory), a name per build.
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
                                                    const char* program) {
  silenceLibbpf();
  const std::string path = pinDirectory() + "/" + pinName(object, program);
  IteratorProgram p;
  p.link_ = bpf_link__open(path.c_str());
  if (p.link_ == nullptr) return osError(errno, path);
  bpf_link_info info{};
  std::uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_link__fd(p.link_), &info, &len) != 0) {
    return osError(errno, path);
  }
  if (info.type != BPF_LINK_TYPE_ITER) return Error{EINVAL, path + " is not an iterator's link"};
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
    return Error{ENOTSUP, parent + " is not a BPF filesystem (mount -t bpf bpf " + parent + ")"};
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return osError(errno, dir);
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
  const std::string path = dir + "/" + name;
  ::unlink(path.c_str());  // a pin of a process that is gone, or of another daemon: ours now
  if (const int r = bpf_link__pin(link_, path.c_str()); r != 0) return osError(-r, path);
  pinnedAt_ = path;
  return path;
}

IteratorProgram::IteratorProgram(IteratorProgram&& other) noexcept
    : object_(std::exchange(other.object_, nullptr)),
      link_(std::exchange(other.link_, nullptr)),
      pinnedAt_(std::exchange(other.pinnedAt_, {})) {}

IteratorProgram& IteratorProgram::operator=(IteratorProgram&& other) noexcept {
  if (this != &other) {
    reset();
    object_ = std::exchange(other.object_, nullptr);
    link_ = std::exchange(other.link_, nullptr);
    pinnedAt_ = std::exchange(other.pinnedAt_, {});
  }
  return *this;
}

IteratorProgram::~IteratorProgram() {
  reset();
}

void IteratorProgram::unpin() {
  if (pinnedAt_.empty()) return;
  // Only while the pin is still this link's: another daemon may have replaced it since.
  const std::string path = std::exchange(pinnedAt_, {});
  const int pinned = bpf_obj_get(path.c_str());
  if (pinned < 0) {
    // Gone already; or, where the kernel wants CAP_BPF for any bpf() call (before Linux 6.5 with
    // unprivileged BPF disabled) and it was dropped, most likely still ours.
    if (errno != ENOENT) ::unlink(path.c_str());
    return;
  }
  const bool ours = linkId(pinned) != 0 && linkId(pinned) == linkId(bpf_link__fd(link_));
  ::close(pinned);
  if (ours) ::unlink(path.c_str());
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
