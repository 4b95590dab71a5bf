// SPDX-License-Identifier: Apache-2.0
#include "core/tcp_walk_records.hpp"

#include <cstring>

namespace waitwatch {
namespace {

constexpr std::uint8_t kAfInet = 2;
constexpr std::uint8_t kAfInet6 = 10;

bool decode(const TcpWalkRecord& r, bool withCgroupId, SocketRecord& out) {
  const std::uint8_t family = r.family & static_cast<std::uint8_t>(~kTcpWalkFullSocket);
  if ((family != kAfInet && family != kAfInet6) || !isValidTcpState(r.state)) return false;
  out.setEndpoints(family == kAfInet ? AddressFamily::V4 : AddressFamily::V6, r.local, r.remote,
                   r.localPort, r.remotePort);
  out.state = static_cast<TcpState>(r.state);
  out.timer = socketTimer(r.timer);
  out.retransmits = r.retransmits;
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
