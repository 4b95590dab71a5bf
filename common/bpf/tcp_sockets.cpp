// SPDX-License-Identifier: Apache-2.0
#include "bpf/tcp_sockets.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

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

// tcp_socket_record in tcp_sockets.bpf.c.
struct RawRecord {
  std::uint32_t local[4];
  std::uint32_t remote[4];
  std::uint64_t cookie;
  std::uint64_t cgroupId;
  std::uint32_t inode;
  std::uint32_t uid;
  std::uint32_t recvQ;
  std::uint32_t sendQ;
  std::uint32_t timerMs;
  std::uint16_t localPort;   // network order
  std::uint16_t remotePort;  // network order
  std::uint8_t family;       // AF_INET or AF_INET6, and kFullSocket
  std::uint8_t state;
  std::uint8_t timer;
  std::uint8_t retransmits;
  std::uint32_t reserved;
};
static_assert(sizeof(RawRecord) == 80);

constexpr std::uint8_t kFullSocket = 0x80;  // has a cgroup, as INET_DIAG_CGROUP_ID is sent
constexpr std::uint8_t kAfInet = 2;
constexpr std::uint8_t kAfInet6 = 10;

std::uint16_t fromNetwork(std::uint16_t v) {
  return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}

// False for what inet_diag would not send either (a family or state it does not report).
bool decode(const RawRecord& r, bool withCgroupId, SocketRecord& out) {
  const std::uint8_t family = r.family & static_cast<std::uint8_t>(~kFullSocket);
  std::size_t addrLen = 0;
  if (family == kAfInet) {
    out.family = AddressFamily::V4;
    addrLen = 4;
  } else if (family == kAfInet6) {
    out.family = AddressFamily::V6;
    addrLen = 16;
  } else {
    return false;
  }
  if (!isValidTcpState(r.state)) return false;
  out.state = static_cast<TcpState>(r.state);
  out.timer = r.timer <= static_cast<std::uint8_t>(SocketTimer::ZeroWindowProbe)
                  ? static_cast<SocketTimer>(r.timer)
                  : SocketTimer::None;
  out.retransmits = r.retransmits;
  out.local = Endpoint{};
  out.remote = Endpoint{};
  out.local.address.family = out.family;
  out.remote.address.family = out.family;
  std::memcpy(out.local.address.bytes.data(), r.local, addrLen);
  std::memcpy(out.remote.address.bytes.data(), r.remote, addrLen);
  out.local.port = fromNetwork(r.localPort);
  out.remote.port = fromNetwork(r.remotePort);
  out.uid = r.uid;
  out.inode = r.inode;
  out.cookie = r.cookie;
  out.recvQ = r.recvQ;
  out.sendQ = r.sendQ;
  out.timerRemainingMs = r.timerMs;
  out.hasCgroupId = withCgroupId && (r.family & kFullSocket) != 0;
  out.cgroupId = out.hasCgroupId ? r.cgroupId : 0;
  return true;
}

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
  SocketRecord record;
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
    std::size_t off = 0;
    for (; off + sizeof(RawRecord) <= have; off += sizeof(RawRecord)) {
      RawRecord raw;
      std::memcpy(&raw, buffer.data() + off, sizeof(raw));
      if (!decode(raw, withCgroupId, record)) continue;
      ++stats.sockets;
      visit(record);
    }
    carried = have - off;
    if (carried > 0) std::memmove(buffer.data(), buffer.data() + off, carried);
  }
  if (carried != 0) {
    return Error{EPROTO, "the BPF TCP socket walk ended inside a record (" +
                             std::to_string(carried) + " bytes left)"};
  }
  return stats;
}

}  // namespace waitwatch::bpf
