// SPDX-License-Identifier: Apache-2.0
#include "bpf/close_recorder.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "libbpf_log.hpp"
#include "objects.hpp"
#include "sys/file.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch::bpf {
namespace {

// bpf_get_socket_cookie() on a socket pointer came to tracing programs in Linux 5.12.
constexpr std::string_view kRequirement =
    "needs Linux >= 5.12 with BTF, BPF ring buffers and tp_btf programs";

// close_record in closes.bpf.c.
struct RawClose {
  std::uint64_t cookie;
  std::uint64_t startBoottimeNs;
  std::uint64_t cgroupId;
  std::uint32_t pid;
  std::uint32_t uid;
  char comm[16];
};
static_assert(sizeof(RawClose) == 48);
// A ring record is the data and an 8-byte header, rounded up to 8 (kernel/bpf/ringbuf.c).
constexpr std::size_t kRecordBytes = sizeof(RawClose) + 8;

// The program's one .rodata variable (`config` in closes.bpf.c).
struct RawConfig {
  std::uint64_t pidnsDev;
  std::uint64_t pidnsIno;
  std::uint64_t wakeAtBytes;
  std::uint64_t readerInInitialPidns;
};

// Whether this process runs in the initial pid namespace: its NSpid line (/proc/self/status)
// has one number per namespace level, one in the initial namespace.
bool inInitialPidNamespace() {
  std::string text;
  if (!readFileAt(AT_FDCWD, "/proc/self/status", text, 1 << 16)) return false;
  const auto at = text.find("\nNSpid:");
  if (at == std::string::npos) return true;  // before Linux 4.1: no pid namespaces to tell
  const auto end = text.find('\n', at + 1);
  std::istringstream fields(text.substr(at + 8, end - at - 8));
  int levels = 0;
  for (std::string pid; fields >> pid;)
    ++levels;
  return levels == 1;
}

bpf_map* internalMap(bpf_object* object, std::string_view suffix) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, object) {
    const std::string_view name = bpf_map__name(map);
    if (name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      return map;
    }
  }
  return nullptr;
}

}  // namespace

struct CloseRecorder::Loaded {
  bpf_object* object = nullptr;
  bpf_link* link = nullptr;
  ring_buffer* ring = nullptr;
  void* bss = nullptr;  // the program's .bss, mapped
  std::size_t bssBytes = 0;
  const volatile std::uint64_t* kernelLost = nullptr;  // `lost` in it
  std::size_t ringBytes = 0;
  std::size_t maxWaiting = 0;
  detail::StartTicks startTicks;
  UniqueFd epoll;
  UniqueFd stop;
  std::thread reader;
  std::mutex mutex;  // the ring's consumer side and `waiting`
  CloseBatch waiting;
  // Closers of `waiting` by identity: most closes of a storm come from a few processes.
  struct IdentityHash {
    std::size_t operator()(const Closer& c) const noexcept {
      std::uint64_t h = c.startTicks * 0x9e3779b97f4a7c15ULL ^ static_cast<std::uint32_t>(c.pid);
      for (char ch : c.comm) {
        if (ch == '\0') break;
        h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ULL;
      }
      return static_cast<std::size_t>(h ^ (h >> 29));
    }
  };
  std::unordered_map<Closer, std::uint32_t, IdentityHash> closerIndex;
  std::atomic<std::uint64_t> dropped{0};

  Loaded() = default;
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;
  ~Loaded() {
    if (reader.joinable()) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(stop.get(), &one, sizeof(one));
      reader.join();
    }
    if (ring != nullptr) ring_buffer__free(ring);
    if (bss != nullptr) ::munmap(bss, bssBytes);
    if (link != nullptr) bpf_link__destroy(link);
    if (object != nullptr) bpf_object__close(object);
  }

  static int onRecord(void* context, void* data, std::size_t size) {
    auto* self = static_cast<Loaded*>(context);
    if (size < sizeof(RawClose)) return 0;
    RawClose r;
    std::memcpy(&r, data, sizeof(r));
    if (self->waiting.closes.size() >= self->maxWaiting) {
      self->dropped.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    Closer c;
    c.pid = r.pid <= INT32_MAX ? static_cast<std::int32_t>(r.pid) : 0;
    c.startTicks = self->startTicks(r.startBoottimeNs);
    c.uid = r.uid;
    c.cgroupId = r.cgroupId;
    std::memcpy(c.comm.data(), r.comm, sizeof(r.comm));
    c.comm.back() = '\0';
    // Bytes after the NUL are whatever the kernel had there: not part of the identity.
    const auto end = std::find(c.comm.begin(), c.comm.end(), '\0');
    std::fill(end, c.comm.end(), '\0');
    const auto next = static_cast<std::uint32_t>(self->waiting.closers.size());
    const auto [it, inserted] = self->closerIndex.try_emplace(c, next);
    if (inserted) self->waiting.closers.push_back(c);
    self->waiting.closes.push_back(CloseEvent{r.cookie, it->second});
    return 0;
  }

  // Waits for the kernel's "half full" wakeups and empties the ring at each one.
  void readLoop() {
    for (;;) {
      epoll_event events[2];
      const int n = ::epoll_wait(epoll.get(), events, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == stop.get()) return;
      }
      const std::lock_guard lock(mutex);
      ring_buffer__consume(ring);
    }
  }
};

CloseRecorder::CloseRecorder(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
CloseRecorder::CloseRecorder(CloseRecorder&&) noexcept = default;
CloseRecorder& CloseRecorder::operator=(CloseRecorder&&) noexcept = default;
CloseRecorder::~CloseRecorder() = default;

Result<CloseRecorder> CloseRecorder::load(std::size_t maxWaiting) {
  detail::silenceLibbpf();
  if (auto btf = detail::requireKernelBtf(); !btf) return btf.error();
  auto loaded = std::make_unique<Loaded>();
  loaded->maxWaiting = std::max<std::size_t>(maxWaiting, 1);
  // A sixteenth of what may wait, at most 4 MiB: the reader is woken at half full, long before
  // the ring could overflow at any close rate a host sustains.
  loaded->ringBytes = std::clamp<std::size_t>(std::bit_ceil(loaded->maxWaiting * kRecordBytes / 16),
                                              64 * 1024, 4 * 1024 * 1024);

  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = "waitwatch_closes";
  loaded->object = bpf_object__open_mem(detail::kClosesObject, detail::kClosesObjectSize, &opts);
  if (loaded->object == nullptr) {
    const int err = errno;
    return Error{err, detail::withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                               std::strerror(err))};
  }
  bpf_map* ringMap = bpf_object__find_map_by_name(loaded->object, "closes");
  bpf_map* rodata = internalMap(loaded->object, ".rodata");
  bpf_map* bss = internalMap(loaded->object, ".bss");
  std::size_t rodataSize = 0;
  if (rodata != nullptr) bpf_map__initial_value(rodata, &rodataSize);
  if (ringMap == nullptr || rodataSize != sizeof(RawConfig) || bss == nullptr) {
    return Error{ENOENT, "the embedded BPF object lacks its ring, .rodata or .bss"};
  }
  if (const int r =
          bpf_map__set_max_entries(ringMap, static_cast<std::uint32_t>(loaded->ringBytes));
      r != 0) {
    return Error{-r, "sizing the BPF ring buffer: " + std::string(std::strerror(-r))};
  }
  // Pids as this process's /proc numbers them.
  struct stat ns {};
  if (::stat("/proc/self/ns/pid", &ns) != 0) {
    return osError(errno, "reading /proc/self/ns/pid");
  }
  RawConfig c{static_cast<std::uint64_t>(ns.st_dev), static_cast<std::uint64_t>(ns.st_ino),
              loaded->ringBytes / 2, inInitialPidNamespace() ? 1u : 0u};
  if (const int r = bpf_map__set_initial_value(rodata, &c, sizeof(c)); r != 0) {
    return Error{-r, "configuring the BPF close recorder: " + std::string(std::strerror(-r))};
  }

  if (const int r = bpf_object__load(loaded->object); r != 0) {
    return detail::loadError(-r, "loading the BPF close recorder", kRequirement);
  }
  bpf_program* program = bpf_object__find_program_by_name(loaded->object, "record_close");
  if (program == nullptr) return Error{ENOENT, "the BPF object has no program record_close"};
  loaded->link = bpf_program__attach(program);
  if (loaded->link == nullptr) {
    return detail::loadError(errno, "attaching the BPF close recorder", kRequirement);
  }
  // The live .bss, mapped read-only: libbpf's own copy of it is the initial value.
  loaded->bssBytes = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* bssMap = ::mmap(nullptr, loaded->bssBytes, PROT_READ, MAP_SHARED, bpf_map__fd(bss), 0);
  if (bssMap == MAP_FAILED) return osError(errno, "mapping the BPF close recorder's counters");
  loaded->bss = bssMap;
  loaded->kernelLost = static_cast<const volatile std::uint64_t*>(bssMap);
  loaded->ring = ring_buffer__new(bpf_map__fd(ringMap), &Loaded::onRecord, loaded.get(), nullptr);
  if (loaded->ring == nullptr) {
    return detail::loadError(errno, "mapping the BPF close recorder's ring", kRequirement);
  }

  loaded->epoll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  loaded->stop = UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!loaded->epoll || !loaded->stop) return osError(errno, "creating the ring reader's epoll");
  epoll_event ringEvent{};
  ringEvent.events = EPOLLIN;
  ringEvent.data.fd = ring_buffer__epoll_fd(loaded->ring);
  epoll_event stopEvent{};
  stopEvent.events = EPOLLIN;
  stopEvent.data.fd = loaded->stop.get();
  if (::epoll_ctl(loaded->epoll.get(), EPOLL_CTL_ADD, ringEvent.data.fd, &ringEvent) != 0 ||
      ::epoll_ctl(loaded->epoll.get(), EPOLL_CTL_ADD, loaded->stop.get(), &stopEvent) != 0) {
    return osError(errno, "watching the BPF close recorder's ring");
  }
  return CloseRecorder(std::move(loaded));
}

void CloseRecorder::take(CloseBatch& out) {
  // The reader starts with the first take(), not at load: a thread copies the capabilities of
  // the thread that starts it, and the loader still holds the ones loading needed.
  if (!loaded_->reader.joinable()) {
    Loaded* self = loaded_.get();
    loaded_->reader = std::thread([self] { self->readLoop(); });
  }
  out.closes.clear();
  out.closers.clear();
  const std::lock_guard lock(loaded_->mutex);
  ring_buffer__consume(loaded_->ring);
  std::swap(out, loaded_->waiting);
  loaded_->closerIndex.clear();
}

std::uint64_t CloseRecorder::lost() const {
  return *loaded_->kernelLost + loaded_->dropped.load(std::memory_order_relaxed);
}

std::size_t CloseRecorder::ringBytes() const {
  return loaded_->ringBytes;
}

}  // namespace waitwatch::bpf
