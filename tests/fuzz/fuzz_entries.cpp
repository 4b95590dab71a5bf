// SPDX-License-Identifier: Apache-2.0
#include "fuzz_entries.hpp"

#include <cstring>
#include <span>
#include <string_view>

#include "core/kernel_counters.hpp"
#include "core/netlink_parser.hpp"
#include "core/tcp_walk_records.hpp"

namespace waitwatch::fuzz {
namespace {

const char* checkRecord(const SocketRecord& r) {
  if (r.family != AddressFamily::V4 && r.family != AddressFamily::V6) return "record family";
  if (r.local.address.family != r.family || r.remote.address.family != r.family) {
    return "address family differs from the socket's";
  }
  if (!isValidTcpState(static_cast<std::uint8_t>(r.state))) return "record state out of range";
  if (static_cast<std::uint8_t>(r.timer) >
      static_cast<std::uint8_t>(SocketTimer::ZeroWindowProbe)) {
    return "record timer out of range";
  }
  if (r.family == AddressFamily::V4) {
    for (std::size_t i = 4; i < 16; ++i) {
      if (r.local.address.bytes[i] != 0 || r.remote.address.bytes[i] != 0) {
        return "IPv4 address carries bytes past the fourth";
      }
    }
  }
  if (!r.hasCgroupId && r.cgroupId != 0) return "cgroup id without the attribute";
  return nullptr;
}

const char* checkResult(const DumpBufferResult& res, std::uint32_t visited, const char* bad,
                        std::size_t size) {
  if (bad != nullptr) return bad;
  if (visited != res.sockets) return "visitor calls differ from the sockets count";
  if (res.sockets + res.skipped > res.messages) return "more sockets than messages";
  if (res.messages > size / 16) return "more messages than the buffer can hold";
  switch (res.status) {
    case DumpBufferStatus::Error:
      if (res.error.errnum == 0) return "error without errno";
      if (res.error.message.rfind("netlink message ", 0) != 0) return "error does not say where";
      break;
    case DumpBufferStatus::Done:
      if (!res.doneSeen) return "Done without NLMSG_DONE";
      break;
    case DumpBufferStatus::Continue:
      if (res.doneSeen) return "NLMSG_DONE seen but status Continue";
      break;
    case DumpBufferStatus::Interrupted:
      break;
  }
  return nullptr;
}

}  // namespace

const char* netlinkReply(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span<const std::uint8_t>(data, size));
  const char* bad = nullptr;
  std::uint32_t visited = 0;
  auto visit = [&](const SocketRecord& r) {
    ++visited;
    if (bad == nullptr) bad = checkRecord(r);
  };
  const DumpBufferResult all = parseSockDiagBuffer(bytes, {}, visit);
  if (const char* e = checkResult(all, visited, bad, size)) return e;

  // Again as the sampler parses: only the first message's sequence number and port id count,
  // and without the cgroup attribute.
  if (size >= 16) {
    std::uint32_t seq = 0;
    std::uint32_t pid = 0;
    std::memcpy(&seq, data + 8, 4);
    std::memcpy(&pid, data + 12, 4);
    visited = 0;
    const DumpBufferResult mine = parseSockDiagBuffer(
        bytes, {.expectSeq = seq, .expectPortId = pid, .wantCgroupId = false}, visit);
    if (const char* e = checkResult(mine, visited, bad, size)) return e;
    // (No comparison with the unfiltered walk: a foreign NLMSG_DONE or a foreign malformed
    // message ends that walk but is skipped by this one, which then goes on delivering.)
  }
  return nullptr;
}

const char* tcpWalkRecords(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span<const std::uint8_t>(data, size));
  for (const bool withCgroupId : {true, false}) {
    const char* bad = nullptr;
    std::uint64_t visited = 0;
    const TcpWalkDecode d = decodeTcpWalkRecords(bytes, withCgroupId, [&](const SocketRecord& r) {
      ++visited;
      if (bad == nullptr) bad = checkRecord(r);
      if (bad == nullptr && !withCgroupId && r.hasCgroupId) bad = "cgroup id not asked for";
    });
    if (bad != nullptr) return bad;
    if (visited != d.sockets) return "visitor calls differ from the sockets count";
    if (d.consumed % sizeof(TcpWalkRecord) != 0) return "consumed part of a record";
    if (d.consumed > size || size - d.consumed >= sizeof(TcpWalkRecord)) {
      return "a whole record left undecoded";
    }
    if (d.sockets + d.skipped != d.consumed / sizeof(TcpWalkRecord)) {
      return "records neither delivered nor skipped";
    }
  }
  return nullptr;
}

const char* kernelCounters(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t names = 0;
  auto r = forEachKernelCounter(
      text, [&](std::string_view section, std::string_view name, KernelCounterValue) {
        if (section.empty() || name.empty()) names = static_cast<std::size_t>(-1);
        if (names != static_cast<std::size_t>(-1)) ++names;
      });
  if (names == static_cast<std::size_t>(-1)) return "empty section or counter name";
  if (!r.ok() && r.error().message.rfind("line ", 0) != 0) return "error does not name the line";
  auto c = parseKernelTcpCounters(text, text);
  if (c.ok() != (c.ok() && c->valid)) return "counters parsed but not marked valid";
  if (!c.ok() && c.error().message.empty()) return "empty error message";
  // The same bytes as /proc/net/sockstat and as net.ipv4.tcp_mem.
  auto pages = parseSockstatTcpPages(text);
  if (!pages.ok() && pages.error().message.empty()) return "empty sockstat error";
  auto mem = parseTcpMem(text);
  if (mem.ok()) {
    // What parses prints back to the same three values.
    const std::string again = std::to_string((*mem)[0]) + "\t" + std::to_string((*mem)[1]) + "\t" +
                              std::to_string((*mem)[2]) + "\n";
    auto back = parseTcpMem(again);
    if (!back.ok() || *back != *mem) return "tcp_mem does not read back";
  } else if (mem.error().message.empty()) {
    return "empty tcp_mem error";
  }
  // And as net.ipv4.tcp_ehash_entries.
  auto entries = parseTcpHashEntries(text);
  if (entries.ok()) {
    if (*entries == 0) return "tcp_ehash_entries: zero buckets accepted";
    auto back = parseTcpHashEntries(std::to_string(*entries) + "\n");
    if (!back.ok() || *back != *entries) return "tcp_ehash_entries does not read back";
  } else if (entries.error().message.empty()) {
    return "empty tcp_ehash_entries error";
  }
  return nullptr;
}

}  // namespace waitwatch::fuzz
