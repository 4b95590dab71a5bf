// SPDX-License-Identifier: Apache-2.0
#pragma once
// CONTRACT (written by the lead; the implementer may add members but keep these signatures).
// The NETLINK_SOCK_DIAG / inet_diag sampler: dumps TCP sockets of one network namespace.
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "core/socket.hpp"
#include "core/tcp_state.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

// inet_diag answers for UDP with the same messages as for TCP: an unconnected UDP socket reports
// state CLOSE, a connected one ESTABLISHED.
enum class DumpProtocol : std::uint8_t { Tcp, Udp };

struct DumpOptions {
  TcpStateMask states = kAllStatesMask;  // kernel-side filter (idiag_states)
  bool ipv4 = true;
  bool ipv6 = true;
  bool wantCgroupId = true;  // ask for INET_DIAG_CGROUP_ID where the kernel has it
  DumpProtocol protocol = DumpProtocol::Tcp;
};

struct DumpStats {
  std::uint64_t sockets = 0;   // records delivered to the visitor
  std::uint64_t messages = 0;  // netlink messages parsed
  std::uint64_t recvCalls = 0;
  std::uint32_t retries = 0;  // dumps restarted after NLM_F_DUMP_INTR
};

using SocketVisitor = FunctionRef<void(const SocketRecord&)>;

class SockDiagSampler {
 public:
  // A sampler bound to the network namespace the calling thread is in.
  static Result<SockDiagSampler> open();
  // A sampler bound to the namespace `netnsFd` refers to (an open /proc/<pid>/ns/net or
  // /run/netns/<name>). The calling thread's namespace is restored before returning.
  static Result<SockDiagSampler> openInNamespace(int netnsFd);
  // A sampler over a socket the caller provides in place of the kernel's: tests play the
  // kernel over a SOCK_SEQPACKET pair (replies with port id 0 and the request's sequence), to
  // drive what the kernel cannot be made to do on demand (an interrupted dump).
  static SockDiagSampler overSocket(UniqueFd fd);

  // One request per family. Calls `visit` once per socket, in kernel order. An interrupted
  // dump (NLM_F_DUMP_INTR) is restarted from scratch up to a few times, and `visit` may then
  // have seen a partial first pass: callers that aggregate must reset on `onRestart`.
  Result<DumpStats> dump(const DumpOptions& options, SocketVisitor visit,
                         FunctionRef<void()> onRestart);

  // How many times dump() restarts an interrupted dump before giving up with EAGAIN.
  static constexpr std::uint32_t kMaxRestarts = 4;
  // The user-space receive buffer: the kernel hands out at most ~32 KiB per recv() on a
  // sock_diag dump, so this never truncates.
  static constexpr std::size_t kReceiveBufferSize = 64 * 1024;

 private:
  explicit SockDiagSampler(UniqueFd fd) : fd_(std::move(fd)) {}
  static Result<SockDiagSampler> create();
  // One family's dump. Sets `interrupted` (and stops) when the kernel flags NLM_F_DUMP_INTR.
  Result<void> dumpFamily(std::uint8_t family, const DumpOptions& options, SocketVisitor visit,
                          DumpStats& stats, bool& interrupted);
  Result<void> sendRequest(std::uint8_t family, const DumpOptions& options);
  // Reads and discards what is left of an abandoned dump so the socket can start a new one
  // (the kernel refuses a second dump with EBUSY while one is running).
  void drain();

  UniqueFd fd_;
  std::vector<std::byte> buffer_;
  std::uint32_t seq_ = 0;
  std::uint32_t portId_ = 0;  // our netlink port id, assigned by the kernel at bind()
};

struct NetnsHandle {
  NetnsRef ref;  // inode and the `ip netns` name where there is one
  UniqueFd fd;   // open namespace file, usable with setns() / openInNamespace()
};

// The namespace this process runs in.
Result<NetnsHandle> currentNetworkNamespace(const std::string& procRoot = "/proc");
// The same, named from `runNetns` (the one-argument form looks in /run/netns).
Result<NetnsHandle> currentNetworkNamespace(const std::string& procRoot,
                                            const std::string& runNetns);
// What a listing of every namespace could not see.
struct NetnsListingGaps {
  // Processes whose /proc/<pid>/ns/net may not be opened (another user's, without privilege):
  // a namespace that only such processes are in is missing from the listing.
  std::uint64_t hiddenProcesses = 0;
  std::string firstHidden;  // "1234 (uid 0)"
};

// One line for the operator: which processes' namespaces could not be opened, and what helps.
std::string describeNetnsGaps(const NetnsListingGaps& gaps);

// Holder aliases already looked up, by namespace inode: a poller that lists every namespace at
// each poll reads a holder's cgroup once per namespace, not once per poll.
using NetnsAliasCache = std::unordered_map<std::uint64_t, std::string>;

// Every network namespace on the host, found through <procRoot>/*/ns/net and <runNetns>/*,
// deduplicated by inode, named where /run/netns names them, the caller's own aliased "host"
// and the others by what holds them (NetnsRef::alias; looked up through `aliases` when given,
// which keeps only the namespaces listed). Processes that exit mid-walk are skipped; those
// whose namespace may not be opened are counted in `gaps` when given.
Result<std::vector<NetnsHandle>> listNetworkNamespaces(const std::string& procRoot = "/proc",
                                                       const std::string& runNetns = "/run/netns",
                                                       NetnsListingGaps* gaps = nullptr,
                                                       NetnsAliasCache* aliases = nullptr);
// Opens one namespace by `ip netns` name.
Result<NetnsHandle> openNamedNetworkNamespace(const std::string& name,
                                              const std::string& runNetns = "/run/netns");

}  // namespace waitwatch
