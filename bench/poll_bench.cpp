// SPDX-License-Identifier: Apache-2.0
// The daemon's poll pipeline in one process, timed phase by phase, in the namespace it runs in:
//   sampler  - SockDiagSampler::dump counting records (waitwatch's own dump and parser, no work)
//   walk     - the BPF iter/tcp walk counting records (TcpSocketIterator: program and reader)
//   collect  - Collector::collect: dump, aggregation, attribution through /proc
//   evaluate - Engine::evaluate plus the per-process oldest CLOSE_WAIT ages (what the daemon
//              derives for its metrics)
// The first poll (cold attribution cache: every process walked) is reported apart from the
// steady-state ones. For profiling (perf record / callgrind) and for the phase breakdown in
// docs/performance.md; the targets are judged on waitwatchd's own figures.
//
//   poll_bench [--polls N] [--interval-ms MS] [--phase all|sampler|walk|collect]
//              [--sockets netlink|auto]
// (--sockets: how `collect` reads them; auto, the daemon's choice, is the default).
// prints one JSON line.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "attribution/collector.hpp"
#include "netlink/sampler.hpp"
#include "rules/config.hpp"
#include "rules/engine.hpp"

namespace {

using namespace waitwatch;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// CPU time of the process (user + system): robust to other load on the machine, unlike wall
// time, and the same thing for the dump (spent in the kernel, in our recvmsg) and our own work.
double cpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// VmRSS / VmHWM in KiB from /proc/self/status.
long statusKiB(std::string_view key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key)) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

void printRuns(const char* name, const std::vector<double>& runs) {
  std::printf(",\"%s_ms\":{\"median\":%.3f,\"runs\":[", name, median(runs));
  for (std::size_t i = 0; i < runs.size(); ++i)
    std::printf("%s%.3f", i ? "," : "", runs[i]);
  std::printf("]}");
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: poll_bench [--polls N] [--interval-ms MS] "
               "[--phase all|sampler|walk|collect] [--sockets netlink|auto]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int polls = 5;
  long intervalMs = 5000;
  std::string phase = "all";
  SamplerMode sockets = SamplerMode::Auto;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--polls") {
      polls = std::atoi(argv[++i]);
    } else if (a == "--interval-ms") {
      intervalMs = std::atol(argv[++i]);
    } else if (a == "--phase") {
      phase = argv[++i];
    } else if (a == "--sockets") {
      const std::string_view v = argv[++i];
      if (v != "netlink" && v != "auto") usage();
      sockets = v == "auto" ? SamplerMode::Auto : SamplerMode::Netlink;
    } else {
      usage();
    }
  }
  if (polls < 1 || intervalMs < 1) usage();
  const Duration interval{intervalMs};

  std::vector<double> sampler, samplerCpu;
  std::uint64_t socketCount = 0;
  if (phase == "all" || phase == "sampler") {
    auto s = SockDiagSampler::open();
    if (!s) {
      std::fprintf(stderr, "poll_bench: %s\n", s.error().message.c_str());
      return 1;
    }
    for (int i = 0; i < polls; ++i) {
      std::uint64_t n = 0;
      const double c0 = cpuMs();
      const auto t0 = Clock::now();
      auto r = s->dump(
          DumpOptions{}, [&](const SocketRecord&) { ++n; }, [&] { n = 0; });
      sampler.push_back(msSince(t0));
      samplerCpu.push_back(cpuMs() - c0);
      if (!r) {
        std::fprintf(stderr, "poll_bench: %s\n", r.error().message.c_str());
        return 1;
      }
      socketCount = n;
    }
  }

  std::vector<double> walk, walkCpu;
  if (phase == "all" || phase == "walk") {
    auto iterator = bpf::TcpSocketIterator::load();
    if (!iterator) {
      std::fprintf(stderr, "poll_bench: %s\n", iterator.error().message.c_str());
      if (phase == "walk") return 1;
    }
    for (int i = 0; iterator && i < polls; ++i) {
      std::uint64_t n = 0;
      const double c0 = cpuMs();
      const auto t0 = Clock::now();
      auto started = iterator->start();
      auto r = started
                   ? iterator->read(std::move(*started), true, [&](const SocketRecord&) { ++n; })
                   : Result<bpf::TcpWalkStats>(started.error());
      walk.push_back(msSince(t0));
      walkCpu.push_back(cpuMs() - c0);
      if (!r) {
        std::fprintf(stderr, "poll_bench: %s\n", r.error().message.c_str());
        return 1;
      }
      socketCount = n;
    }
  }

  std::vector<double> collect, evaluate, total, collectCpu, evaluateCpu;
  std::vector<std::uint64_t> walks, fdsRead;
  double firstCollect = 0, firstEvaluate = 0;
  ResolverStats resolver;
  std::size_t processes = 0, closeWait = 0;
  // Where the memory goes, from the last poll: the snapshot's per-socket vectors, the
  // attribution cache, and the engine's CLOSE_WAIT table.
  std::size_t closeWaitBytes = 0, addressBytes = 0, ownerLinkBytes = 0, processBytes = 0;
  std::size_t engineTracked = 0, engineBytes = 0;
  if (phase == "all" || phase == "collect") {
    Collector collector(CollectorOptions{.sampler = sockets});
    Engine engine(defaultConfig());
    TimePoint now = Clock::now();
    for (int i = 0; i <= polls; ++i) {  // poll 0 is the cold one
      const double cpu0 = cpuMs();
      const auto t0 = Clock::now();
      auto snapshot = collector.collect(now, interval);
      const double c = msSince(t0);
      const double cpu1 = cpuMs();
      if (!snapshot) {
        std::fprintf(stderr, "poll_bench: %s\n", snapshot.error().message.c_str());
        return 1;
      }
      const auto t1 = Clock::now();
      const auto alerts = engine.evaluate(*snapshot, now);
      const auto ages = engine.oldestCloseWaitByProcess(*snapshot, now);
      const double e = msSince(t1);
      const double cpu2 = cpuMs();
      if (i == 0) {
        firstCollect = c;
        firstEvaluate = e;
      } else {
        collect.push_back(c);
        evaluate.push_back(e);
        total.push_back(c + e);
        collectCpu.push_back(cpu1 - cpu0);
        evaluateCpu.push_back(cpu2 - cpu1);
      }
      socketCount = snapshot->totals().total();
      processes = snapshot->processes.size();
      closeWait = snapshot->closeWait.size();
      closeWaitBytes = snapshot->closeWait.capacity() * sizeof(CloseWaitSocket);
      addressBytes = snapshot->addresses.capacity() * sizeof(IpAddress);
      ownerLinkBytes = snapshot->ownerLinks.capacity() * sizeof(std::uint32_t);
      processBytes = snapshot->processes.capacity() * sizeof(ProcessEntry);
      engineTracked = engine.trackedSockets();
      engineBytes = engine.trackedBytes();
      resolver = collector.stats().resolver;
      walks.push_back(resolver.walks);
      fdsRead.push_back(resolver.fdsRead);
      (void)alerts;
      (void)ages;
      now += interval;  // the engine's clock moves as if polls were `interval` apart
    }
  }

  std::printf("{\"sockets\":%llu,\"processes\":%zu,\"close_wait_records\":%zu",
              static_cast<unsigned long long>(socketCount), processes, closeWait);
  if (!sampler.empty()) {
    printRuns("sampler", sampler);
    printRuns("sampler_cpu", samplerCpu);
  }
  if (!walk.empty()) {
    printRuns("walk", walk);
    printRuns("walk_cpu", walkCpu);
  }
  if (!collect.empty()) {
    std::printf(",\"first_poll_ms\":{\"collect\":%.3f,\"evaluate\":%.3f}", firstCollect,
                firstEvaluate);
    printRuns("collect", collect);
    printRuns("evaluate", evaluate);
    printRuns("poll", total);
    printRuns("collect_cpu", collectCpu);
    printRuns("evaluate_cpu", evaluateCpu);
    std::printf(
        ",\"resolver\":{\"walks\":%llu,\"fds_read\":%llu,\"pending\":%llu,\"unresolved\":%llu,"
        "\"cached_inodes\":%zu,\"cache_bytes\":%zu}",
        static_cast<unsigned long long>(resolver.walks),
        static_cast<unsigned long long>(resolver.fdsRead),
        static_cast<unsigned long long>(resolver.pending),
        static_cast<unsigned long long>(resolver.unresolved), resolver.cachedInodes,
        resolver.cacheBytes);
    std::printf(
        ",\"memory_bytes\":{\"close_wait_records\":%zu,\"close_wait_record_size\":%zu,"
        "\"addresses\":%zu,\"owner_links\":%zu,\"processes\":%zu,\"inode_table\":%zu,"
        "\"engine_tracked_sockets\":%zu,\"engine_cookie_table\":%zu}",
        closeWaitBytes, sizeof(CloseWaitSocket), addressBytes, ownerLinkBytes, processBytes,
        resolver.cacheBytes, engineTracked, engineBytes);
    // Per poll, the cold one first: how much /proc work each did.
    std::printf(",\"walks_per_poll\":[");
    for (std::size_t i = 0; i < walks.size(); ++i)
      std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(walks[i]));
    std::printf("],\"fds_read_per_poll\":[");
    for (std::size_t i = 0; i < fdsRead.size(); ++i)
      std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(fdsRead[i]));
    std::printf("]");
  }
  std::printf(",\"rss_kib\":%ld,\"peak_rss_kib\":%ld}\n", statusKiB("VmRSS:"), statusKiB("VmHWM:"));
  return 0;
}
