// SPDX-License-Identifier: Apache-2.0
#include "bpf/socket_fds.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "iterator_program.hpp"
#include "libbpf_log.hpp"
#include "objects.hpp"
#include "sys/file.hpp"

namespace waitwatch::bpf {
namespace {

constexpr const char* kProgramName = "socket_fds";
std::span<const unsigned char> embeddedObject() {
  return {detail::kSocketFdsObject, detail::kSocketFdsObjectSize};
}
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
  detail::IteratorProgram program;
  detail::StartTicks startTicks;
  std::vector<char> buffer;
};

bool compiledIn() {
  return true;
}
std::string unavailableReason() {
  return {};
}

namespace {

// A program, loaded or opened from a pin, with its read buffer.
Result<std::unique_ptr<SocketFdScanner::Loaded>> withBuffer(
    Result<detail::IteratorProgram> program) {
  if (!program) return program.error();
  auto loaded = std::make_unique<SocketFdScanner::Loaded>(
      SocketFdScanner::Loaded{std::move(*program), {}, {}});
  loaded->buffer.resize(kReadBufferSize);
  return loaded;
}

}  // namespace

SocketFdScanner::SocketFdScanner(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
SocketFdScanner::SocketFdScanner(SocketFdScanner&&) noexcept = default;
SocketFdScanner& SocketFdScanner::operator=(SocketFdScanner&&) noexcept = default;
SocketFdScanner::~SocketFdScanner() = default;

Result<SocketFdScanner> SocketFdScanner::load() {
  auto loaded = withBuffer(detail::IteratorProgram::load(embeddedObject(), "waitwatch_socket_fds",
                                                         kProgramName, "the BPF socket-fd iterator",
                                                         kRequirement));
  if (!loaded) return loaded.error();
  return SocketFdScanner(std::move(*loaded));
}

Result<SocketFdScanner> SocketFdScanner::reusePinned() {
  auto loaded =
      withBuffer(detail::IteratorProgram::openPinned(embeddedObject(), kProgramName, "task_file"));
  if (!loaded) return loaded.error();
  return SocketFdScanner(std::move(*loaded));
}

Result<std::string> SocketFdScanner::pin() {
  return loaded_->program.pin(embeddedObject(), kProgramName);
}

bool SocketFdScanner::reused() const {
  return loaded_->program.reused();
}

Result<void> SocketFdScanner::scan(std::vector<SocketFd>& out) {
  out.clear();
  auto scan = loaded_->program.start("a BPF socket-fd scan");
  if (!scan) return scan.error();
  return detail::readRecords(
      scan->get(), loaded_->buffer, sizeof(RawRecord),
      [&](std::span<const std::byte> records) {
        for (std::size_t off = 0; off < records.size(); off += sizeof(RawRecord)) {
          RawRecord r;
          std::memcpy(&r, records.data() + off, sizeof(r));
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
        return records.size();
      },
      "the BPF socket-fd scan");
}

Result<SocketFdScan> scanSocketFds() {
  auto scanner = SocketFdScanner::load();
  if (!scanner) return scanner.error();
  SocketFdScan s;
  if (auto r = scanner->scan(s.fds); !r) return r.error();
  return s;
}

}  // namespace waitwatch::bpf
