#include "cli/collect.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "attribution/collector.hpp"
#include "netlink/netns_info.hpp"
#include "netlink/sampler.hpp"
#include "proc/cgroup.hpp"
#include "proc/inode_table.hpp"
#include "proc/proc_text.hpp"
#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch::cli {
namespace {

constexpr std::size_t kSmallFileLimit = 64 * 1024;

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
};

// Reads /proc/<pid> for the fd walk. One per worker thread: its buffers are reused.
class ProcessWalker {
 public:
  explicit ProcessWalker(int procFd) : procFd_(procFd) {}

  // False when the process is gone.
  bool walk(std::int32_t pid, WalkedProcess& out) {
    out = WalkedProcess{};
    out.pid = pid;
    const Number pidName(pid);
    auto pidFd = openAt(procFd_, pidName.text, O_DIRECTORY);
    if (!pidFd) return false;
    if (!readFileAt(pidFd->get(), "stat", text_, kSmallFileLimit)) return false;
    auto stat = parseProcStat(text_);
    if (!stat) return false;
    out.info.key = ProcessKey{pid, stat->startTime};
    out.info.comm = stat->comm;

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
    info.uid = fdUid;
    if (readFileAt(pidFd, "status", text_, kSmallFileLimit)) {
      if (auto status = parseProcStatus(text_)) info.uid = status->effectiveUid;
    }
    if (readFileAt(pidFd, "cmdline", text_, 4096)) info.cmdline = formatCmdline(text_);
    char exe[4096];
    const ssize_t n = ::readlinkat(pidFd, "exe", exe, sizeof(exe));
    if (n > 0)
      info.exe = printable(std::string_view(exe, static_cast<std::size_t>(n)), sizeof(exe));
    if (readFileAt(pidFd, "cgroup", text_, kSmallFileLimit)) {
      if (auto cg = parseCgroupFile(text_)) {
        info.cgroup = std::move(cg->path);
        info.unit = std::move(cg->unit);
        info.container = std::move(cg->container);
      }
    }
  }

  int procFd_;
  std::string text_;
  std::vector<char> dents_;
  std::vector<std::int32_t> fds_;
};

// The owners of a one-shot run: every process's fds read once, on worker threads, while the
// caller dumps. During the dump every socket is Pending; the aggregator settles them after.
class OneShotOwners final : public OwnerIndex {
 public:
  explicit OneShotOwners(std::string procRoot) : procRoot_(std::move(procRoot)) {}
  ~OneShotOwners() { join(); }
  OneShotOwners(const OneShotOwners&) = delete;
  OneShotOwners& operator=(const OneShotOwners&) = delete;

  Result<void> start(unsigned threads) {
    auto dir = openAt(AT_FDCWD, procRoot_, O_DIRECTORY);
    if (!dir) return dir.error().wrap("listing processes");
    procFd_ = std::move(*dir);
    std::vector<char> dents;
    const int err =
        forEachDirEntry(procFd_.get(), dents, [&](const char* name, std::uint64_t, unsigned char) {
          if (const auto pid = parseProcNumber(name); pid && *pid > 0) pids_.push_back(*pid);
        });
    if (err != 0) return Error{err, procRoot_ + ": " + std::strerror(err)};
    results_.resize(threads);
    for (unsigned t = 0; t < threads; ++t)
      workers_.emplace_back([this, t] { work(results_[t]); });
    return {};
  }

  // After the dumps: waits for the walk, then looks again where sockets the dumps saw but the
  // walk did not can be (processes born meanwhile, fd tables that changed).
  void finishWalk() {
    join();
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

  // When sockets went unattributed for lack of privilege: what could not be read, and what
  // would help.
  [[nodiscard]] std::optional<std::string> permissionWarning() const {
    if (unreadableCount_ == 0) return std::nullopt;
    return "cannot read the open files of " + std::to_string(unreadableCount_) +
           " process(es) (first: " + firstUnreadable_ +
           "); the sockets they hold are counted but not attributed. Run as root, or with "
           "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, to attribute them.";
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

  void join() {
    for (auto& w : workers_)
      if (w.joinable()) w.join();
    workers_.clear();
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
    if (!p.inodes.empty()) p.info.user = userName(p.info.uid);
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
    for (std::int32_t pid : candidates) {
      if (!walker.walk(pid, p)) continue;
      const auto it = byPid_.find(pid);
      if (it != byPid_.end() && processes_[it->second].info.key == p.info.key) {
        // The same process: only the sockets it did not hold before are new claims.
        WalkedProcess& old = processes_[it->second];
        for (std::uint32_t inode : p.inodes)
          table_.addOwner(inode, it->second, true);
        if (old.info.user.empty() && !p.inodes.empty()) {
          old.info = std::move(p.info);
          old.info.user = userName(old.info.uid);
        }
        continue;
      }
      add(std::move(p));
    }
  }

  const std::string& userName(std::uint32_t uid) {
    auto it = userNames_.find(uid);
    if (it != userNames_.end()) return it->second;
    std::string name = std::to_string(uid);
    struct passwd pw {};
    struct passwd* result = nullptr;
    std::vector<char> buf(16 * 1024);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr &&
        result->pw_name != nullptr) {
      name = printable(result->pw_name, 64);
    }
    return userNames_.emplace(uid, std::move(name)).first->second;
  }

  std::string procRoot_;
  UniqueFd procFd_;
  std::vector<std::int32_t> pids_;
  std::atomic<std::size_t> next_{0};
  std::vector<std::vector<WalkedProcess>> results_;  // one per worker
  std::vector<std::thread> workers_;

  InodeTable table_;
  std::vector<WalkedProcess> processes_;  // by slot
  std::unordered_map<std::int32_t, std::uint32_t> byPid_;
  std::vector<std::uint32_t> seen_;  // inodes the dumps showed
  std::vector<std::uint32_t> unreadableUids_;
  std::size_t unreadableCount_ = 0;
  std::string firstUnreadable_;
  std::unordered_map<std::uint32_t, std::string> userNames_;
};

Result<std::vector<NetnsHandle>> selectNamespaces(const CollectRequest& request,
                                                  const Environment& env) {
  std::vector<NetnsHandle> out;
  switch (request.netns) {
    case NetnsSelection::Own: {
      auto h = currentNetworkNamespace(env.procRoot, env.runNetns);
      if (!h) return h.error();
      out.push_back(std::move(*h));
      break;
    }
    case NetnsSelection::Named: {
      auto h = openNamedNetworkNamespace(request.netnsName, env.runNetns);
      if (!h) return h.error();
      out.push_back(std::move(*h));
      break;
    }
    case NetnsSelection::All: {
      auto all = listNetworkNamespaces(env.procRoot, env.runNetns);
      if (!all) return all.error();
      out = std::move(*all);
      break;
    }
  }
  return out;
}

unsigned walkerThreads(const Environment& env) {
  if (env.walkerThreads > 0) return env.walkerThreads;
  return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

}  // namespace

LocalCollector::LocalCollector(CollectRequest request, Environment env)
    : request_(std::move(request)), env_(std::move(env)) {}

LocalCollector::~LocalCollector() = default;

Result<Collection> LocalCollector::collect(TimePoint now) {
  if (request_.reuseCache && !request_.udp) return collectCached(now);
  return collectOnce(now);
}

Result<Collection> LocalCollector::collectOnce(TimePoint now) {
  auto handles = selectNamespaces(request_, env_);
  if (!handles) return handles.error();

  OneShotOwners owners(env_.procRoot);
  if (auto r = owners.start(walkerThreads(env_)); !r) return r.error();

  // The namespace waitwatch runs in needs no setns (and so no privilege); the others do.
  std::uint64_t ownInode = 0;
  if (auto own = currentNetworkNamespace(env_.procRoot, env_.runNetns)) ownInode = own->ref.inode;

  SnapshotAggregator tcp(AggregatorOptions{.perSocketStates = stateBit(TcpState::CloseWait),
                                           .keepAllSockets = request_.keepSockets});
  SnapshotAggregator udp(AggregatorOptions{.perSocketStates = 0, .keepAllSockets = true});
  tcp.begin(now, Duration{0}, owners);
  if (request_.udp) udp.begin(now, Duration{0}, owners);

  Collection c;
  Error last;
  std::size_t read = 0;
  for (const NetnsHandle& h : *handles) {
    const bool own = h.ref.inode == ownInode;
    auto sampler = own ? SockDiagSampler::open() : SockDiagSampler::openInNamespace(h.fd.get());
    if (!sampler) {
      last = sampler.error().wrap(h.ref.label());
      c.warnings.push_back(last.message);
      continue;
    }
    NetnsKernelInfo info;
    if (own) {
      info = readCurrentNetnsKernelInfo(env_.procRoot);
    } else if (auto r = readNetnsKernelInfo(h.fd.get())) {
      info = std::move(*r);
    } else {
      info.problems = r.error().message;
    }
    if (!info.problems.empty()) c.warnings.push_back(h.ref.label() + ": " + info.problems);
    NetnsEntry entry;
    entry.ref = h.ref;
    entry.kernel = info.counters;
    entry.maxTimeWaitBuckets = info.maxTimeWaitBuckets;
    if (info.ephemeral) entry.ephemeral = *info.ephemeral;

    tcp.beginNamespace(entry);
    tcp.beginDump();
    auto dumped = sampler->dump(
        DumpOptions{}, [&](const SocketRecord& s) { tcp.add(s); }, [&] { tcp.restartDump(); });
    if (!dumped) {
      tcp.abortNamespace();
      last = dumped.error().wrap(h.ref.label());
      c.warnings.push_back(last.message);
      continue;
    }
    tcp.endNamespace();
    ++read;
    if (!request_.udp) continue;
    udp.beginNamespace(entry);
    udp.beginDump();
    auto udpDumped = sampler->dump(
        DumpOptions{.wantCgroupId = false, .protocol = DumpProtocol::Udp},
        [&](const SocketRecord& s) { udp.add(s); }, [&] { udp.restartDump(); });
    if (!udpDumped) {
      udp.abortNamespace();
      c.warnings.push_back(udpDumped.error().wrap(h.ref.label()).message);
      continue;
    }
    udp.endNamespace();
  }
  owners.finishWalk();
  if (read == 0) {
    if (c.warnings.empty()) return Error{0, "no network namespace found"};
    return last;
  }
  tcp.finish(c.snapshot);
  c.sockets = tcp.sockets();
  if (request_.udp) {
    udp.finish(c.udp);
    c.udpSockets = udp.sockets();
    c.hasUdp = true;
  }
  if (!warned_ && c.snapshot.unattributedNoPermission + c.udp.unattributedNoPermission > 0) {
    if (auto w = owners.permissionWarning()) {
      warned_ = true;
      c.privilegeWarning =
          std::to_string(c.snapshot.unattributedNoPermission + c.udp.unattributedNoPermission) +
          " socket(s) could not be attributed: " + *w;
    }
  }
  return c;
}

Result<Collection> LocalCollector::collectCached(TimePoint now) {
  if (!collector_) {
    CollectorOptions o{.namespaces = NamespaceSelection::Host,
                       .names = {},
                       .procRoot = env_.procRoot,
                       .runNetns = env_.runNetns,
                       .keepAllSockets = request_.keepSockets};
    if (request_.netns == NetnsSelection::All) o.namespaces = NamespaceSelection::All;
    if (request_.netns == NetnsSelection::Named) {
      o.namespaces = NamespaceSelection::Named;
      o.names = {request_.netnsName};
    }
    collector_ = std::make_unique<Collector>(std::move(o));
  }
  Collection c;
  if (auto r = collector_->collect(now, Duration{0}, c.snapshot); !r) return r.error();
  for (const Error& e : collector_->stats().namespaceErrors)
    c.warnings.push_back(e.message);
  for (const std::string& p : collector_->stats().kernelInfoProblems)
    c.warnings.push_back(p);
  if (request_.keepSockets) c.sockets = collector_->sockets();
  if (auto w = collector_->takeWarning()) c.privilegeWarning = std::move(w);
  return c;
}

}  // namespace waitwatch::cli
