// SPDX-License-Identifier: Apache-2.0
#include "bpf/socket_fds.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "socket_fds_object.hpp"
#include "sys/file.hpp"

namespace waitwatch::bpf {
namespace {

constexpr const char* kBtfPath = "/sys/kernel/btf/vmlinux";
constexpr const char* kProgramName = "socket_fds";
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

// libbpf prints its diagnostics to stderr by default, which would change the command's output
// on every host where BPF cannot load. Keep the last line to name the cause in our Error.
thread_local std::string lastLibbpfMessage;

int keepLibbpfMessage(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  const int n = std::vsnprintf(line, sizeof(line), format, args);
  if (n <= 0) return 0;
  std::string_view text(line, std::min(static_cast<std::size_t>(n), sizeof(line) - 1));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  if (!text.empty()) lastLibbpfMessage.assign(text);
  return 0;
}

void silenceLibbpf() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(keepLibbpfMessage); });
}

std::string withLibbpfDetail(std::string message) {
  if (!lastLibbpfMessage.empty()) message += " (libbpf: " + lastLibbpfMessage + ")";
  lastLibbpfMessage.clear();
  return message;
}

Error loadError(int err, std::string_view what) {
  std::string message = std::string(what) + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES) {
    message += " (needs CAP_BPF and CAP_PERFMON, or root)";
    lastLibbpfMessage.clear();
    return Error{err, message};
  }
  return Error{err, withLibbpfDetail(std::move(message) +
                                     " (needs Linux >= 5.8 with BTF and task_file iterators)")};
}

// The boot-time offset of the caller's time namespace: /proc/<pid>/stat adds it to start times.
std::int64_t boottimeOffsetNs() {
  std::string text;
  if (!readFileAt(AT_FDCWD, "/proc/self/timens_offsets", text, 4096)) return 0;
  const auto at = text.find("boottime");
  if (at == std::string::npos) return 0;
  long long sec = 0;
  long long nsec = 0;
  if (std::sscanf(text.c_str() + at, "boottime %lld %lld", &sec, &nsec) != 2) return 0;
  return static_cast<std::int64_t>(sec) * 1'000'000'000 + nsec;
}

}  // namespace

struct SocketFdScanner::Loaded {
  bpf_object* object = nullptr;
  bpf_link* link = nullptr;
  std::int64_t offsetNs = 0;
  std::uint64_t nsPerTick = 10'000'000;
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
  silenceLibbpf();
  lastLibbpfMessage.clear();
  // Without the kernel's BTF the CO-RE relocations cannot be done; say so rather than relay
  // libbpf's generic failure.
  if (::access(kBtfPath, R_OK) != 0) {
    const int err = errno;
    return Error{err, std::string("the kernel has no BTF (") + kBtfPath + ": " +
                          std::strerror(err) + "; needs CONFIG_DEBUG_INFO_BTF)"};
  }
  auto loaded = std::make_unique<Loaded>();
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = "waitwatch_socket_fds";
  loaded->object =
      bpf_object__open_mem(detail::kSocketFdsObject, detail::kSocketFdsObjectSize, &opts);
  if (loaded->object == nullptr) {
    const int err = errno;
    return Error{err, withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                       std::strerror(err))};
  }
  if (const int r = bpf_object__load(loaded->object); r != 0) {
    return loadError(-r, "loading the BPF socket-fd iterator");
  }
  bpf_program* program = bpf_object__find_program_by_name(loaded->object, kProgramName);
  if (program == nullptr) return Error{ENOENT, "the BPF object has no program socket_fds"};
  loaded->link = bpf_program__attach_iter(program, nullptr);
  if (loaded->link == nullptr) {
    return loadError(errno, "attaching the BPF socket-fd iterator");
  }
  loaded->offsetNs = boottimeOffsetNs();
  if (const long hz = ::sysconf(_SC_CLK_TCK); hz > 0 && 1'000'000'000 % hz == 0) {
    loaded->nsPerTick = 1'000'000'000 / static_cast<std::uint64_t>(hz);
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
      const auto ns = static_cast<std::int64_t>(r.startBoottimeNs) + loaded_->offsetNs;
      out.push_back(
          SocketFd{.pid = static_cast<std::int32_t>(r.pid),
                   .fd = static_cast<std::int32_t>(r.fd),
                   .inode = static_cast<std::uint32_t>(r.inode),
                   .startTicks = ns > 0 ? static_cast<std::uint64_t>(ns) / loaded_->nsPerTick : 0});
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
