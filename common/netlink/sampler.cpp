// SPDX-License-Identifier: Apache-2.0
#include "netlink/sampler.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/netlink_parser.hpp"
#include "netlink/netns.hpp"

namespace waitwatch {
namespace {

// Socket receive buffer asked for: the kernel produces the next part of a dump only while the
// queue is below half of it, so a roomy buffer lets it work ahead of us.
constexpr int kSocketReceiveBuffer = 1 << 20;
// A dump never waits this long for the kernel; the bound only keeps a poll from hanging forever.
constexpr time_t kReceiveTimeoutSeconds = 10;

const char* familyName(std::uint8_t family) {
  return family == AF_INET ? "IPv4" : "IPv6";
}

}  // namespace

Result<SockDiagSampler> SockDiagSampler::create() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return osError(errno, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)");

  // SO_RCVBUFFORCE passes the rmem_max cap (needs CAP_NET_ADMIN); otherwise take what we get.
  const int size = kSocketReceiveBuffer;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  const timeval timeout{.tv_sec = kReceiveTimeoutSeconds, .tv_usec = 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
    return osError(errno, "setsockopt(SO_RCVTIMEO) on the sock_diag socket");
  }

  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel assigns a port id
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    return osError(errno, "bind on the sock_diag socket");
  }
  socklen_t len = sizeof local;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return osError(errno, "getsockname on the sock_diag socket");
  }
  SockDiagSampler sampler(std::move(fd));
  sampler.portId_ = local.nl_pid;
  sampler.buffer_.resize(kReceiveBufferSize);
  return sampler;
}

SockDiagSampler SockDiagSampler::overSocket(UniqueFd fd) {
  SockDiagSampler sampler(std::move(fd));
  sampler.buffer_.resize(kReceiveBufferSize);
  return sampler;
}

Result<SockDiagSampler> SockDiagSampler::open() {
  return create();
}

Result<SockDiagSampler> SockDiagSampler::openInNamespace(int netnsFd) {
  auto guard = NetnsGuard::enter(netnsFd);
  if (!guard) return guard.error();
  auto sampler = create();  // the socket stays bound to the namespace it was created in
  if (auto r = guard->restore(); !r) return r.error();
  return sampler;
}

Result<void> SockDiagSampler::sendRequest(std::uint8_t family, const DumpOptions& options) {
  struct Request {
    nlmsghdr header;
    inet_diag_req_v2 body;
  };
  Request req{};
  req.header.nlmsg_len = sizeof req;
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.header.nlmsg_seq = ++seq_;
  req.header.nlmsg_pid = portId_;
  req.body.sdiag_family = family;
  req.body.sdiag_protocol = options.protocol == DumpProtocol::Udp ? IPPROTO_UDP : IPPROTO_TCP;
  // Bits beyond CLOSING would ask for states waitwatch does not model (TCP_BOUND_INACTIVE).
  req.body.idiag_states = options.states & kAllStatesMask;
  req.body.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.body.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  // INET_DIAG_CGROUP_ID needs no idiag_ext bit: the kernel adds it to every full socket.

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    const ssize_t n = ::sendto(fd_.get(), &req, sizeof req, 0,
                               reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
    if (n == static_cast<ssize_t>(sizeof req)) return {};
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;  // before the message is built
      return osError(err,
                     std::string("sending the ") + familyName(family) + " inet_diag dump request");
    }
    return Error{
        EIO, std::string("short send of the ") + familyName(family) + " inet_diag dump request"};
  }
}

Result<void> SockDiagSampler::dumpFamily(std::uint8_t family, const DumpOptions& options,
                                         SocketVisitor visit, DumpStats& stats, bool& interrupted) {
  if (auto r = sendRequest(family, options); !r) return r;
  const DumpParseOptions parse{
      .expectSeq = seq_, .expectPortId = portId_, .wantCgroupId = options.wantCgroupId};
  const std::string where = std::string(familyName(family)) +
                            (options.protocol == DumpProtocol::Udp ? " UDP" : "") +
                            " inet_diag dump";
  for (std::uint64_t part = 0;; ++part) {
    sockaddr_nl from{};
    iovec iov{.iov_base = buffer_.data(), .iov_len = buffer_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return Error{err, where + ": no reply from the kernel within " +
                              std::to_string(kReceiveTimeoutSeconds) + " s"};
      }
      return osError(err, where + ": recvmsg");
    }
    ++stats.recvCalls;
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      drain();
      return Error{EMSGSIZE, where + ": a reply did not fit the " + std::to_string(buffer_.size()) +
                                 "-byte buffer"};
    }
    if (n == 0) return Error{EIO, where + ": empty reply from the kernel"};
    if (from.nl_pid != 0) continue;  // not from the kernel

    const auto bytes = std::span<const std::byte>(buffer_.data(), static_cast<std::size_t>(n));
    const DumpBufferResult r = parseSockDiagBuffer(bytes, parse, visit);
    stats.messages += r.messages;
    stats.sockets += r.sockets;
    switch (r.status) {
      case DumpBufferStatus::Continue:
        break;
      case DumpBufferStatus::Done:
        return {};
      case DumpBufferStatus::Interrupted:
        interrupted = true;
        if (!r.doneSeen) drain();
        return {};
      case DumpBufferStatus::Error:
        if (!r.doneSeen) drain();
        return r.error.wrap(where + ", reply part " + std::to_string(part));
    }
  }
}

void SockDiagSampler::drain() {
  // Each recv() lets the kernel produce the next part, so the queue only runs dry (EAGAIN) once
  // the abandoned dump has finished.
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

Result<DumpStats> SockDiagSampler::dump(const DumpOptions& options, SocketVisitor visit,
                                        FunctionRef<void()> onRestart) {
  DumpStats stats;
  for (std::uint32_t attempt = 0;; ++attempt) {
    bool interrupted = false;
    if (options.ipv4) {
      if (auto r = dumpFamily(AF_INET, options, visit, stats, interrupted); !r) return r.error();
    }
    if (options.ipv6 && !interrupted) {
      if (auto r = dumpFamily(AF_INET6, options, visit, stats, interrupted); !r) return r.error();
    }
    if (!interrupted) return stats;
    if (attempt + 1 >= kMaxRestarts) {
      return Error{EAGAIN, "inet_diag dump interrupted (NLM_F_DUMP_INTR) " +
                               std::to_string(attempt + 1) + " times in a row"};
    }
    ++stats.retries;
    stats.sockets = 0;  // counts the pass the caller keeps, not the abandoned ones
    onRestart();
  }
}

}  // namespace waitwatch
