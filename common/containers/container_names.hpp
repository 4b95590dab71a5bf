// SPDX-License-Identifier: Apache-2.0
#pragma once
// The names of the containers waitwatch recognises, looked up in the runtimes' own files under
// a root (the host's "/", or where a DaemonSet mounts the host) and cached by container id: a
// container is read once, when its id first appears, and an id no file names is retried only
// after a while. Never blocks a poll for long: each lookup is a few small file reads.
#include <cstdint>
#include <string>
#include <unordered_map>

#include "containers/container_metadata.hpp"
#include "core/duration.hpp"
#include "core/process.hpp"

namespace waitwatch {

class ContainerNameCache {
 public:
  // `root`: where the host's filesystem is ("/" on the host).
  explicit ContainerNameCache(std::string root = "/", Duration retry = std::chrono::minutes(1));

  // The names of `container` (empty when it names none, or none could be read). The runtime's
  // file is chosen by container.runtime; a Kubernetes container is looked for as containerd's,
  // CRI-O's and Docker's in turn.
  const ContainerNames& lookup(const ContainerInfo& container, TimePoint now);

  // Forgets the ids not looked up for the retry interval (containers that are gone); one that
  // comes back within it is not read again.
  void sweep(TimePoint now);

  struct Stats {
    std::uint64_t reads = 0;   // ids looked up in the runtimes' files
    std::uint64_t misses = 0;  // of those, none of whose files named it
    bool operator==(const Stats&) const = default;
  };
  [[nodiscard]] Stats stats() const { return stats_; }
  // Why the last miss was one ("config.v2.json: not valid JSON", "no runtime file for it").
  [[nodiscard]] const std::string& lastMiss() const { return lastMiss_; }

 private:
  struct Entry {
    ContainerNames names;
    TimePoint readAt{};
    TimePoint seenAt{};
    bool found = false;
  };
  bool read(const ContainerInfo& container, ContainerNames& out);

  std::string root_;
  Duration retry_;
  std::unordered_map<std::string, Entry> byId_;
  Stats stats_;
  std::string lastMiss_;
};

}  // namespace waitwatch
