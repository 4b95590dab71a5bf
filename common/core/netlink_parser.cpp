// SPDX-License-Identifier: Apache-2.0
#include "core/netlink_parser.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace waitwatch {
namespace {

// The uapi structures are copied out of the buffer with memcpy; these pin the layout the
// offsets below rely on.
static_assert(sizeof(nlmsghdr) == kNlmsgHeaderSize);
static_assert(sizeof(inet_diag_msg) == kInetDiagMsgSize);
static_assert(sizeof(rtattr) == 4);
static_assert(NLMSG_NOOP == kNlmsgNoop && NLMSG_ERROR == kNlmsgError && NLMSG_DONE == kNlmsgDone &&
              NLMSG_OVERRUN == kNlmsgOverrun && NLMSG_MIN_TYPE == kNlmsgMinType);
static_assert(NLM_F_DUMP_INTR == kNlmFlagDumpIntr);

constexpr std::size_t align4(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

// The largest errno the kernel encodes in a negative return (MAX_ERRNO).
constexpr std::int64_t kMaxErrno = 4095;

template <typename T>
T load(std::span<const std::byte> bytes, std::size_t offset) {
  T out;
  std::memcpy(&out, bytes.data() + offset, sizeof(T));
  return out;
}

class Walker {
 public:
  Walker(std::span<const std::byte> buffer, const DumpParseOptions& options,
         FunctionRef<void(const SocketRecord&)> visit)
      : buf_(buffer), opts_(options), visit_(visit) {}

  DumpBufferResult run() {
    std::size_t offset = 0;
    while (offset < buf_.size()) {
      const std::size_t left = buf_.size() - offset;
      if (left < kNlmsgHeaderSize) {
        return fail(offset, EBADMSG,
                    "truncated header: " + std::to_string(left) + " bytes left, a header needs " +
                        std::to_string(kNlmsgHeaderSize));
      }
      const auto hdr = load<nlmsghdr>(buf_, offset);
      if (hdr.nlmsg_len < kNlmsgHeaderSize) {
        return fail(offset, EBADMSG,
                    "nlmsg_len " + std::to_string(hdr.nlmsg_len) + " is shorter than the " +
                        std::to_string(kNlmsgHeaderSize) + "-byte header");
      }
      if (hdr.nlmsg_len > left) {
        return fail(offset, EBADMSG,
                    "nlmsg_len " + std::to_string(hdr.nlmsg_len) + " exceeds the " +
                        std::to_string(left) + " bytes left in the buffer (truncated message)");
      }
      ++result_.messages;
      const auto payload =
          buf_.subspan(offset + kNlmsgHeaderSize, hdr.nlmsg_len - kNlmsgHeaderSize);
      if (!handle(hdr, payload, offset)) return result_;
      if (result_.doneSeen) break;
      ++index_;
      // The last message's alignment padding may be missing; the loop condition covers that.
      offset += align4(hdr.nlmsg_len);
    }
    if (result_.status != DumpBufferStatus::Error) {
      if (interrupted_) {
        result_.status = DumpBufferStatus::Interrupted;
      } else if (result_.doneSeen) {
        result_.status = DumpBufferStatus::Done;
      }
    }
    return result_;
  }

 private:
  // Returns false when the walk must stop with an error (already recorded in result_).
  bool handle(const nlmsghdr& hdr, std::span<const std::byte> payload, std::size_t offset) {
    if ((opts_.expectSeq && hdr.nlmsg_seq != *opts_.expectSeq) ||
        (opts_.expectPortId && hdr.nlmsg_pid != *opts_.expectPortId)) {
      ++result_.skipped;
      return true;
    }
    if ((hdr.nlmsg_flags & kNlmFlagDumpIntr) != 0) interrupted_ = true;
    switch (hdr.nlmsg_type) {
      case kNlmsgNoop:
        ++result_.skipped;
        return true;
      case kNlmsgDone:
        return handleDone(payload, offset);
      case kNlmsgError:
        return handleError(payload, offset);
      case kNlmsgOverrun:
        failInPlace(offset, ENOBUFS, "NLMSG_OVERRUN: the kernel dropped part of the reply");
        return false;
      case kSockDiagByFamily:
        return handleSocket(payload, offset);
      default:
        failInPlace(offset, EBADMSG,
                    "unexpected message type " + std::to_string(hdr.nlmsg_type) +
                        " (expected SOCK_DIAG_BY_FAMILY, NLMSG_DONE or NLMSG_ERROR)");
        return false;
    }
  }

  bool handleDone(std::span<const std::byte> payload, std::size_t offset) {
    result_.doneSeen = true;
    // The payload is the dump callback's final return value; negative means the dump failed.
    if (payload.size() >= sizeof(std::int32_t)) {
      const auto code = static_cast<std::int64_t>(load<std::int32_t>(payload, 0));
      if (code < 0) {
        if (-code > kMaxErrno) {
          failInPlace(offset, EBADMSG,
                      "NLMSG_DONE carries an impossible error code " + std::to_string(code));
        } else {
          const int err = static_cast<int>(-code);
          failInPlace(
              offset, err,
              std::string("the kernel ended the dump with an error: ") + std::strerror(err));
        }
        return false;
      }
    }
    return true;
  }

  bool handleError(std::span<const std::byte> payload, std::size_t offset) {
    if (payload.size() < sizeof(std::int32_t)) {
      failInPlace(offset, EBADMSG,
                  "NLMSG_ERROR payload is " + std::to_string(payload.size()) +
                      " bytes, too short for the error code");
      return false;
    }
    const auto code = static_cast<std::int64_t>(load<std::int32_t>(payload, 0));
    if (code == 0) {  // an acknowledgement, not an error
      ++result_.skipped;
      return true;
    }
    if (code > 0 || -code > kMaxErrno) {
      failInPlace(offset, EBADMSG,
                  "NLMSG_ERROR carries an impossible error code " + std::to_string(code));
      return false;
    }
    const int err = static_cast<int>(-code);
    failInPlace(offset, err,
                std::string("the kernel answered with an error: ") + std::strerror(err));
    return false;
  }

  bool handleSocket(std::span<const std::byte> payload, std::size_t offset) {
    if (payload.size() < kInetDiagMsgSize) {
      failInPlace(offset, EBADMSG,
                  "SOCK_DIAG_BY_FAMILY payload is " + std::to_string(payload.size()) +
                      " bytes, an inet_diag_msg needs " + std::to_string(kInetDiagMsgSize));
      return false;
    }
    const auto msg = load<inet_diag_msg>(payload, 0);
    SocketRecord rec;
    if (msg.idiag_family == AF_INET) {
      rec.family = AddressFamily::V4;
    } else if (msg.idiag_family == AF_INET6) {
      rec.family = AddressFamily::V6;
    } else {
      failInPlace(offset, EBADMSG,
                  "socket family " + std::to_string(msg.idiag_family) +
                      " is neither AF_INET nor "
                      "AF_INET6");
      return false;
    }

    std::uint64_t cgroupId = 0;
    bool hasCgroupId = false;
    const std::size_t attrBase = offset + kNlmsgHeaderSize + kInetDiagMsgSize;
    const auto attrs = payload.subspan(kInetDiagMsgSize);
    std::size_t at = 0;
    while (attrs.size() - at >= sizeof(rtattr)) {
      const auto attr = load<rtattr>(attrs, at);
      const std::size_t left = attrs.size() - at;
      if (attr.rta_len < sizeof(rtattr) || attr.rta_len > left) {
        failInPlace(offset, EBADMSG,
                    "attribute at offset " + std::to_string(attrBase + at) + " has rta_len " +
                        std::to_string(attr.rta_len) + " (must be 4.." + std::to_string(left) +
                        ")");
        return false;
      }
      const auto type = static_cast<std::uint16_t>(attr.rta_type & NLA_TYPE_MASK);
      if (type == kInetDiagCgroupId && opts_.wantCgroupId) {
        const std::size_t len = attr.rta_len - sizeof(rtattr);
        if (len != sizeof(std::uint64_t)) {
          failInPlace(offset, EBADMSG,
                      "INET_DIAG_CGROUP_ID attribute at offset " + std::to_string(attrBase + at) +
                          " has " + std::to_string(len) + " bytes of payload, expected 8");
          return false;
        }
        cgroupId = load<std::uint64_t>(attrs, at + sizeof(rtattr));
        hasCgroupId = true;
      }
      // Fewer than 4 bytes of trailing padding after the last attribute are tolerated, as the
      // kernel's own nla_ok() does.
      at += align4(attr.rta_len);
      if (at > attrs.size()) break;
    }

    if (interrupted_) {  // inconsistent dump: the caller restarts, nothing more to deliver
      ++result_.skipped;
      return true;
    }
    if (!isValidTcpState(msg.idiag_state)) {
      // e.g. TCP_BOUND_INACTIVE (Linux >= 6.7) when a caller asked for it: not a TCP state
      // waitwatch models, and not malformed either.
      ++result_.skipped;
      return true;
    }
    rec.state = static_cast<TcpState>(msg.idiag_state);
    rec.timer = socketTimer(msg.idiag_timer);
    rec.retransmits = msg.idiag_retrans;
    const auto& id = msg.id;
    rec.setEndpoints(rec.family, id.idiag_src, id.idiag_dst, id.idiag_sport, id.idiag_dport);
    rec.uid = msg.idiag_uid;
    rec.inode = msg.idiag_inode;
    rec.cookie = static_cast<std::uint64_t>(id.idiag_cookie[0]) |
                 (static_cast<std::uint64_t>(id.idiag_cookie[1]) << 32);
    rec.recvQ = msg.idiag_rqueue;
    rec.sendQ = msg.idiag_wqueue;
    rec.timerRemainingMs = msg.idiag_expires;
    rec.cgroupId = cgroupId;
    rec.hasCgroupId = hasCgroupId;
    ++result_.sockets;
    visit_(rec);
    return true;
  }

  void failInPlace(std::size_t offset, int errnum, const std::string& what) {
    result_.status = DumpBufferStatus::Error;
    result_.error = Error{errnum, "netlink message " + std::to_string(index_) + " at offset " +
                                      std::to_string(offset) + ": " + what};
  }

  DumpBufferResult fail(std::size_t offset, int errnum, const std::string& what) {
    failInPlace(offset, errnum, what);
    return result_;
  }

  std::span<const std::byte> buf_;
  const DumpParseOptions& opts_;
  FunctionRef<void(const SocketRecord&)> visit_;
  DumpBufferResult result_;
  std::uint32_t index_ = 0;
  bool interrupted_ = false;
};

}  // namespace

DumpBufferResult parseSockDiagBuffer(std::span<const std::byte> buffer,
                                     const DumpParseOptions& options,
                                     FunctionRef<void(const SocketRecord&)> visit) {
  return Walker(buffer, options, visit).run();
}

}  // namespace waitwatch
