// SPDX-License-Identifier: Apache-2.0
#pragma once
// The NETLINK_SOCK_DIAG / inet_diag dump reply parser: a pure function over the bytes of one
// recv() buffer. Every length is checked against the buffer; a truncated or malformed message
// ends the walk with an error that names the message, its offset and what was wrong. Structures
// are copied out with memcpy, so unaligned input is never dereferenced.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "core/socket.hpp"

namespace waitwatch {

// Values from the uapi (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h), spelled out so
// the parser does not depend on how recent the build machine's kernel headers are.
inline constexpr std::uint16_t kNlmsgNoop = 1;
inline constexpr std::uint16_t kNlmsgError = 2;
inline constexpr std::uint16_t kNlmsgDone = 3;
inline constexpr std::uint16_t kNlmsgOverrun = 4;
inline constexpr std::uint16_t kNlmsgMinType = 0x10;
inline constexpr std::uint16_t kSockDiagByFamily = 20;
inline constexpr std::uint16_t kNlmFlagDumpIntr = 0x10;  // NLM_F_DUMP_INTR
inline constexpr std::uint16_t kInetDiagCgroupId = 21;   // INET_DIAG_CGROUP_ID (Linux >= 5.9)
inline constexpr std::size_t kNlmsgHeaderSize = 16;      // struct nlmsghdr
inline constexpr std::size_t kInetDiagMsgSize = 72;      // struct inet_diag_msg

enum class DumpBufferStatus : std::uint8_t {
  Continue,     // every message was a socket (or skipped): receive the next buffer
  Done,         // NLMSG_DONE reached: the dump is complete
  Interrupted,  // a message carried NLM_F_DUMP_INTR: the dump is inconsistent, restart it
  Error,        // NLMSG_ERROR from the kernel, a failed NLMSG_DONE, or malformed bytes
};

struct DumpParseOptions {
  // Messages whose sequence number or port id differ are skipped: they are left over from an
  // earlier dump on the same socket, not part of this one.
  std::optional<std::uint32_t> expectSeq = std::nullopt;
  std::optional<std::uint32_t> expectPortId = std::nullopt;
  bool wantCgroupId = true;  // decode INET_DIAG_CGROUP_ID when present
};

struct DumpBufferResult {
  DumpBufferStatus status = DumpBufferStatus::Continue;
  bool doneSeen = false;       // NLMSG_DONE reached (also set with Interrupted)
  std::uint32_t messages = 0;  // netlink messages walked, skipped ones included
  std::uint32_t sockets = 0;   // records passed to the visitor
  std::uint32_t skipped = 0;   // foreign seq/port id, NLMSG_NOOP, states waitwatch does not model
  // status == Error only: errnum is the kernel's errno for NLMSG_ERROR / a failed NLMSG_DONE,
  // EBADMSG for malformed bytes; message names the message index, its offset and the problem.
  Error error;
};

// Walks the netlink messages in `buffer` (the bytes of one recv()) and calls `visit` once per
// socket, in order, without allocating. Once a message carries NLM_F_DUMP_INTR no further
// sockets are delivered (the dump is inconsistent), but the walk goes on to find NLMSG_DONE.
// The walk stops at NLMSG_DONE and at the first error.
DumpBufferResult parseSockDiagBuffer(std::span<const std::byte> buffer,
                                     const DumpParseOptions& options,
                                     FunctionRef<void(const SocketRecord&)> visit);

}  // namespace waitwatch
