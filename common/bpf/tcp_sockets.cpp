// SPDX-License-Identifier: Apache-2.0
#include "bpf/tcp_sockets.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "core/tcp_walk_records.hpp"
#include "libbpf_log.hpp"
#include "objects.hpp"

namespace waitwatch::bpf {
namespace {

constexpr const char* kProgramName = "tcp_sockets";
constexpr std::string_view kRequirement =
    "needs Linux >= 5.9 with BTF, iter/tcp and the kernel's configuration for CONFIG_HZ";
// One read() returns at most the kernel's seq_file buffer (bpf_seq_read(): 8 pages); a larger
// user buffer costs nothing and never splits the buffer's contents.
constexpr std::size_t kReadBufferSize = 1 << 18;

}  // namespace

struct TcpSocketIterator::Loaded {
  bpf_object* object = nullptr;
  bpf_link* link = nullptr;
  std::vector<char> buffer;

  Loaded() = default;
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;
  ~Loaded() {
    if (link != nullptr) bpf_link__destroy(link);
    if (object != nullptr) bpf_object__close(object);
  }
};

TcpSocketIterator::TcpSocketIterator(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
TcpSocketIterator::TcpSocketIterator(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator& TcpSocketIterator::operator=(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator::~TcpSocketIterator() = default;

Result<TcpSocketIterator> TcpSocketIterator::load() {
  detail::silenceLibbpf();
  if (auto btf = detail::requireKernelBtf(); !btf) return btf.error();
  auto loaded = std::make_unique<Loaded>();
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = "waitwatch_tcp_sockets";
  loaded->object =
      bpf_object__open_mem(detail::kTcpSocketsObject, detail::kTcpSocketsObjectSize, &opts);
  if (loaded->object == nullptr) {
    const int err = errno;
    return Error{err, detail::withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                               std::strerror(err))};
  }
  if (const int r = bpf_object__load(loaded->object); r != 0) {
    return detail::loadError(-r, "loading the BPF TCP socket iterator", kRequirement);
  }
  bpf_program* program = bpf_object__find_program_by_name(loaded->object, kProgramName);
  if (program == nullptr) return Error{ENOENT, "the BPF object has no program tcp_sockets"};
  loaded->link = bpf_program__attach_iter(program, nullptr);
  if (loaded->link == nullptr) {
    return detail::loadError(errno, "attaching the BPF TCP socket iterator", kRequirement);
  }
  loaded->buffer.resize(kReadBufferSize);
  return TcpSocketIterator(std::move(loaded));
}

Result<UniqueFd> TcpSocketIterator::start() {
  UniqueFd walk(bpf_iter_create(bpf_link__fd(loaded_->link)));
  if (!walk) return osError(errno, "starting a BPF TCP socket walk");
  return walk;
}

Result<TcpWalkStats> TcpSocketIterator::read(UniqueFd walk, bool withCgroupId,
                                             FunctionRef<void(const SocketRecord&)> visit) {
  TcpWalkStats stats;
  std::vector<char>& buffer = loaded_->buffer;
  std::size_t carried = 0;  // bytes of a record cut by the previous read (the kernel does not)
  for (;;) {
    const ssize_t n = ::read(walk.get(), buffer.data() + carried, buffer.size() - carried);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return osError(errno, "reading a BPF TCP socket walk");
    }
    ++stats.reads;
    if (n == 0) break;
    const std::size_t have = carried + static_cast<std::size_t>(n);
    const TcpWalkDecode decoded = decodeTcpWalkRecords(
        std::as_bytes(std::span<const char>(buffer.data(), have)), withCgroupId, visit);
    stats.sockets += decoded.sockets;
    carried = have - decoded.consumed;
    if (carried > 0) std::memmove(buffer.data(), buffer.data() + decoded.consumed, carried);
  }
  if (carried != 0) {
    return Error{EPROTO, "the BPF TCP socket walk ended inside a record (" +
                             std::to_string(carried) + " bytes left)"};
  }
  return stats;
}

}  // namespace waitwatch::bpf
