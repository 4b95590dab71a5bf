// SPDX-License-Identifier: Apache-2.0
#include "core/tcp_walk_records.hpp"

#include <cstring>

namespace waitwatch {
namespace {

constexpr std::uint8_t kAfInet = 2;
constexpr std::uint8_t kAfInet6 = 10;

std::uint16_t fromNetwork(std::uint16_t v) {
  return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}

bool decode(const TcpWalkRecord& r, bool withCgroupId, SocketRecord& out) {
  const std::uint8_t family = r.family & static_cast<std::uint8_t>(~kTcpWalkFullSocket);
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
  out.hasCgroupId = withCgroupId && (r.family & kTcpWalkFullSocket) != 0;
  out.cgroupId = out.hasCgroupId ? r.cgroupId : 0;
  return true;
}

}  // namespace

TcpWalkDecode decodeTcpWalkRecords(std::span<const std::byte> bytes, bool withCgroupId,
                                   FunctionRef<void(const SocketRecord&)> visit) {
  TcpWalkDecode result;
  SocketRecord record;
  for (; result.consumed + sizeof(TcpWalkRecord) <= bytes.size();
       result.consumed += sizeof(TcpWalkRecord)) {
    TcpWalkRecord raw;
    std::memcpy(&raw, bytes.data() + result.consumed, sizeof(raw));
    if (!decode(raw, withCgroupId, record)) {
      ++result.skipped;
      continue;
    }
    ++result.sockets;
    visit(record);
  }
  return result;
}

}  // namespace waitwatch
