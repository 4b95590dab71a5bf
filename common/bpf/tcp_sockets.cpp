// SPDX-License-Identifier: Apache-2.0
#include "bpf/tcp_sockets.hpp"

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "core/tcp_walk_records.hpp"
#include "iterator_program.hpp"
#include "objects.hpp"

namespace waitwatch::bpf {
namespace {

constexpr const char* kProgramName = "tcp_sockets";
std::span<const unsigned char> embeddedObject() {
  return {detail::kTcpSocketsObject, detail::kTcpSocketsObjectSize};
}
constexpr std::string_view kRequirement =
    "needs Linux >= 5.15 with BTF and the kernel's configuration for CONFIG_HZ";
// One read() returns at most the kernel's seq_file buffer (bpf_seq_read(): 8 pages); a larger
// user buffer costs nothing and never splits the buffer's contents.
constexpr std::size_t kReadBufferSize = 1 << 18;

}  // namespace

struct TcpSocketIterator::Loaded {
  detail::IteratorProgram program;
  std::vector<char> buffer;
};

namespace {

// A program, loaded or opened from a pin, with its read buffer.
Result<std::unique_ptr<TcpSocketIterator::Loaded>> withBuffer(
    Result<detail::IteratorProgram> program) {
  if (!program) return program.error();
  auto loaded = std::make_unique<TcpSocketIterator::Loaded>(
      TcpSocketIterator::Loaded{std::move(*program), {}});
  loaded->buffer.resize(kReadBufferSize);
  return loaded;
}

}  // namespace

TcpSocketIterator::TcpSocketIterator(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
TcpSocketIterator::TcpSocketIterator(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator& TcpSocketIterator::operator=(TcpSocketIterator&&) noexcept = default;
TcpSocketIterator::~TcpSocketIterator() = default;

Result<TcpSocketIterator> TcpSocketIterator::load() {
  auto loaded = withBuffer(
      detail::IteratorProgram::load(embeddedObject(), "waitwatch_tcp_sockets", kProgramName,
                                    "the BPF TCP socket iterator", kRequirement));
  if (!loaded) return loaded.error();
  return TcpSocketIterator(std::move(*loaded));
}

Result<TcpSocketIterator> TcpSocketIterator::reusePinned() {
  auto loaded =
      withBuffer(detail::IteratorProgram::openPinned(embeddedObject(), kProgramName, "tcp"));
  if (!loaded) return loaded.error();
  return TcpSocketIterator(std::move(*loaded));
}

Result<std::string> TcpSocketIterator::pin() {
  return loaded_->program.pin(embeddedObject(), kProgramName);
}

bool TcpSocketIterator::reused() const {
  return loaded_->program.reused();
}

Result<UniqueFd> TcpSocketIterator::start() {
  return loaded_->program.start("a BPF TCP socket walk");
}

Result<TcpWalkStats> TcpSocketIterator::read(UniqueFd walk, bool withCgroupId,
                                             FunctionRef<void(const SocketRecord&)> visit) {
  TcpWalkStats stats;
  auto r = detail::readRecords(
      walk.get(), loaded_->buffer, sizeof(TcpWalkRecord),
      [&](std::span<const std::byte> records) {
        ++stats.reads;
        const TcpWalkDecode decoded = decodeTcpWalkRecords(records, withCgroupId, visit);
        stats.sockets += decoded.sockets;
        return decoded.consumed;
      },
      "a BPF TCP socket walk");
  if (!r) return r.error();
  return stats;
}

}  // namespace waitwatch::bpf
