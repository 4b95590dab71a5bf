// SPDX-License-Identifier: Apache-2.0
// The floor of counting in the kernel: what an iter/tcp walk of this namespace costs with a
// program that does nothing, and with one that keeps everything it can in the kernel (counts per
// state, TIME_WAIT per destination in a map, a record only for a CLOSE_WAIT socket not seen in
// an earlier walk: walk_floor.bpf.c). Both are lower bounds for any design that walks every
// socket, next to which bench/run prints the reference dump.
//
//   walk_floor [--repeat N]
// prints one JSON line: {"sockets":N,"nothing_ms":{...},"counted_ms":{...},...}. counted_ms
// includes reading and emptying the TIME_WAIT map, as a poll would. The first counted walk,
// which writes every CLOSE_WAIT socket, is reported apart (first_counted_ms).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace waitwatch::bpf::detail {
extern const unsigned char kWalkFloorObject[];
extern const std::size_t kWalkFloorObjectSize;
}  // namespace waitwatch::bpf::detail

namespace {

// walk_floor.bpf.c: the counts map's slots and its TIME_WAIT key.
constexpr unsigned kStates = 16;
constexpr unsigned kKnown = kStates;
constexpr unsigned kKnownUnread = kStates + 1;
constexpr unsigned kWritten = kStates + 2;
constexpr unsigned kPairsLost = kStates + 3;
constexpr unsigned kSlots = kStates + 4;
constexpr unsigned kTcpTimeWait = 6;
constexpr unsigned kTcpCloseWait = 8;
constexpr std::size_t kRecordSize = 24;
struct TimeWaitKey {
  unsigned local[4];
  unsigned remote[4];
  unsigned short remotePort;
  unsigned short family;
};

[[noreturn]] void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fputs("walk_floor: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
  std::exit(1);
}

double nowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// One walk read to its end; returns the bytes the program wrote.
std::size_t walk(bpf_link* link, std::vector<char>& buf) {
  const int fd = bpf_iter_create(bpf_link__fd(link));
  if (fd < 0) die("bpf_iter_create: %s", std::strerror(errno));
  std::size_t total = 0;
  for (;;) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      // EAGAIN: a million sockets visited in one read() without a byte written; go on.
      if (errno == EAGAIN || errno == EINTR) continue;
      die("reading the walk: %s", std::strerror(errno));
    }
    total += static_cast<std::size_t>(n);
  }
  close(fd);
  if (total % kRecordSize != 0) die("the walk wrote %zu bytes, not whole records", total);
  return total;
}

struct Counted {
  std::vector<unsigned long long> slots = std::vector<unsigned long long>(kSlots);
  std::size_t timeWaitPairs = 0;
  unsigned long long timeWaitInPairs = 0;
};

void resetCounts(int counts) {
  const unsigned long long zero = 0;
  for (unsigned i = 0; i < kSlots; ++i) {
    if (bpf_map_update_elem(counts, &i, &zero, BPF_ANY) != 0) die("resetting the counts");
  }
}

// What a poll would read after the walk: the counts and every TIME_WAIT destination, taken out
// of the map so that the next walk starts from none.
Counted collect(int counts, int pairs) {
  Counted c;
  for (unsigned i = 0; i < kSlots; ++i) {
    if (bpf_map_lookup_elem(counts, &i, &c.slots[i]) != 0) die("reading the counts");
  }
  constexpr unsigned kBatch = 4096;
  std::vector<TimeWaitKey> keys(kBatch);
  std::vector<unsigned long long> values(kBatch);
  TimeWaitKey batch{};
  bool first = true;
  for (;;) {
    __u32 n = kBatch;
    const int r = bpf_map_lookup_and_delete_batch(pairs, first ? nullptr : &batch, &batch,
                                                  keys.data(), values.data(), &n, nullptr);
    first = false;
    const int err = r < 0 ? errno : 0;
    for (__u32 i = 0; i < n; ++i)
      c.timeWaitInPairs += values[i];
    c.timeWaitPairs += n;
    if (err == ENOENT) break;
    if (err != 0) die("emptying the TIME_WAIT map: %s", std::strerror(err));
  }
  return c;
}

std::string stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char one[160];
  std::snprintf(one, sizeof one, "{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,\"runs\":[",
                v[v.size() / 2], v.front(), v.back());
  std::string out = one;
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(one, sizeof one, "%s%.3f", i == 0 ? "" : ",", v[i]);
    out += one;
  }
  return out + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else {
      die("usage: walk_floor [--repeat N]");
    }
  }
  if (repeat < 1) die("--repeat takes a count of at least 1");
  libbpf_set_print(nullptr);

  using waitwatch::bpf::detail::kWalkFloorObject;
  using waitwatch::bpf::detail::kWalkFloorObjectSize;
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "walk_floor");
  bpf_object* obj = bpf_object__open_mem(kWalkFloorObject, kWalkFloorObjectSize, &opts);
  if (obj == nullptr) die("opening the program: %s", std::strerror(errno));
  if (bpf_object__load(obj) != 0) die("loading the program (root, BTF, Linux >= 5.11 needed)");
  bpf_link* nothing =
      bpf_program__attach_iter(bpf_object__find_program_by_name(obj, "walk_nothing"), nullptr);
  bpf_link* counted =
      bpf_program__attach_iter(bpf_object__find_program_by_name(obj, "walk_counted"), nullptr);
  if (nothing == nullptr || counted == nullptr) die("attaching the iterators");
  const int counts = bpf_object__find_map_fd_by_name(obj, "counts");
  const int pairs = bpf_object__find_map_fd_by_name(obj, "time_wait_pairs");

  std::vector<char> buf(256 * 1024);
  // The first counted walk writes every CLOSE_WAIT socket and leaves each one its storage.
  resetCounts(counts);
  double t0 = nowMs();
  const std::size_t firstBytes = walk(counted, buf);
  collect(counts, pairs);
  const double firstMs = nowMs() - t0;

  std::vector<double> nothingMs, countedMs;
  Counted last;
  std::size_t lastBytes = 0;
  for (int i = 0; i < repeat; ++i) {
    t0 = nowMs();
    if (walk(nothing, buf) != 0) die("the program that does nothing wrote something");
    nothingMs.push_back(nowMs() - t0);

    resetCounts(counts);
    t0 = nowMs();
    lastBytes = walk(counted, buf);
    last = collect(counts, pairs);
    countedMs.push_back(nowMs() - t0);
  }

  unsigned long long sockets = 0;
  for (unsigned s = 0; s < kStates; ++s)
    sockets += last.slots[s];
  // A floor taken on counts the program did not make would be too low.
  if (last.slots[kPairsLost] != 0 || last.timeWaitInPairs != last.slots[kTcpTimeWait]) {
    die("%llu TIME_WAIT sockets counted, %llu of them in the destination map (%llu did not fit)",
        last.slots[kTcpTimeWait], last.timeWaitInPairs, last.slots[kPairsLost]);
  }
  std::printf(
      "{\"sockets\":%llu,\"close_wait\":%llu,\"time_wait\":%llu,\"nothing_ms\":%s,"
      "\"counted_ms\":%s,\"first_counted_ms\":%.3f,\"first_written\":%zu,"
      "\"steady_written\":%zu,\"steady_known_close_wait\":%llu,\"known_with_recv_q\":%llu,"
      "\"time_wait_pairs\":%zu,\"time_wait_in_pairs\":%llu}\n",
      sockets, last.slots[kTcpCloseWait], last.slots[kTcpTimeWait], stats(nothingMs).c_str(),
      stats(countedMs).c_str(), firstMs, firstBytes / kRecordSize, lastBytes / kRecordSize,
      last.slots[kKnown], last.slots[kKnownUnread], last.timeWaitPairs, last.timeWaitInPairs);
  bpf_link__destroy(nothing);
  bpf_link__destroy(counted);
  bpf_object__close(obj);
  return 0;
}
