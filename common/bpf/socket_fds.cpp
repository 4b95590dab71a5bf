// SPDX-License-Identifier: Apache-2.0
#include "bpf/socket_fds.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "libbpf_log.hpp"
#include "objects.hpp"
#include "sys/file.hpp"

namespace waitwatch::bpf {
namespace {

constexpr const char* kProgramName = "socket_fds";
constexpr std::string_view kRequirement = "needs Linux >= 5.8 with BTF and task_file iterators";
// One read() returns at most the kernel's seq_file buffer (a few pages); a large user buffer
// lets it hand over everything it has without a second copy.
constexpr std::size_t kReadBufferSize = 1 << 20;

// socket_fd_record in socket_fds.bpf.c.
struct RawRecord {
  std::uint32_t pid;
  std::uint32_t fd;
  std::uint64_t inode;
  std::uint64_t startBoottimeNs;
};
static_assert(sizeof(RawRecord) == 24);

}  // namespace

struct SocketFdScanner::Loaded {
  bpf_object* object = nullptr;
  bpf_link* link = nullptr;
  detail::StartTicks startTicks;
  std::vector<char> buffer;

  Loaded() = default;
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;
  ~Loaded() {
    if (link != nullptr) bpf_link__destroy(link);
    if (object != nullptr) bpf_object__close(object);
  }
};

bool compiledIn() {
  return true;
}
std::string unavailableReason() {
  return {};
}

SocketFdScanner::SocketFdScanner(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
SocketFdScanner::SocketFdScanner(SocketFdScanner&&) noexcept = default;
SocketFdScanner& SocketFdScanner::operator=(SocketFdScanner&&) noexcept = default;
SocketFdScanner::~SocketFdScanner() = default;

Result<SocketFdScanner> SocketFdScanner::load() {
  detail::silenceLibbpf();
  // Without the kernel's BTF the CO-RE relocations cannot be done; say so rather than relay
  // libbpf's generic failure.
  if (auto btf = detail::requireKernelBtf(); !btf) return btf.error();
  auto loaded = std::make_unique<Loaded>();
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = "waitwatch_socket_fds";
  loaded->object =
      bpf_object__open_mem(detail::kSocketFdsObject, detail::kSocketFdsObjectSize, &opts);
  if (loaded->object == nullptr) {
    const int err = errno;
    return Error{err, detail::withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                               std::strerror(err))};
  }
  if (const int r = bpf_object__load(loaded->object); r != 0) {
    return detail::loadError(-r, "loading the BPF socket-fd iterator", kRequirement);
  }
  bpf_program* program = bpf_object__find_program_by_name(loaded->object, kProgramName);
  if (program == nullptr) return Error{ENOENT, "the BPF object has no program socket_fds"};
  loaded->link = bpf_program__attach_iter(program, nullptr);
  if (loaded->link == nullptr) {
    return detail::loadError(errno, "attaching the BPF socket-fd iterator", kRequirement);
  }
  loaded->buffer.resize(kReadBufferSize);
  return SocketFdScanner(std::move(loaded));
}

Result<void> SocketFdScanner::scan(std::vector<SocketFd>& out) {
  out.clear();
  // Each bpf_iter_create() starts a new pass from the first process.
  UniqueFd iter(bpf_iter_create(bpf_link__fd(loaded_->link)));
  if (!iter) {
    const int err = errno;
    return osError(err, "starting a BPF socket-fd scan");
  }
  std::vector<char>& buffer = loaded_->buffer;
  std::size_t carried = 0;  // bytes of a record cut by the previous read (the kernel does not)
  for (;;) {
    const ssize_t n = ::read(iter.get(), buffer.data() + carried, buffer.size() - carried);
    if (n < 0) {
      // EAGAIN: the kernel visited its maximum number of files in one read without writing a
      // record (all of them non-sockets); the next read goes on from there.
      if (errno == EINTR || errno == EAGAIN) continue;
      const int err = errno;
      return osError(err, "reading the BPF socket-fd scan");
    }
    if (n == 0) break;
    const std::size_t have = carried + static_cast<std::size_t>(n);
    std::size_t off = 0;
    for (; off + sizeof(RawRecord) <= have; off += sizeof(RawRecord)) {
      RawRecord r;
      std::memcpy(&r, buffer.data() + off, sizeof(r));
      // Socket inodes are 32-bit (get_next_ino); fd and pid numbers are non-negative ints.
      if (r.inode == 0 || r.inode > UINT32_MAX || r.pid == 0 || r.pid > INT32_MAX ||
          r.fd > INT32_MAX) {
        continue;
      }
      out.push_back(SocketFd{.pid = static_cast<std::int32_t>(r.pid),
                             .fd = static_cast<std::int32_t>(r.fd),
                             .inode = static_cast<std::uint32_t>(r.inode),
                             .startTicks = loaded_->startTicks(r.startBoottimeNs)});
    }
    carried = have - off;
    if (carried > 0) std::memmove(buffer.data(), buffer.data() + off, carried);
  }
  if (carried != 0) {
    return Error{EPROTO, "the BPF socket-fd scan ended inside a record (" +
                             std::to_string(carried) + " bytes left)"};
  }
  return {};
}

Result<SocketFdScan> scanSocketFds() {
  auto scanner = SocketFdScanner::load();
  if (!scanner) return scanner.error();
  SocketFdScan s;
  if (auto r = scanner->scan(s.fds); !r) return r.error();
  return s;
}

}  // namespace waitwatch::bpf
