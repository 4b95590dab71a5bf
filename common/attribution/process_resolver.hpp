// SPDX-License-Identifier: Apache-2.0
#pragma once
// Socket inode -> owning processes, through /proc/<pid>/fd, cheaply enough for every poll.
//
// The cache is an InodeTable (inode -> owner slots) plus, per process, the socket fds seen at
// its last walk. The cost rules (reading one fd costs a few microseconds, five times the netlink
// cost of a socket, so walking every fd every poll would dominate):
//   - before the dump, /proc is listed (one getdents pass): exited processes drop their claims,
//     a reused pid (its /proc entry's inode changed and its start time differs) is a new
//     process, and processes never seen before are walked once;
//   - the dump looks every socket inode up; only unknown inodes go on;
//   - for those, after the dump: processes born since the listing, then processes in the
//     sockets' cgroups or with the sockets' uids whose fd table changed since their last walk
//     (including processes walked before this dump as new: a socket opened after that walk)
//     (st_size of /proc/<pid>/fd is the fd count on Linux >= 6.2; mtime and a closed socket
//     count as change too);
//   - every poll, a few owner processes (round robin) whose fd table changed are re-read, so a
//     claim on a socket a process closed while another still holds it does not live on;
//   - a full walk of every readable process only when inodes are still unknown, at most once
//     per `fullWalkInterval` (a socket closed between the dump and the walk would otherwise
//     cost one every poll); inodes given up on meanwhile count as vanished and get that walk
//     at the next chance;
//   - a walk reads only fds it cannot vouch for: a fd whose socket it already holds a claim on
//     is kept without a readlink.
// Known blind spot, until the next full walk or until the old socket closes: a process that
// closes a shared socket and gets a new socket on the same fd number, without its fd count or
// directory time changing, keeps the old claim and its new socket stays unattributed.
// Races are expected: a process exiting mid-walk drops out, a fd closed mid-walk is skipped,
// a pid reused between the listing and the walk is detected by its start time. Slots are never
// reused within the poll that released them, so a snapshot never mixes two processes.
// Owners a walk finds after the dump for a socket the dump already attributed (a known socket
// passed to another process) show from the next poll.
// Processes whose fds cannot be read (no root, no CAP_SYS_PTRACE): their sockets are counted
// as NoPermission when the socket's uid is one of theirs, else as Vanished.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "attribution/owner_finder.hpp"
#include "core/duration.hpp"
#include "core/process.hpp"
#include "core/result.hpp"
#include "proc/aggregator.hpp"
#include "proc/inode_table.hpp"
#include "proc/proc_text.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

struct ProcessResolverOptions {
  std::string procRoot = "/proc";
  // The cgroup v2 hierarchy, whose directory inodes are the ids the kernel reports for
  // sockets. Empty: /sys/fs/cgroup when it is cgroup2, else /sys/fs/cgroup/unified (hybrid
  // hosts), else no cgroup hints.
  std::string cgroupRoot{};
  // A full walk of every process runs only when sockets stay unknown after the targeted
  // search, and at most this often: the owner of a socket created and closed between the dump
  // and the walk would otherwise trigger one every poll.
  Duration fullWalkInterval = std::chrono::seconds(30);
  // Owner processes whose fd table is re-checked per poll (round robin), so that a claim on a
  // socket a process closed while another still holds it does not live on unnoticed.
  std::size_t revalidatePerPoll = 64;
  std::size_t cmdlineMaxBytes = kMaxCmdlineBytes;
  // Read cmdline and exe and keep the cgroup path. Off for a reader that shows none of them
  // (the daemon): they were most of a process's heap strings, held by the cache and by the
  // snapshot entries (about 0.5 KB per process), and two fewer /proc reads per new process.
  bool processDetails = true;
};

// The facts attribution shows about a process, read from its open /proc/<pid> directory:
// effective uid (from status; `fallbackUid`, e.g. the directory's owner, when status cannot be
// read or parsed), cmdline (cut to `cmdlineMaxBytes`), exe, cgroup path, unit and container. Fields
// whose file cannot be read keep their value, but exe, which is cleared. `scratch` is reused.
// Shared by ProcessResolver and the CLI's one-shot collection. Without `cmdline`, all but the
// cmdline, which readProcessCmdline() reads.
void readProcessFacts(int pidFd, std::uint32_t fallbackUid, std::size_t cmdlineMaxBytes,
                      std::string& scratch, ProcessInfo& info, bool cmdline = true);

// The one fact whose read can wait on the process: the kernel copies the cmdline out of its
// memory under its mmap lock (fs/proc/base.c get_mm_cmdline() -> access_remote_vm()), which a
// process stuck in a page fault or a long munmap() holds.
void readProcessCmdline(int pidFd, std::size_t cmdlineMaxBytes, std::string& scratch,
                        ProcessInfo& info);

// uid -> user name through the passwd database (NSS), each uid looked up once; the uid itself
// when it has no name. Not thread-safe: one per reader.
class UserNames {
 public:
  const std::string& operator()(std::uint32_t uid);

 private:
  std::unordered_map<std::uint32_t, std::string> names_;
};

// The one-line warning about `count` processes whose fds could not be read (`first`: the first
// one, "/proc/<pid>/fd (comm, uid N): reason"), and what would help. Shared with the CLI.
std::string unreadableProcessesWarning(std::uint64_t count, const std::string& first);

class ProcessResolver final : public OwnerFinder {
 public:
  explicit ProcessResolver(ProcessResolverOptions options = {});

  // Before the dumps: lists /proc (exits, pid reuse, new processes) and walks new processes.
  Result<void> beginPoll(TimePoint now) override;
  // During the dumps (OwnerIndex).
  InodeTable::View lookup(std::uint32_t inode) override { return table_.touch(inode); }
  void prefetch(std::uint32_t inode) override { table_.prefetch(inode); }
  // After the dumps: searches for the inodes the dumps left unknown (see the cost rules).
  void resolve(const PendingHints& hints, TimePoint now) override;
  // After resolve (OwnerIndex).
  InodeTable::View settle(std::uint32_t inode, std::uint32_t uid) override;
  const ProcessInfo& process(std::uint32_t slot) override;
  // After the snapshot is built: forgets inodes no dump showed this poll.
  void endPoll() override;
  bool describe(const ProcessKey& key, std::uint64_t cgroupId, ProcessInfo& info) override;

  // Non-empty once, after the first poll that met processes whose fds it may not read.
  std::optional<std::string> takePermissionWarning() override;
  [[nodiscard]] const ResolverStats& stats() const override { return stats_; }
  [[nodiscard]] const std::string& cgroupRoot() const { return cgroupRoot_; }

 private:
  struct FdLink {
    std::int32_t fd;
    std::uint32_t inode;
  };
  struct Proc {
    std::int32_t pid = 0;
    bool inUse = false;
    bool walked = false;       // walked at least once (or found unreadable)
    bool unreadable = false;   // its fd directory is not readable
    bool dirty = false;        // a socket it held went away since its last walk
    std::uint64_t dirIno = 0;  // inode of /proc/<pid>: a new one means the pid may be reused
    std::uint64_t startTime = 0;
    std::uint32_t uid = 0;  // owner of /proc/<pid>/fd (effective uid)
    std::int64_t fdDirSize = -1;
    std::int64_t fdDirMtimeNs = 0;
    std::uint64_t seenPoll = 0;
    std::uint64_t walkedPoll = 0;  // the last poll whose dump its walk came after
    std::vector<FdLink> sockets;   // socket fds at its last walk, sorted by fd
    ProcessInfo info;
  };
  enum class WalkMode { BeforeDump, AfterDump };

  std::uint32_t addProc(std::int32_t pid, std::uint64_t dirIno);
  void releaseProc(std::uint32_t slot);
  Result<void> scanProc(bool onlyNew);
  // Walks one process; returns false when it is gone.
  bool walk(std::uint32_t slot, WalkMode mode);
  bool fdTableChanged(std::uint32_t slot);
  void markUnreadable(std::uint32_t slot, int pidFd, const std::string& comm, int err);
  void loadInfo(Proc& p, int pidFd);
  void collectCgroupPids(const std::vector<std::uint64_t>& cgroupIds);
  // The path below cgroupRoot_ of a cgroup v2 id; nullptr when unknown.
  const std::string* findCgroup(std::uint64_t id);
  void scanCgroups();
  InodeTable::State classify(std::uint32_t uid) const;

  ProcessResolverOptions options_;
  std::string cgroupRoot_;
  InodeTable table_;
  std::vector<Proc> procs_;  // by slot
  std::vector<std::uint32_t> freeSlots_;
  std::vector<std::uint32_t> releasedSlots_;  // free from the next poll on
  std::unordered_map<std::int32_t, std::uint32_t> slotOfPid_;
  UserNames userName_;
  std::unordered_map<std::uint64_t, std::string> cgroupPaths_;  // cgroup id -> path below root
  std::unordered_set<std::uint64_t> missingCgroups_;            // not found by the last scan
  std::uint64_t cgroupScanPoll_ = 0;
  std::vector<std::int32_t> cgroupPids_;       // sorted
  std::vector<std::uint32_t> unreadableUids_;  // sorted
  std::uint64_t poll_ = 0;
  std::optional<TimePoint> lastFullWalk_;
  std::size_t revalidateCursor_ = 0;
  ResolverStats stats_;
  bool warned_ = false;
  bool unsearched_ = false;  // inodes were given up on without a full walk
  std::uint64_t unreadable_ = 0;
  std::string firstUnreadable_;
  UniqueFd procFd_;  // the /proc root, opened by each listing
  // Scratch buffers reused across walks.
  std::vector<char> dents_;
  std::vector<std::int32_t> fdNumbers_;
  std::vector<FdLink> newLinks_;
  std::vector<std::uint32_t> inodeScratch_;
  std::vector<std::uint32_t> newSlots_;
  std::string text_;
};

}  // namespace waitwatch
