// SPDX-License-Identifier: Apache-2.0
#include "attribution/one_shot_owners.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "attribution/process_resolver.hpp"
#include "bpf/pins.hpp"
#include "bpf/socket_fds.hpp"
#include "core/flat_table.hpp"
#include "proc/inode_table.hpp"
#include "proc/proc_text.hpp"
#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

struct Number {
  char text[16];
  explicit Number(std::int64_t n) {
    auto [end, ec] = std::to_chars(text, text + sizeof(text) - 1, n);
    *end = '\0';
  }
};

// One process as the fd walk found it.
struct WalkedProcess {
  std::int32_t pid = 0;
  bool unreadable = false;  // its fds may not be read (another user's, no privilege)
  int error = 0;            // why, when unreadable
  std::uint32_t fdUid = 0;  // owner of /proc/<pid>/fd (or of /proc/<pid>)
  std::int64_t fdDirSize = -1;
  std::int64_t fdDirMtimeNs = 0;
  std::vector<std::uint32_t> inodes;  // socket inodes it holds, sorted, unique
  ProcessInfo info;                   // filled when it holds sockets
  bool factsPending = false;          // cmdline and user name not read yet (see describe())
};

// Reads /proc/<pid> for the fd walk. One per worker thread: its buffers are reused.
class ProcessWalker {
 public:
  explicit ProcessWalker(int procFd) : procFd_(procFd) {}

  // What the BPF scan found of `pid`: its socket inodes among those the dumps showed. Reads the
  // facts of the process (no fd walk); with `factsPending`, all but those whose read can wait on
  // the process or on a user database (cmdline, user name), which finish() reads if it holds a
  // socket the dumps showed. False when it is gone or its pid was reused since the scan (another
  // start time).
  bool describe(std::int32_t pid, std::uint64_t startTicks, std::vector<std::uint32_t> inodes,
                WalkedProcess& out, bool factsPending = false) {
    auto pidFd = open(pid, out);
    if (!pidFd || out.info.key.startTime != startTicks) return false;
    struct stat ds {};
    if (::fstat(pidFd->get(), &ds) == 0) out.fdUid = ds.st_uid;
    std::sort(inodes.begin(), inodes.end());
    inodes.erase(std::unique(inodes.begin(), inodes.end()), inodes.end());
    out.inodes = std::move(inodes);
    out.factsPending = factsPending;
    readProcessFacts(pidFd->get(), out.fdUid, kMaxCmdlineBytes, text_, out.info, !factsPending);
    return true;
  }

  // The cmdline describe() left out, when the process is still the one described.
  void finish(WalkedProcess& p) {
    p.factsPending = false;
    WalkedProcess now;
    auto pidFd = open(p.pid, now);
    if (!pidFd || now.info.key != p.info.key) return;
    readProcessCmdline(pidFd->get(), kMaxCmdlineBytes, text_, p.info);
  }

  // False when the process is gone.
  bool walk(std::int32_t pid, WalkedProcess& out) {
    auto pidFd = open(pid, out);
    if (!pidFd) return false;

    auto fdDir = openAt(pidFd->get(), "fd", O_DIRECTORY);
    if (!fdDir) {
      const int err = fdDir.error().errnum;
      if (err != EACCES && err != EPERM) return false;
      markUnreadable(out, pidFd->get(), err);
      return true;
    }
    struct stat ds {};
    if (::fstat(fdDir->get(), &ds) == 0) {
      out.fdUid = ds.st_uid;
      out.fdDirSize = ds.st_size;
      out.fdDirMtimeNs = mtimeNs(ds);
    }
    if (!readLinks(fdDir->get(), out)) {
      markUnreadable(out, pidFd->get(), errno);
      return true;
    }
    std::sort(out.inodes.begin(), out.inodes.end());
    out.inodes.erase(std::unique(out.inodes.begin(), out.inodes.end()), out.inodes.end());
    if (!out.inodes.empty()) loadInfo(out.info, pidFd->get(), out.fdUid);
    return true;
  }

 private:
  // Resets `out` to `pid` and fills its key (start time) and comm from /proc/<pid>/stat. The
  // process directory, or nothing when the process is gone.
  std::optional<UniqueFd> open(std::int32_t pid, WalkedProcess& out) {
    out = WalkedProcess{};
    out.pid = pid;
    const Number pidName(pid);
    auto pidFd = openAt(procFd_, pidName.text, O_DIRECTORY);
    if (!pidFd) return std::nullopt;
    if (!readFileAt(pidFd->get(), "stat", text_, kMaxProcFileBytes)) return std::nullopt;
    auto stat = parseProcStat(text_);
    if (!stat) return std::nullopt;
    out.info.key = ProcessKey{pid, stat->startTime};
    out.info.comm = stat->comm;
    return std::move(*pidFd);
  }

  // One readlink per fd. Returns false when the links may not be read (EACCES/EPERM in errno).
  bool readLink(int dirFd, std::int32_t fd, WalkedProcess& out) {
    const Number name(fd);
    char target[64];
    const ssize_t n = ::readlinkat(dirFd, name.text, target, sizeof(target));
    if (n < 0) return errno != EACCES && errno != EPERM;
    if (auto inode = parseSocketLink(std::string_view(target, static_cast<std::size_t>(n)))) {
      out.inodes.push_back(*inode);
    }
    return true;
  }

  // The directory listing first: it builds the dentry of every fd, which the readlinks then
  // find in the cache. (Probing fd numbers 0, 1, 2... without a listing was measured: each
  // lookup then allocates and frees a dentry, and every absent number costs a failed lookup,
  // 4x the CPU per fd on a host with many small processes.)
  bool readLinks(int dirFd, WalkedProcess& out) {
    fds_.clear();
    forEachDirEntry(dirFd, dents_, [&](const char* name, std::uint64_t, unsigned char) {
      if (const auto fd = parseProcNumber(name)) fds_.push_back(*fd);
    });
    for (std::int32_t fd : fds_) {
      if (!readLink(dirFd, fd, out)) return false;
    }
    return true;
  }

  static void markUnreadable(WalkedProcess& out, int pidFd, int err) {
    out.unreadable = true;
    out.error = err;
    struct stat ds {};
    if (::fstat(pidFd, &ds) == 0) out.fdUid = ds.st_uid;
  }

  void loadInfo(ProcessInfo& info, int pidFd, std::uint32_t fdUid) {
    readProcessFacts(pidFd, fdUid, kMaxCmdlineBytes, text_, info);
  }

  int procFd_;
  std::string text_;
  std::vector<char> dents_;
  std::vector<std::int32_t> fds_;
};

// A set of socket inodes built once and probed once per scanned socket fd: a FlatTable at
// <= 50% load (measured at 100k sockets: ~7 ms less CPU per run than sorting the dumped inodes
// and a binary search per fd).
class InodeSet {
 public:
  explicit InodeSet(const std::vector<std::uint32_t>& inodes) {
    table_.reserve(inodes.size());
    for (std::uint32_t inode : inodes) {
      if (inode != 0) table_.findOrInsert(inode);  // no socket is held as inode 0
    }
  }
  [[nodiscard]] bool contains(std::uint32_t inode) const {
    return inode != 0 && table_.find(inode) != nullptr;
  }

 private:
  struct Policy {
    using Slot = std::uint32_t;  // the inode; 0 = empty
    using Key = std::uint32_t;
    static constexpr unsigned kMaxLoadPercent = 50;
    static bool empty(std::uint32_t s) { return s == 0; }
    static std::uint64_t hash(std::uint32_t inode) { return inode; }
    static std::uint64_t slotHash(std::uint32_t s) { return s; }
    static bool matches(std::uint32_t s, std::uint32_t inode) { return s == inode; }
    static std::uint32_t make(std::uint32_t inode) { return inode; }
  };
  FlatTable<Policy> table_;
};

// CPUs this process may run on.
unsigned usableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

}  // namespace

// One look: the walk or scan, and what it found, by slot.
class OneShotRun final : public OwnerIndex {
 public:
  OneShotRun(std::string procRoot, bool tryBpf, bool reusePinned,
             std::optional<std::size_t> claimAheadProcesses)
      : procRoot_(std::move(procRoot)),
        tryBpf_(tryBpf),
        reusePinned_(reusePinned),
        claimAheadProcesses_(claimAheadProcesses) {}
  ~OneShotRun() {
    walkDone_.store(true, std::memory_order_relaxed);  // an abandoned look reads nothing more
    join();
  }
  OneShotRun(const OneShotRun&) = delete;
  OneShotRun& operator=(const OneShotRun&) = delete;

  Result<void> start(unsigned threads) {
    auto dir = openAt(AT_FDCWD, procRoot_, O_DIRECTORY);
    if (!dir) return dir.error().wrap("listing processes");
    procFd_ = std::move(*dir);
    threads_ = threads;
    results_.resize(threads);
    if (!tryBpf_) {
      if (const int err = listProcesses(); err != 0) return osError(err, procRoot_);
      startWalkers();
      return {};
    }
    // The BPF path never lists /proc (measured with 10,000 processes on the host: 87 -> 77 ms
    // CPU per run, all of it before the dump started). The fallback lists in startWalkers().
    loader_ = std::thread([this] {
      auto scanner = reusePinned_ ? bpf::reusePinnedOrLoad<bpf::SocketFdScanner>()
                                  : bpf::SocketFdScanner::load();
      if (scanner) {
        scanner_.emplace(std::move(*scanner));
        // Scanned beside the dumps; finishWithScan() looks again for what this pass missed.
        scanned_ = scanner_->scan(scan_).ok();
        if (!scanned_ && scanner_->reused()) {
          // The daemon's program failed where a program of our own may not.
          scanner_.reset();
          if (auto loaded = bpf::SocketFdScanner::load()) scanner_.emplace(std::move(*loaded));
          scanned_ = scanner_ && scanner_->scan(scan_).ok();
        }
        if (scanned_) takeInAhead();
        if (scanner_) return;
      }
      // No BPF here (no privilege, no BTF, an old kernel): walk /proc while the caller dumps.
      startWalkers();
    });
    return {};
  }

  // After the dumps: the BPF scan's owners, or waits for the /proc walk and then looks again where
  // sockets the dumps saw but the walk did not can be (processes born meanwhile, fd tables that
  // changed).
  void finishWalk() {
    walkDone_.store(true, std::memory_order_relaxed);
    join();
    if (scanner_) {
      if (finishWithScan()) return;
      // The scan failed (before anything was added): walk /proc instead.
      scanner_.reset();
      startWalkers();
      join();
    }
    for (auto& r : results_) {
      for (WalkedProcess& p : r)
        add(std::move(p));
      r.clear();
    }
    std::sort(unreadableUids_.begin(), unreadableUids_.end());
    unreadableUids_.erase(std::unique(unreadableUids_.begin(), unreadableUids_.end()),
                          unreadableUids_.end());
    const bool missing = std::any_of(seen_.begin(), seen_.end(),
                                     [&](std::uint32_t inode) { return !table_.find(inode); });
    seen_.clear();
    seen_.shrink_to_fit();
    if (missing) rewalkChanged();
  }

  // OwnerIndex
  InodeTable::View lookup(std::uint32_t inode) override {
    seen_.push_back(inode);
    return InodeTable::View{InodeTable::State::Pending, 0, {}};
  }
  InodeTable::View settle(std::uint32_t inode, std::uint32_t uid) override {
    if (auto v = table_.find(inode)) return *v;
    // A socket is created with its creator's uid: when that user's processes are hidden from
    // us, one of them most likely holds it; otherwise every candidate was read and it is gone.
    const bool hidden = std::binary_search(unreadableUids_.begin(), unreadableUids_.end(), uid);
    return InodeTable::View{
        hidden ? InodeTable::State::NoPermission : InodeTable::State::Vanished, 0, {}};
  }
  const ProcessInfo& process(std::uint32_t slot) override { return processes_[slot].info; }

  // After finishWalk: why the /proc walk found no process to walk, when /proc could not be
  // listed (the BPF path's fallback lists it late, on the loader thread).
  [[nodiscard]] std::optional<std::string> listingProblem() const {
    if (listError_ == 0) return std::nullopt;
    return "listing processes in " + procRoot_ + ": " + std::strerror(listError_);
  }

  // Whether the owners came from the BPF scan (after finishWalk).
  [[nodiscard]] bool usedBpf() const { return usedBpf_; }
  // Whether that scan's program was a running daemon's (after finishWalk).
  [[nodiscard]] bool reusedPinned() const { return usedBpf_ && scanner_ && scanner_->reused(); }

  void fillStats(ResolverStats& s) const {
    s.processes = pids_.size();
    s.walks = processes_.size();
    s.unreadableProcesses = unreadableCount_;
  }

  // When sockets went unattributed for lack of privilege: what could not be read, and what
  // would help.
  [[nodiscard]] std::optional<std::string> permissionWarning() const {
    if (unreadableCount_ == 0) return std::nullopt;
    return unreadableProcessesWarning(unreadableCount_, firstUnreadable_);
  }

 private:
  void work(std::vector<WalkedProcess>& out) {
    ProcessWalker walker(procFd_.get());
    WalkedProcess p;
    for (;;) {
      const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= pids_.size()) return;
      if (walker.walk(pids_[i], p) && (p.unreadable || !p.inodes.empty() || p.fdDirSize >= 0)) {
        out.push_back(std::move(p));
      }
    }
  }

  // The pids the walkers walk; an errno when /proc could not be listed.
  int listProcesses() {
    pids_.clear();
    std::vector<char> dents;
    return forEachDirEntry(procFd_.get(), dents,
                           [&](const char* name, std::uint64_t, unsigned char) {
                             if (const auto pid = parseProcNumber(name); pid && *pid > 0)
                               pids_.push_back(*pid);
                           });
  }

  // Called by the loader thread (which join() joins first) or by the caller.
  void startWalkers() {
    if (pids_.empty()) {
      if (const int err = listProcesses(); err != 0) listError_ = err;
    }
    for (unsigned t = 0; t < threads_; ++t)
      workers_.emplace_back([this, t] { work(results_[t]); });
  }

  void join() {
    if (loader_.joinable()) loader_.join();
    for (auto& w : workers_)
      if (w.joinable()) w.join();
    workers_.clear();
  }

  // The BPF path after the dumps: the facts of each process the scan found holding a socket the
  // dumps showed, and its claims. The scan ran beside the dumps (on two cores: 85 instead of
  // 110 ms at 100k sockets; no slower when the other core is busy), so it cannot have seen
  // sockets made after it passed their holder: a second scan looks for the dumped sockets left
  // without a holder. False when the first scan failed.
  bool finishWithScan() {
    if (!scanned_) return false;
    ProcessWalker walker(procFd_.get());
    // What the loader did not take in before the walk ended: only holders of dumped sockets.
    if (claimed_ < scan_.size()) addScanned(walker, claimed_, InodeSet(seen_));
    std::vector<std::uint32_t> missing;
    finishHolders(walker, seen_, &missing);
    if (!missing.empty()) {
      // pid 1 was walked before the walk ended, and the scan skips it.
      WalkedProcess p;
      if (walker.walk(1, p)) addOrClaim(std::move(p));
    }
    // When the second scan fails, the sockets it was for count as vanished.
    if (!missing.empty() && scanner_->scan(scan_)) {
      std::size_t from = 0;
      addScanned(walker, from, InodeSet(missing));
    }
    // Processes taken in ahead that only now turn out to hold one of them.
    if (!missing.empty()) finishHolders(walker, missing, nullptr);
    usedBpf_ = true;
    seen_.clear();
    seen_.shrink_to_fit();
    scan_.clear();
    scan_.shrink_to_fit();
    return true;
  }

  // The facts left pending of every holder of `inodes`; the inodes without one into `unowned`.
  void finishHolders(ProcessWalker& walker, const std::vector<std::uint32_t>& inodes,
                     std::vector<std::uint32_t>* unowned) {
    for (std::uint32_t inode : inodes) {
      const auto owned = table_.find(inode);
      if (!owned) {
        if (unowned) unowned->push_back(inode);
        continue;
      }
      for (std::uint32_t slot : owned->owners()) {
        WalkedProcess& holder = processes_[slot];
        if (!holder.factsPending) continue;
        walker.finish(holder);
        holder.info.user = userName_(holder.info.uid);
      }
    }
  }

  // On the loader thread, after its scan, while the socket walk goes on (the longer of the two:
  // ~87 against ~46 ms at 100k sockets). pid 1 first: the iteration in the initial pid namespace
  // does not visit it (the scan ignores the pid 1 of a child namespace), so it is walked through
  // /proc, here so that its claims come first in every owner list whichever thread takes in
  // the rest. Then every claim of the scan and the facts of every process in it, so that the
  // walk's end waits only for what is left when it comes (measured at 70k sockets: 5-8 ms less
  // after the walk). Which sockets the walk saw is known only then, so holders of Unix sockets
  // alone are read too; not their cmdline or user name, whose reads can block
  // (readProcessCmdline(), NSS), and only with a second CPU to do it on.
  void takeInAhead() {
    ProcessWalker walker(procFd_.get());
    WalkedProcess p;
    if (walker.walk(1, p) && (p.unreadable || !p.inodes.empty())) add(std::move(p));
    if (claimAheadProcesses_ != 0) addScanned(walker, claimed_, std::nullopt);
  }

  // Claims of the scan from scan_[from] on, one process at a time: those on the inodes in
  // `wanted`, or all of them. Without `wanted`, stops at the next process once the walk is done
  // (unless told to take in everything); `from` is then where to go on.
  void addScanned(ProcessWalker& walker, std::size_t& from, const std::optional<InodeSet>& wanted) {
    const bool ahead = !wanted;
    std::size_t described = 0;
    WalkedProcess p;
    std::vector<std::uint32_t> inodes;
    while (from < scan_.size()) {
      if (ahead && (claimAheadProcesses_ ? described >= *claimAheadProcesses_
                                         : walkDone_.load(std::memory_order_relaxed))) {
        return;
      }
      const bpf::SocketFd& first = scan_[from];
      inodes.clear();
      for (; from < scan_.size() && scan_[from].pid == first.pid; ++from) {
        if (!wanted || wanted->contains(scan_[from].inode)) {
          inodes.push_back(scan_[from].inode);
        }
      }
      if (first.pid == 1 || inodes.empty()) continue;
      // Known already (a thread with a file table of its own comes again under its process's
      // pid; the second scan finds the first's processes again): only the claims are new.
      if (const auto it = byPid_.find(first.pid);
          it != byPid_.end() && processes_[it->second].info.key.startTime == first.startTicks) {
        for (std::uint32_t inode : inodes)
          table_.addOwner(inode, it->second, true);
        continue;
      }
      ++described;
      if (walker.describe(first.pid, first.startTicks, inodes, p, ahead)) add(std::move(p));
    }
  }

  void add(WalkedProcess p) {
    if (p.unreadable) {
      ++unreadableCount_;
      unreadableUids_.push_back(p.fdUid);
      if (firstUnreadable_.empty()) {
        firstUnreadable_ = procRoot_ + "/" + std::to_string(p.pid) + "/fd (" + p.info.comm +
                           ", uid " + std::to_string(p.fdUid) + "): " + std::strerror(p.error);
      }
    }
    const auto slot = static_cast<std::uint32_t>(processes_.size());
    for (std::uint32_t inode : p.inodes)
      table_.addOwner(inode, slot, true);
    if (!p.inodes.empty() && !p.factsPending) p.info.user = userName_(p.info.uid);
    p.inodes.clear();
    p.inodes.shrink_to_fit();
    byPid_[p.pid] = slot;
    processes_.push_back(std::move(p));
  }

  // Sockets made while the walk ran: their holders are processes born since the listing, or
  // processes whose fd table changed since their walk. Each is read once more.
  void rewalkChanged() {
    std::vector<std::int32_t> candidates;
    std::vector<char> dents;
    forEachDirEntry(procFd_.get(), dents, [&](const char* name, std::uint64_t, unsigned char) {
      const auto pid = parseProcNumber(name);
      if (!pid || *pid <= 0) return;
      const auto it = byPid_.find(*pid);
      if (it == byPid_.end()) {
        candidates.push_back(*pid);
        return;
      }
      const WalkedProcess& p = processes_[it->second];
      if (p.unreadable) return;
      const Number pidName(*pid);
      const std::string path = std::string(pidName.text) + "/fd";
      struct stat st {};
      if (::fstatat(procFd_.get(), path.c_str(), &st, 0) != 0) return;
      if (st.st_size == 0 || st.st_size != p.fdDirSize || mtimeNs(st) != p.fdDirMtimeNs) {
        candidates.push_back(*pid);
      }
    });
    ProcessWalker walker(procFd_.get());
    WalkedProcess p;
    for (std::int32_t pid : candidates)
      if (walker.walk(pid, p)) addOrClaim(std::move(p));
  }

  // A process walked once more: a new one is added; the same process (pid and start time) gets
  // only the sockets it did not hold before as new claims.
  void addOrClaim(WalkedProcess p) {
    const auto it = byPid_.find(p.pid);
    if (it == byPid_.end() || processes_[it->second].info.key != p.info.key) {
      add(std::move(p));
      return;
    }
    WalkedProcess& old = processes_[it->second];
    for (std::uint32_t inode : p.inodes)
      table_.addOwner(inode, it->second, true);
    if (old.info.user.empty() && !p.inodes.empty()) {
      old.info = std::move(p.info);
      old.info.user = userName_(old.info.uid);
    }
  }

  std::string procRoot_;
  bool tryBpf_ = false;
  bool reusePinned_ = false;
  // How many of the scan's processes the loader takes in; unset: until the walk ends.
  std::optional<std::size_t> claimAheadProcesses_;
  bool usedBpf_ = false;
  unsigned threads_ = 1;
  UniqueFd procFd_;
  std::vector<std::int32_t> pids_;
  std::atomic<std::size_t> next_{0};
  std::vector<std::vector<WalkedProcess>> results_;  // one per worker
  std::vector<std::thread> workers_;
  std::thread loader_;                           // loads the BPF program during the dumps
  std::optional<bpf::SocketFdScanner> scanner_;  // set by loader_ when it loaded
  std::vector<bpf::SocketFd> scan_;
  bool scanned_ = false;               // the loader's scan succeeded
  std::atomic<bool> walkDone_{false};  // set by the caller when the socket walk has ended
  std::size_t claimed_ = 0;            // where in the first scan's records the loader stopped
  int listError_ = 0;                  // the fallback walk could not list /proc (errno)

  InodeTable table_;
  std::vector<WalkedProcess> processes_;  // by slot
  std::unordered_map<std::int32_t, std::uint32_t> byPid_;
  std::vector<std::uint32_t> seen_;  // inodes the dumps showed
  std::vector<std::uint32_t> unreadableUids_;
  std::size_t unreadableCount_ = 0;
  std::string firstUnreadable_;
  UserNames userName_;
};

OneShotOwners::OneShotOwners(OneShotOwnersOptions options) : options_(std::move(options)) {
  options_.threads = std::max(options_.threads, 1u);
}

OneShotOwners::~OneShotOwners() = default;

Result<void> OneShotOwners::beginPoll(TimePoint) {
  run_.reset();  // joins the last look's threads, if it was abandoned midway
  stats_ = ResolverStats{};
  // Ahead only with a CPU beside the walk's: on one, the reads of processes that hold no
  // dumped socket would only slow the walk.
  std::optional<std::size_t> ahead = options_.claimAheadProcesses;
  if (!ahead && usableCpus() < 2) ahead = 0;
  run_ = std::make_unique<OneShotRun>(options_.procRoot, options_.bpf, options_.reusePinned, ahead);
  return run_->start(options_.threads);
}

InodeTable::View OneShotOwners::lookup(std::uint32_t inode) {
  return run_->lookup(inode);
}

void OneShotOwners::resolve(const PendingHints& hints, TimePoint) {
  stats_.pending = hints.sockets;
  run_->finishWalk();
  run_->fillStats(stats_);
}

InodeTable::View OneShotOwners::settle(std::uint32_t inode, std::uint32_t uid) {
  return run_->settle(inode, uid);
}

const ProcessInfo& OneShotOwners::process(std::uint32_t slot) {
  return run_->process(slot);
}

std::optional<std::string> OneShotOwners::takePermissionWarning() {
  if (warned_ || !run_) return std::nullopt;
  auto w = run_->permissionWarning();
  if (w) warned_ = true;
  return w;
}

std::vector<std::string> OneShotOwners::problems() const {
  std::vector<std::string> out;
  if (run_) {
    if (auto p = run_->listingProblem()) out.push_back(std::move(*p));
  }
  return out;
}

bool OneShotOwners::usedBpf() const {
  return run_ && run_->usedBpf();
}

bool OneShotOwners::reusedPinned() const {
  return run_ && run_->reusedPinned();
}

}  // namespace waitwatch
