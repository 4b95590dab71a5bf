// SPDX-License-Identifier: Apache-2.0
#pragma once
// Builds a Snapshot from streamed SocketRecords and an owner lookup. Pure: no syscalls, no
// clock; the adapters feed it dumps and answer owner questions through OwnerIndex.
//
// Cost model (a million sockets per poll): add() does a few array updates and at most two hash
// probes, never allocates per socket, and keeps per-socket memory only for the states in
// `perSocketStates` (CLOSE_WAIT by default) and for sockets whose owner was not yet known
// during the dump (settled after the /proc walk). Every buffer is reused across polls.
#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/address.hpp"
#include "core/duration.hpp"
#include "core/snapshot.hpp"
#include "core/socket.hpp"
#include "core/tcp_state.hpp"
#include "proc/flat_index.hpp"
#include "proc/inode_table.hpp"

namespace waitwatch {

// Who holds a socket inode: answered by the attribution resolver (over an InodeTable).
class OwnerIndex {
 public:
  // During the dump, once per socket: the inode's owners, or Pending when not known yet.
  virtual InodeTable::View lookup(std::uint32_t inode) = 0;
  // After the resolver searched: the final answer for an inode of this poll (never Pending).
  virtual InodeTable::View settle(std::uint32_t inode, std::uint32_t uid) = 0;
  // The process behind an owner slot returned above; asked at finish(), so a slot must keep
  // naming its process until then.
  virtual const ProcessInfo& process(std::uint32_t slot) = 0;
  // A lookup of `inode` follows soon: start fetching it (see SnapshotAggregator::add).
  virtual void prefetch(std::uint32_t inode) { (void)inode; }

 protected:
  ~OwnerIndex() = default;
};

struct AggregatorOptions {
  // States whose sockets are kept one by one in Snapshot::closeWait (the engine ages them by
  // cookie). Records carry no state, so only CLOSE_WAIT is meaningful there today.
  TcpStateMask perSocketStates = stateBit(TcpState::CloseWait);
  // Also keep every socket with its owners (the CLI's --sockets view); memory per socket.
  bool keepAllSockets = false;
  // Keep the cookie of every socket on the active closer's path (FIN_WAIT1, FIN_WAIT2, CLOSING,
  // TIME_WAIT) for closing(): 16 bytes per such socket.
  bool keepClosing = false;
  // Keep the cookie and owner of every ESTABLISHED socket with exactly one owner for owned():
  // 16 bytes per such socket (TIME_WAIT closers without the kernel program).
  bool keepOwned = false;
  // The kernel's page size, for the pages CLOSE_WAIT sockets hold at least.
  std::uint32_t pageSize = 4096;
};

enum class Attribution : std::uint8_t {
  Owned,         // ownerCount owners in Snapshot::ownerLinks
  NoOwner,       // no inode: TIME_WAIT and orphaned sockets the kernel alone holds
  NoPermission,  // held by a process whose fds we may not read
  Vanished,      // its holder closed it or exited between the dump and the /proc walk
};

// One socket with its owners, for listings like `ss -tanp`.
struct SocketLine {
  SocketRecord socket;
  std::uint32_t netns = kNoIndex;  // index into Snapshot::namespaces
  std::uint32_t ownerBegin = 0;    // Snapshot::ownerLinks[ownerBegin, ownerBegin + ownerCount)
  std::uint32_t ownerCount = 0;
  Attribution attribution = Attribution::NoOwner;
};

// A socket on the active closer's path, for charging TIME_WAIT to its closer.
struct ClosingSocket {
  std::uint64_t cookie = 0;
  std::uint32_t group = kNoIndex;  // TIME_WAIT: its index in Snapshot::timeWait; else kNoIndex
  bool created = false;            // TIME_WAIT: entered it since the namespace's last dump
};

// An ESTABLISHED socket held by one process alone.
struct OwnedSocket {
  std::uint64_t cookie = 0;
  std::uint32_t process = 0;  // index into Snapshot::processes
};

// What the resolver should search for after the dump: the sockets still unknown.
struct PendingHints {
  std::size_t sockets = 0;
  std::vector<std::uint32_t> uids;       // sorted, unique
  std::vector<std::uint64_t> cgroupIds;  // sorted, unique (where the kernel reported one)
};

class SnapshotAggregator {
 public:
  explicit SnapshotAggregator(AggregatorOptions options = {});
  // Between polls only.
  void setOptions(AggregatorOptions options) { options_ = options; }

  // Starts a poll. `owners` must outlive finish().
  void begin(TimePoint now, Duration pollInterval, OwnerIndex& owners);

  // Starts a namespace (its states are reset; kernel counters and ranges filled in).
  // A TIME_WAIT socket is server side when its local port is one a socket listens on, which
  // must have been added by then: the kernel's own dump order does that (each family's
  // listeners come first, and a TIME_WAIT socket's listener is of its family).
  void beginNamespace(NetnsEntry entry);
  // Marks the start of one dump of the current namespace; restartDump() undoes everything
  // added since (the sampler restarts an interrupted dump from scratch). `sinceLastDump` is
  // the time from the start of this namespace's previous dump to the start of this one (the
  // poll interval when there was none): a TIME_WAIT socket younger than that was not there
  // last time, so "created" counts each socket exactly once however late a poll starts.
  void beginDump(std::optional<Duration> sinceLastDump = std::nullopt);
  void restartDump(std::optional<Duration> sinceLastDump = std::nullopt);
  // Sockets are processed a few records behind add(), after OwnerIndex::prefetch() has had
  // time to bring their owner entries into cache: the dump streams sockets in hash order, so
  // every lookup would otherwise wait on memory once the table outgrows the caches.
  void add(const SocketRecord& socket);
  // From here on in this dump, TIME_WAIT sockets are judged new by a window `lateMs` wider:
  // the collector's measure of how much further into this dump they are read than the whole
  // previous dump lasted. The few records still in the lookahead take it too (microseconds).
  void widenCreatedWindow(std::uint32_t lateMs);
  void endNamespace();
  // Drops the current namespace entirely (it vanished or could not be dumped).
  void abortNamespace();

  // Valid between the last endNamespace() and finish().
  [[nodiscard]] const PendingHints& pendingHints();

  // Settles the pending sockets through OwnerIndex::settle, groups TIME_WAIT, orders processes
  // by (namespace, pid) and moves the result into `out`, whose vectors are reused when it is a
  // recycled snapshot.
  void finish(Snapshot& out);

  // Every socket of the last finished poll (keepAllSockets), indices into that snapshot.
  [[nodiscard]] const std::vector<SocketLine>& sockets() const { return lines_; }
  // Of the last finished poll (keepClosing, keepOwned), indices into that snapshot.
  [[nodiscard]] const std::vector<ClosingSocket>& closing() const { return closing_; }
  [[nodiscard]] const std::vector<OwnedSocket>& owned() const { return owned_; }

 private:
  // A ProcessEntry without its ProcessInfo, which is copied from the owner index once, when
  // finish() builds the snapshot: this buffer is kept across polls, and full entries (with the
  // strings of the info copied at first sight) were ~440 bytes and a few heap strings each.
  struct Entry {
    std::uint32_t netns = kNoIndex;
    StateCounts states;
    CloseWaitKinds closeWaitKinds;
    std::vector<std::uint16_t> listenPorts;
  };
  struct Pending {
    std::uint64_t cookie;
    std::uint32_t inode;
    std::uint32_t uid;
    std::uint32_t netns;
    std::uint32_t record;  // index in closeWait_ or kNoIndex
    std::uint32_t line;    // index in lines_ or kNoIndex
    std::uint16_t localPort;
    TcpState state;
    CloseWaitKind kind;  // when state is CLOSE_WAIT
  };
  struct Listener {
    Endpoint local;  // unmapped address
    std::uint32_t inode;
    std::uint32_t uid;
  };
  struct ClientKey {
    IpAddress source;
    Endpoint destination;
    bool operator==(const ClientKey&) const = default;
  };
  struct ClientKeyHash {
    std::size_t operator()(const ClientKey& k) const noexcept {
      return hashCombine(IpAddressHash{}(k.source), EndpointHash{}(k.destination));
    }
  };
  struct GroupAcc {
    TimeWaitGroup group;
    std::uint32_t listenerBegin = 0;  // the namespace's listeners in listeners_
    std::uint32_t listenerEnd = 0;
  };
  // Sizes and counters at a point of the poll, to undo a restarted dump or a failed namespace.
  struct Mark {
    std::size_t processes = 0, closeWait = 0, ownerLinks = 0, pending = 0, lines = 0;
    std::size_t listeners = 0, groups = 0, closing = 0, owned = 0;
    StateCounts nsStates;
    std::uint64_t timeWaitCreated = 0;
    std::uint64_t closeWaitMinPages = 0;
    std::uint64_t noPermission = 0, vanished = 0;
    std::bitset<65536> listenPorts;
    // The namespace's process entries that existed at the mark: their counts then.
    std::vector<StateCounts> entryStates;
    std::vector<CloseWaitKinds> entryKinds;
    std::vector<std::size_t> entryListenPorts;
  };

  void setCreatedWindow(Duration window);
  void setMark(Mark& m);
  void rollback(const Mark& m);
  void process(const SocketRecord& s);
  void flush();
  std::uint32_t entryFor(std::uint32_t slot, std::uint32_t netns);
  void attribute(std::span<const std::uint32_t> owners, const Pending& socket);
  void unattributed(InodeTable::State state, std::uint32_t line);
  void addTimeWait(const SocketRecord& s);
  Pending pendingOf(const SocketRecord& s, CloseWaitKind kind, std::uint32_t record,
                    std::uint32_t line) const;
  void addLive(const SocketRecord& s);
  GroupAcc& clientGroup(const IpAddress& source, const Endpoint& destination);
  std::uint32_t addressIndex(const IpAddress& a, std::uint32_t& last);
  void truncateEntries(std::size_t size);
  std::uint32_t listenerEntry(const GroupAcc& g);

  AggregatorOptions options_;
  OwnerIndex* owners_ = nullptr;
  TimePoint now_{};
  Duration pollInterval_{};
  std::int64_t createdBaseMs_ = 0;       // 60 s - the window
  std::int64_t createdThresholdMs_ = 0;  // the base, less widenCreatedWindow's lateness

  std::vector<NetnsEntry> namespaces_;
  std::uint32_t current_ = kNoIndex;
  std::size_t nsFirstEntry_ = 0;
  std::bitset<65536> listenPorts_;

  std::vector<Entry> processes_;
  std::vector<std::uint32_t> entrySlot_;  // per entry: its owner slot
  std::vector<std::uint32_t> entryNext_;  // per entry: older entry of the same slot
  std::vector<std::uint32_t> slotHead_;   // per slot: newest entry, kNoIndex if none
  std::vector<std::uint32_t> ownerLinks_;
  std::vector<CloseWaitSocket> closeWait_;
  std::vector<IpAddress> addresses_;  // Snapshot::addresses; kept across a restarted dump
  AddressInterner interner_;
  std::uint32_t lastLocal_ = kNoIndex;  // the last records' addresses: most repeat
  std::uint32_t lastRemote_ = kNoIndex;
  std::vector<SocketLine> lines_;
  std::vector<ClosingSocket> closing_;
  std::vector<OwnedSocket> owned_;
  std::vector<Pending> pending_;
  std::vector<Listener> listeners_;
  std::size_t nsFirstListener_ = 0;
  std::vector<GroupAcc> groups_;
  std::size_t nsFirstGroup_ = 0;
  std::size_t nsFirstClosing_ = 0;
  std::vector<std::uint32_t> groupRemap_;  // endNamespace(): old group index -> new
  FlatIndex<Endpoint, EndpointHash> serverGroups_;
  FlatIndex<ClientKey, ClientKeyHash> clientGroups_;
  std::uint64_t noPermission_ = 0;
  std::uint64_t vanished_ = 0;
  PendingHints hints_;
  std::size_t lastCloseWait_ = 0;
  Mark namespaceMark_;
  Mark dumpMark_;
  static constexpr std::size_t kLookahead = 16;
  std::array<SocketRecord, kLookahead> ring_{};
  std::size_t ringHead_ = 0;
  std::size_t ringCount_ = 0;
};

}  // namespace waitwatch
