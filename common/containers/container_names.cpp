// SPDX-License-Identifier: Apache-2.0
#include "containers/container_names.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

// A runtime's file about one container is small; Podman's one file lists every container.
constexpr std::size_t kMaxConfig = 4u << 20;
constexpr std::size_t kMaxContainerList = 32u << 20;

// Default locations (containerd defaults/defaults_linux.go DefaultStateDir; containers/storage
// types/options_linux.go runroot and graphroot; moby's data-root).
constexpr std::string_view kContainerdTasks = "run/containerd/io.containerd.runtime.v2.task";
// k3s runs its embedded containerd with the state directory under /run/k3s.
constexpr std::string_view kK3sTasks = "run/k3s/containerd/io.containerd.runtime.v2.task";
constexpr std::string_view kCrioRun = "run/containers/storage/overlay-containers";
constexpr std::string_view kStorage = "var/lib/containers/storage/overlay-containers";
constexpr std::string_view kDocker = "var/lib/docker/containers";

// Ids come from cgroup paths (64 hex digits); anything else never becomes a path.
bool plainId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

ContainerNameCache::ContainerNameCache(std::string root, Duration retry)
    : root_(std::move(root)), retry_(retry) {
  // Without trailing slashes; "" and "/" are both the root.
  const auto last = root_.find_last_not_of('/');
  root_.resize(last == std::string::npos ? 0 : last + 1);
  if (root_.empty()) root_ = "/";
}

const ContainerNames& ContainerNameCache::lookup(const ContainerInfo& c, TimePoint now) {
  static const ContainerNames kNone;
  if (c.empty() || !plainId(c.id)) return kNone;
  auto [it, inserted] = byId_.try_emplace(c.id);
  Entry& e = it->second;
  e.seenAt = now;
  if (inserted || (!e.found && now - e.readAt >= retry_)) {
    e.readAt = now;
    ++stats_.reads;
    e.found = read(c, e.names);
    if (!e.found) ++stats_.misses;
  }
  return e.names;
}

void ContainerNameCache::sweep(TimePoint now) {
  std::erase_if(byId_, [&](const auto& kv) { return now - kv.second.seenAt >= retry_; });
}

bool ContainerNameCache::read(const ContainerInfo& c, ContainerNames& out) {
  const std::string base = root_ == "/" ? std::string("/") : root_ + "/";
  std::string why;
  // Reads `path` and parses it with `parse`; true when it named the container.
  auto tryFile = [&](const std::string& path, std::size_t limit, auto&& parse) {
    auto text = readRegularFile(path, limit);
    if (!text) {
      if (why.empty()) why = path + ": " + text.error().message;
      return false;
    }
    if (text->size() >= limit) {
      why = path + ": larger than " + std::to_string(limit >> 20) + " MiB";
      return false;
    }
    auto names = parse(*text);
    if (!names) {
      why = path + ": " + names.error().message;
      return false;
    }
    if (names->empty()) {
      why = path + ": names nothing";
      return false;
    }
    out = std::move(*names);
    return true;
  };
  auto oci = [&](const std::string& path, OciBundle bundle) {
    return tryFile(path, kMaxConfig,
                   [&](std::string_view text) { return namesFromOciConfig(text, bundle); });
  };
  const bool kubernetes = c.runtime == "kubernetes";
  auto docker = [&] {
    return tryFile(base + std::string(kDocker) + "/" + c.id + "/config.v2.json", kMaxConfig,
                   [&](std::string_view text) { return namesFromDockerConfig(text, kubernetes); });
  };
  auto crio = [&] {
    return oci(base + std::string(kCrioRun) + "/" + c.id + "/userdata/config.json",
               OciBundle::CriO) ||
           oci(base + std::string(kStorage) + "/" + c.id + "/userdata/config.json",
               OciBundle::CriO);
  };
  // containerd's namespace ("k8s.io" for Kubernetes, "default" for nerdctl, "moby" for Docker)
  // is not in the cgroup path: each namespace directory is tried.
  auto containerdIn = [&](std::string_view stateDir) {
    const std::string tasks = base + std::string(stateDir);
    if (oci(tasks + "/k8s.io/" + c.id + "/config.json", OciBundle::Containerd)) return true;
    const int fd = ::open(tasks.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    UniqueFd dir(fd);
    std::vector<char> buffer;
    std::vector<std::string> namespaces;
    forEachDirEntry(dir.get(), buffer, [&](std::string_view name, std::uint64_t, unsigned char) {
      if (name != "k8s.io" && namespaces.size() < 64) namespaces.emplace_back(name);
    });
    for (const std::string& ns : namespaces) {
      if (oci(tasks + "/" + ns + "/" + c.id + "/config.json", OciBundle::Containerd)) return true;
    }
    return false;
  };
  auto containerd = [&] { return containerdIn(kContainerdTasks) || containerdIn(kK3sTasks); };
  auto podman = [&] {
    return tryFile(base + std::string(kStorage) + "/containers.json", kMaxContainerList,
                   [&](std::string_view text) { return namesFromStorageContainers(text, c.id); });
  };

  bool found = false;
  if (c.runtime == "docker") {
    found = docker();
  } else if (c.runtime == "podman") {
    found = podman();
  } else if (c.runtime == "containerd") {
    found = containerd();
  } else if (c.runtime == "cri-o") {
    found = crio();
  } else {  // "kubernetes": whichever runtime runs the pod
    found = containerd() || crio() || docker();
  }
  if (!found) lastMiss_ = why.empty() ? c.shortName() + ": no runtime file names it" : why;
  return found;
}

}  // namespace waitwatch
