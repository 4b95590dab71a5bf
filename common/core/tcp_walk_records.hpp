// SPDX-License-Identifier: Apache-2.0
#pragma once
// The records the BPF TCP socket walk writes (common/bpf/tcp_sockets.bpf.c), one per socket, as
// a pure decoder over the bytes of one read() of the walk. Each record holds what inet_diag
// reports for the socket, so a decoded record is the SocketRecord the dump gives for it.
// Records are copied out with memcpy, so unaligned input is never dereferenced.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/function_ref.hpp"
#include "core/socket.hpp"

namespace waitwatch {

// tcp_socket_record in tcp_sockets.bpf.c: keep both in step.
struct TcpWalkRecord {
  std::uint32_t local[4];   // IPv4 in local[0]; network order
  std::uint32_t remote[4];  // IPv4 in remote[0]
  std::uint64_t cookie;
  std::uint64_t cgroupId;
  std::uint32_t inode;
  std::uint32_t uid;
  std::uint32_t recvQ;
  std::uint32_t sendQ;
  std::uint32_t timerMs;
  std::uint16_t localPort;   // network order
  std::uint16_t remotePort;  // network order
  std::uint8_t family;       // AF_INET or AF_INET6, with kTcpWalkFullSocket
  std::uint8_t state;        // as inet_diag reports it
  std::uint8_t timer;
  std::uint8_t retransmits;
  std::uint32_t reserved;
};
static_assert(sizeof(TcpWalkRecord) == 80);

// In TcpWalkRecord::family: a full socket (not TIME_WAIT, not a request socket), which has a
// cgroup as inet_diag's INET_DIAG_CGROUP_ID does.
inline constexpr std::uint8_t kTcpWalkFullSocket = 0x80;

struct TcpWalkDecode {
  std::uint64_t sockets = 0;  // records delivered
  std::uint64_t skipped = 0;  // records of a family or state inet_diag would not report
  std::size_t consumed = 0;   // bytes of whole records; the rest is a record cut by the read
};

// Decodes every whole record of `bytes`. `withCgroupId` as DumpOptions::wantCgroupId.
TcpWalkDecode decodeTcpWalkRecords(std::span<const std::byte> bytes, bool withCgroupId,
                                   FunctionRef<void(const SocketRecord&)> visit);

}  // namespace waitwatch
