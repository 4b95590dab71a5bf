// SPDX-License-Identifier: Apache-2.0
#pragma once
// One poll's view of the host, as values: what the rules engine, the CLI and the exporter read.
// Built by the sampler and attribution adapters; the core only reads it.
//
// Memory stays proportional to what needs per-socket detail: CLOSE_WAIT sockets are kept one by
// one (the engine ages them by cookie); every other state is aggregated while the dump streams.
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/close_wait_kind.hpp"
#include "core/duration.hpp"
#include "core/flat_table.hpp"
#include "core/ports.hpp"
#include "core/process.hpp"
#include "core/tcp_state.hpp"

namespace waitwatch {

inline constexpr std::uint32_t kNoIndex = std::numeric_limits<std::uint32_t>::max();

struct NetnsRef {
  std::uint64_t inode = 0;  // the namespace's inode number (as in /proc/<pid>/ns/net)
  std::string name;         // the `ip netns` name where one exists, else empty
  // Without a name: a readable label that survives a reboot (the inode does not): "host" for
  // the namespace waitwatch runs in, else one from what holds the namespace (its container,
  // pod or service); empty when there is none.
  std::string alias;
  bool operator==(const NetnsRef&) const = default;
  // The name, else the alias, else "net:[4026531840]" as /proc/<pid>/ns/net reads.
  [[nodiscard]] std::string label() const;
};

// The alias of the namespace waitwatch itself runs in.
inline constexpr std::string_view kOwnNetnsAlias = "host";

// The kernel's own TCP counters for one namespace (/proc/net/netstat, /proc/net/snmp).
struct KernelTcpCounters {
  std::uint64_t timeWaitOverflow = 0;  // TcpExt TCPTimeWaitOverflow
  // TcpExt TW: sockets that entered TIME_WAIT for its full 60 s. The kernel counts each when it
  // arms the timewait timer, not when it expires (net/ipv4/inet_timewait_sock.c,
  // __inet_twsk_schedule(): TIMEWAITED, or TIMEWAITKILLED for a timeout <= 4 s).
  std::uint64_t timeWaitEntered = 0;
  std::uint64_t abortOnClose = 0;     // TcpExt TCPAbortOnClose
  std::uint64_t abortOnTimeout = 0;   // TcpExt TCPAbortOnTimeout
  std::uint64_t listenOverflows = 0;  // TcpExt ListenOverflows
  std::uint64_t listenDrops = 0;      // TcpExt ListenDrops
  std::uint64_t activeOpens = 0;      // Tcp ActiveOpens
  std::uint64_t passiveOpens = 0;     // Tcp PassiveOpens
  bool valid = false;                 // false when the files could not be read
  bool operator==(const KernelTcpCounters&) const = default;
};

// The TCP established-hash table a namespace's sockets are in, which a walk or dump of the
// namespace reads whole (net/ipv4/tcp_ipv4.c, established_get_first()): the host's, shared,
// unless the namespace was made after net.ipv4.tcp_child_ehash_entries was set, so that a walk of
// one namespace that shares it also passes over the sockets of every other.
struct TcpHashTable {
  std::uint32_t buckets = 0;
  bool sharedWithHost = false;
  bool operator==(const TcpHashTable&) const = default;
};

struct NetnsEntry {
  NetnsRef ref;
  StateCounts states;                 // every TCP socket in the namespace, counted from the dump
  std::uint64_t timeWaitCreated = 0;  // TIME_WAIT sockets younger than timeWaitWindow
  // Time since this namespace's previous dump (the poll interval on its first): the span
  // timeWaitCreated was counted over, and so what a rate divides by.
  Duration timeWaitWindow{};
  KernelTcpCounters kernel;
  std::uint32_t maxTimeWaitBuckets = 0;  // net.ipv4.tcp_max_tw_buckets, 0 if unknown
  EphemeralRange ephemeral;
  std::optional<TcpHashTable> tcpHash;  // unknown before Linux 6.1
  // Pages its CLOSE_WAIT sockets hold at least (TcpMemory::closeWaitMinPages).
  std::uint64_t closeWaitMinPages = 0;
};

// A process that owns TCP sockets in one namespace (a process with sockets in two namespaces,
// after setns(), appears once per namespace).
struct ProcessEntry {
  ProcessInfo info;
  std::uint32_t netns = kNoIndex;          // index into Snapshot::namespaces
  StateCounts states;                      // its sockets; a shared socket counts for each owner
  CloseWaitKinds closeWaitKinds;           // its CLOSE_WAIT sockets (states) by kind
  std::vector<std::uint16_t> listenPorts;  // sorted, unique
  // Read only for processes holding CLOSE_WAIT sockets (0: not read, or unreadable): its open
  // file descriptors, and the RLIMIT_NOFILE soft limit at which accept() and socket() start
  // failing with EMFILE.
  std::uint64_t openFds = 0;
  std::uint64_t maxFds = 0;
  std::optional<FdForecast> fdForecast;  // set by FdForecaster; absent while not growing
};

// 40 bytes: at a million sockets half may be CLOSE_WAIT, and these records are most of the
// daemon's memory during a poll. Addresses are indices into Snapshot::addresses (a host has few
// local addresses and its peers repeat): read them through Snapshot::local() / remote().
struct CloseWaitSocket {
  std::uint64_t cookie = 0;
  std::uint32_t inode = 0;
  std::uint32_t uid = 0;
  std::uint32_t netns = kNoIndex;          // index into Snapshot::namespaces
  std::uint32_t localAddress = kNoIndex;   // index into Snapshot::addresses
  std::uint32_t remoteAddress = kNoIndex;  // index into Snapshot::addresses
  std::uint16_t localPort = 0;
  std::uint16_t remotePort = 0;
  // Owners: Snapshot::ownerLinks[ownerBegin, ownerBegin + ownerCount) are indices into
  // Snapshot::processes. ownerCount 0 means nobody visible holds it.
  std::uint32_t ownerBegin = 0;
  std::uint32_t ownerCount : 30 = 0;  // a pid is below 2^22: 30 bits hold any number of owners
  std::uint32_t kindBits : 2 = 0;     // its CloseWaitKind: kind() and setKind()

  [[nodiscard]] CloseWaitKind kind() const { return static_cast<CloseWaitKind>(kindBits); }
  void setKind(CloseWaitKind k) { kindBits = static_cast<std::uint32_t>(k) & 3u; }
  void setOwnerCount(std::uint32_t n) { ownerCount = n & 0x3FFF'FFFFu; }
};
static_assert(sizeof(CloseWaitSocket) <= 40, "CloseWaitSocket is per-socket memory");

// TIME_WAIT sockets have no owner. They are grouped by endpoint:
//  - server side: the local port is one a process listens on; `local` is that endpoint and
//    `listener` the listening process;
//  - client side: grouped by (source address, destination address:port); `live` counts the
//    non-TIME_WAIT connections of the same tuple, because those hold ports from the same range.
struct TimeWaitGroup {
  std::uint32_t netns = kNoIndex;
  bool serverSide = false;
  IpAddress source;      // client side: local address
  Endpoint destination;  // client side: remote endpoint; server side: local listening endpoint
  std::uint32_t listener = kNoIndex;  // server side: index into Snapshot::processes
  std::uint32_t timeWait = 0;
  std::uint32_t live = 0;
  std::uint32_t created = 0;  // of timeWait, how many are younger than the poll interval
  // Client side: (timeWait + live) / usable ephemeral ports of the namespace.
  double portUsageRatio = 0.0;
  // Client side: of live, the CLOSE_WAIT sockets with a source port of the ephemeral range (a
  // leak there holds its source ports for good), and when the pair runs out of ports at the
  // growth of its CLOSE_WAIT sockets over the forecast window, toward what its other
  // connections leave of the range; set only for pairs with CLOSE_WAIT sockets, absent while
  // not growing.
  std::uint32_t closeWait = 0;
  std::optional<FdForecast> portExhaustion;
};

// The TIME_WAIT sockets of one group charged to the process that closed their connections
// first (the side that closes first is the one left in TIME_WAIT).
struct TimeWaitByCloser {
  std::uint32_t group = kNoIndex;   // index into Snapshot::timeWait
  std::uint32_t closer = kNoIndex;  // index into Snapshot::closers; kNoIndex: not known
  std::uint32_t timeWait = 0;
  std::uint32_t created = 0;  // of timeWait, entered TIME_WAIT since the namespace's last dump
  bool operator==(const TimeWaitByCloser&) const = default;
};

// Where the closers of TIME_WAIT sockets come from.
enum class CloserSource : std::uint8_t {
  None,         // not tracked (a one-shot run): every closer unknown
  Ownership,    // the sole owner of each connection at the last poll it was seen alive
  KernelProbe,  // every active close, recorded by a BPF program as it happens
};
std::string_view closerSourceName(CloserSource source);
std::optional<CloserSource> parseCloserSource(std::string_view name);

// How a poll read the namespaces' TCP sockets.
enum class SocketSource : std::uint8_t {
  Netlink,      // an inet_diag dump of each namespace
  BpfIterator,  // the kernel's own walk of each namespace (BPF iter/tcp)
  Mixed,        // the walk where it could enter the namespace, the dump elsewhere
};
std::string_view socketSourceName(SocketSource source);

// TCP socket memory, host-wide: the kernel counts it for all namespaces together
// (tcp_memory_allocated, /proc/net/sockstat "TCP: ... mem"), against one net.ipv4.tcp_mem.
// Above `pressure` every TCP socket of the host is held to small buffers; at `max` allocations
// fail and connections stall or drop.
struct TcpMemory {
  bool valid = false;       // pages was read
  std::uint64_t pages = 0;  // in use
  // net.ipv4.tcp_mem in pages: min, pressure, max. 0: unknown (the sysctl exists only in the
  // host's network namespace).
  std::uint64_t min = 0;
  std::uint64_t pressure = 0;
  std::uint64_t max = 0;
  // Of `pages`, what CLOSE_WAIT sockets hold at least: a queued buffer takes whole pages, at
  // least one per Recv-Q page (the FIN alone takes one). A lower bound, never an estimate above.
  std::uint64_t closeWaitMinPages = 0;
  // When `pages` reaches pressure and max at its growth over the forecast window (per minute,
  // in pages); absent while not growing or where the threshold is unknown.
  std::optional<FdForecast> toPressure;
  std::optional<FdForecast> toMax;
};

struct Snapshot {
  TimePoint time{};         // when the poll started (caller's clock)
  Duration pollInterval{};  // the interval the daemon polls at (for TIME_WAIT creation rate)
  std::vector<NetnsEntry> namespaces;
  std::vector<ProcessEntry> processes;
  std::vector<std::uint32_t> ownerLinks;
  std::vector<CloseWaitSocket> closeWait;
  std::vector<IpAddress> addresses;  // distinct addresses, indexed by CloseWaitSocket
  std::vector<TimeWaitGroup> timeWait;
  TcpMemory tcpMemory;
  // By group, then by closer; groups without a single TIME_WAIT socket charged are absent.
  std::vector<TimeWaitByCloser> timeWaitByCloser;
  // The processes that closed connections now in TIME_WAIT; many have exited since.
  std::vector<ProcessInfo> closers;
  CloserSource closerSource = CloserSource::None;
  // KernelProbe: active closes the program could not record since it was loaded (its ring or
  // the reader's queue was full); their TIME_WAIT sockets have no known closer.
  std::uint64_t closesLost = 0;
  SocketSource socketSource = SocketSource::Netlink;
  // Sockets with an inode that no readable process holds (lack of privilege, or the owner
  // exited between the dump and the /proc walk), by reason.
  std::uint64_t unattributedNoPermission = 0;
  std::uint64_t unattributedVanished = 0;
  // Container ids looked up in the runtimes' files since the collector started, and of those the
  // ones no file named (shown by id).
  std::uint64_t containerNameLookups = 0;
  std::uint64_t containerNameMisses = 0;
  // With the sampler check (waitwatchd --verify-sampler), since the collector started: sockets
  // the two netlink dumps around each walk agreed on, and of those the ones the walk missed or
  // reported otherwise.
  bool samplerChecked = false;
  std::uint64_t samplerCheckSockets = 0;
  std::uint64_t samplerCheckFaults = 0;

  // An address of `addresses`; the unspecified address for an index outside it (bad input
  // never reads out of bounds).
  [[nodiscard]] const IpAddress& address(std::uint32_t index) const;
  [[nodiscard]] Endpoint local(const CloseWaitSocket& s) const {
    return Endpoint{address(s.localAddress), s.localPort};
  }
  [[nodiscard]] Endpoint remote(const CloseWaitSocket& s) const {
    return Endpoint{address(s.remoteAddress), s.remotePort};
  }
  // ownerLinks[begin, begin + count): indices into `processes` (check each against its size).
  // A range that runs past ownerLinks (bad input) holds no owners.
  [[nodiscard]] std::span<const std::uint32_t> owners(std::uint32_t begin,
                                                      std::uint32_t count) const {
    if (begin > ownerLinks.size() || count > ownerLinks.size() - begin) return {};
    return std::span<const std::uint32_t>(ownerLinks).subspan(begin, count);
  }

  [[nodiscard]] StateCounts totals() const {
    StateCounts t;
    for (const auto& ns : namespaces)
      t += ns.states;
    return t;
  }
};

// How long a CLOSE_WAIT socket (or a process's oldest) has been stuck, as far as the rules
// engine knows; what the API and the CLI show.
struct SocketAge {
  Duration age{0};
  bool lowerBound = false;  // it was already there at the engine's first poll: "at least"
  bool operator==(const SocketAge&) const = default;
};

// Gives each distinct address one index in a table such as Snapshot::addresses, without an
// allocation per lookup once grown: a FlatTable of indices into the table.
class AddressInterner {
 public:
  // The index of `a` in `table`, appended when new. `table` must be the one of every call since
  // the last clear().
  std::uint32_t intern(const IpAddress& a, std::vector<IpAddress>& table);
  // Forgets every address (call when the table is cleared or replaced); keeps the memory
  // unless it is far larger than the last use.
  void clear();

 private:
  struct Policy {
    using Slot = std::uint32_t;  // index into the table + 1; 0 = empty
    using Key = IpAddress;
    static constexpr unsigned kMaxLoadPercent = 50;
    std::vector<IpAddress>* table = nullptr;
    static bool empty(std::uint32_t s) { return s == 0; }
    static std::uint64_t hash(const IpAddress& a) { return IpAddressHash{}(a); }
    [[nodiscard]] std::uint64_t slotHash(std::uint32_t s) const { return hash((*table)[s - 1]); }
    [[nodiscard]] bool matches(std::uint32_t s, const IpAddress& a) const {
      return (*table)[s - 1] == a;
    }
    std::uint32_t make(const IpAddress& a) {
      table->push_back(a);
      return static_cast<std::uint32_t>(table->size());
    }
  };
  static constexpr std::size_t kMinCapacity = 64;
  FlatTable<Policy> table_{kMinCapacity};
};

}  // namespace waitwatch
