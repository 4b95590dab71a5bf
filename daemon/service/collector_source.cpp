// SPDX-License-Identifier: Apache-2.0
#include "service/collector_source.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "attribution/collector.hpp"
#include "bpf/disabled.hpp"
#include "bpf/socket_fds.hpp"
#include "bpf/tcp_sockets.hpp"

namespace waitwatch {
namespace {

class CollectorSource final : public SnapshotSource {
 public:
  CollectorSource(const CollectorOptions& options, std::string pinNote)
      : collector_(options), pinNote_(std::move(pinNote)) {
    samplerNote_ =
        collector_.walksSockets()
            ? "sockets: read by the kernel's own walk (BPF iter/tcp program), a netlink dump "
              "where the daemon cannot enter a namespace"
            : "sockets: read by netlink (inet_diag) dumps (" +
                  (collector_.samplerFallbackReason().empty()
                       ? std::string("WAITWATCH_NO_BPF is set")
                       : collector_.samplerFallbackReason()) +
                  ")";
    if (options.verifySampler && collector_.walksSockets()) {
      samplerNote_ +=
          "; --verify-sampler: every namespace is also dumped twice around the walk "
          "and compared";
    } else if (options.verifySampler) {
      samplerNote_ += "; --verify-sampler has nothing to compare";
    }
    // Said once per source: the daemon logs each distinct line once.
    switch (collector_.closerSource()) {
      case CloserSource::KernelProbe:
        closerNote_ =
            "TIME_WAIT closers: every active close is recorded in the kernel (BPF program on "
            "sock:inet_sock_set_state)";
        break;
      case CloserSource::Ownership:
        closerNote_ =
            "TIME_WAIT closers: from socket ownership at each poll, so connections shorter than "
            "a poll count as closer unknown (" +
            (collector_.closerFallbackReason().empty() ? std::string("WAITWATCH_NO_BPF is set")
                                                       : collector_.closerFallbackReason()) +
            ")";
        break;
      case CloserSource::None:
        break;
    }
  }

  Result<Snapshot> collect(TimePoint now, Duration pollInterval) override {
    return collector_.collect(now, pollInterval);
  }

  Problems takeProblems() override {
    Problems p;
    for (const auto& e : collector_.stats().namespaceErrors)
      p.namespaceErrors.push_back(e.message);
    for (const auto& k : collector_.stats().kernelInfoProblems)
      p.warnings.push_back(k);
    if (auto w = collector_.takeWarning()) p.warnings.push_back(std::move(*w));
    // The first miss only: its reason names one container's file, and a host where every lookup
    // misses would log one line per container. The metric counts them all.
    if (const std::string& miss = collector_.stats().containerNameMiss;
        !missNoted_ && !miss.empty()) {
      missNoted_ = true;
      p.notes.push_back("container names: " + miss +
                        "; such containers show by id (waitwatch_container_name_misses_total "
                        "counts them)");
    }
    if (!closerNote_.empty()) p.notes.push_back(closerNote_);
    p.notes.push_back(samplerNote_);
    if (!pinNote_.empty()) p.notes.push_back(pinNote_);
    const CollectStats& stats = collector_.stats();
    if (!stats.walkProblem.empty()) {
      p.notes.push_back("sockets: a netlink dump for " + stats.walkProblem);
    }
    if (stats.sharingHostTcpHash >= nextHashNote_) {
      // Again each time the number doubles: a daemon started at boot meets the pods later, and
      // the metric follows every namespace that comes and goes.
      while (nextHashNote_ <= stats.sharingHostTcpHash)
        nextHashNote_ *= 2;
      p.notes.push_back(
          sharedTcpHashNote(stats.sharingHostTcpHash, stats.namespaces, stats.hostTcpHashBuckets));
    }
    if (!stats.samplerCheckProblem.empty()) {
      p.warnings.push_back("sampler check: not compared in " + stats.samplerCheckProblem);
    }
    if (stats.samplerCheck.faults() > 0) {
      std::string line = "sampler check: " + std::to_string(stats.samplerCheck.faults()) + " of " +
                         std::to_string(stats.samplerCheck.compared) +
                         " sockets read differently by the walk and the dumps";
      for (const std::string& e : stats.samplerCheck.examples)
        line += "; " + e;
      p.warnings.push_back(std::move(line));
    }
    return p;
  }

 private:
  Collector collector_;
  std::string closerNote_;
  std::string samplerNote_;
  std::string pinNote_;
  bool missNoted_ = false;
  std::uint32_t nextHashNote_ = 1;
};

// The BPF programs, loaded once (before privileges are dropped) and shared by every source.
struct SharedPrograms {
  bool tried = false;
  std::shared_ptr<bpf::CloseRecorder> recorder;
  std::string error;
  std::shared_ptr<bpf::TcpSocketIterator> iterator;
  std::string iteratorError;
  // Loaded only to be pinned: the command line's owner scan.
  std::optional<bpf::SocketFdScanner> scanner;
  std::string pinNote;
};

// The programs the command line would load, left pinned while the daemon runs so that a
// `waitwatch` run loads none (unpinned when the daemon stops). Returns the line to log.
std::string pinForTheCommandLine(SharedPrograms& shared) {
  std::string pinned;
  std::string problem;
  if (auto p = shared.iterator->pin()) {
    pinned = *p;
  } else {
    problem = p.error().message;
  }
  if (problem.empty()) {
    if (auto s = bpf::SocketFdScanner::load()) {
      if (auto p = s->pin()) {
        pinned += ", " + *p;
        shared.scanner.emplace(std::move(*s));
      } else {
        problem = p.error().message;
      }
    } else {
      problem = s.error().message;
    }
  }
  if (problem.empty()) {
    return "BPF programs: pinned for the waitwatch command while the daemon runs (" + pinned + ")";
  }
  std::string line = "BPF programs: ";
  line += pinned.empty() ? "not pinned" : "only " + pinned + " pinned";
  return line + " for the waitwatch command, which loads its own (" + problem + ")";
}

}  // namespace

SnapshotSourceFactory collectorSourceFactory(bool verifySampler) {
  auto shared = std::make_shared<SharedPrograms>();
  return [shared, verifySampler](const Config& config) -> Result<std::unique_ptr<SnapshotSource>> {
    CollectorOptions options;
    options.namespaces = config.namespaces;
    // The daemon shows no command line, executable or cgroup path (metrics, API and alerts name
    // comm, user, unit and container): not reading them saves memory per process.
    options.processDetails = false;
    options.tcpMemory = true;
    options.containerNames = config.containers.names;
    options.containerRoot = config.containers.root;
    options.verifySampler = verifySampler;
    if (bpf::disabledByEnvironment()) {
      options.closers = CloserTracking::Ownership;
    } else {
      if (!shared->tried) {
        shared->tried = true;
        if (auto loaded = loadCloseRecorder()) {
          shared->recorder = std::move(*loaded);
        } else {
          shared->error = loaded.error().message;
        }
        if (auto loaded = loadTcpIterator()) {
          shared->iterator = std::move(*loaded);
          shared->pinNote = pinForTheCommandLine(*shared);
        } else {
          shared->iteratorError = loaded.error().message;
        }
      }
      options.sampler = SamplerMode::Auto;
      options.tcpIterator = shared->iterator;
      options.tcpIteratorError = shared->iteratorError;
      options.closers = CloserTracking::Auto;
      options.closeRecorder = shared->recorder;
      options.closeRecorderError = shared->error;
    }
    return std::unique_ptr<SnapshotSource>(
        std::make_unique<CollectorSource>(options, shared->pinNote));
  };
}

std::string sharedTcpHashNote(std::uint32_t sharing, std::uint32_t polled, std::uint32_t buckets) {
  const std::string who = polled <= 1 ? std::string("the one namespace polled")
                                      : std::to_string(sharing) + " of the " +
                                            std::to_string(polled) + " namespaces polled";
  return "sockets: " + who + (sharing == 1 ? " shares" : " share") +
         " the host's TCP established-hash table (" + std::to_string(buckets) +
         " buckets) instead of having one of " + (sharing == 1 ? "its" : "their") +
         " own: each poll reads that whole table once for " +
         (sharing == 1 ? "it" : "each of them") +
         ", passing over the sockets of every other namespace in it. "
         "net.ipv4.tcp_child_ehash_entries (Linux >= 6.1) gives namespaces made after it is set "
         "tables of their own (waitwatch_kernel_tcp_hash_shared shows which share)";
}

}  // namespace waitwatch
