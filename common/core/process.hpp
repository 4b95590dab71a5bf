// SPDX-License-Identifier: Apache-2.0
#pragma once
// Who holds a socket: a process, its systemd unit and its container.
#include <cstdint>
#include <string>

#include "core/duration.hpp"

namespace waitwatch {

// A pid alone is ambiguous once pids are reused; pid plus start time (clock ticks since boot,
// field 22 of /proc/<pid>/stat) names one process for its whole life.
struct ProcessKey {
  std::int32_t pid = 0;
  std::uint64_t startTime = 0;
  bool operator==(const ProcessKey&) const = default;
  auto operator<=>(const ProcessKey&) const = default;
};

struct ContainerInfo {
  std::string runtime;  // "docker", "podman", "containerd", "cri-o", "kubernetes"; empty if none
  std::string id;       // full container id
  std::string pod;      // Kubernetes pod uid, where the cgroup path or the runtime names one
  // From the runtime's own files (containers/container_names.hpp); empty where not found: the
  // container's name (in Kubernetes, its name in the pod), the pod's name and namespace, and
  // Docker Compose's project and service where Compose started it.
  std::string name{};
  std::string podName{};
  std::string podNamespace{};
  std::string composeProject{};
  std::string composeService{};
  [[nodiscard]] bool empty() const { return runtime.empty(); }
  // "docker:0123456789ab" (12-char id, as `docker ps` shows); "" when not in a container. Stable
  // for the container's life: what groups and keys use.
  [[nodiscard]] std::string shortName() const;
  // What an operator knows it by: "k8s:payments/checkout-7d9f-x2k4/api" for a Kubernetes
  // container, "docker:shop-web-1" for a named one, else shortName().
  [[nodiscard]] std::string displayName() const;
  // The metrics' `container` label: the name (in Kubernetes the container's name in its pod, as
  // kube-state-metrics and cAdvisor label it), shortName() only when no name was found.
  [[nodiscard]] std::string labelName() const;
  bool operator==(const ContainerInfo&) const = default;
};

struct ProcessInfo {
  ProcessKey key;
  std::string comm;     // /proc/<pid>/comm
  std::string cmdline;  // shortened, arguments joined by spaces
  std::string exe;      // /proc/<pid>/exe target, empty if unreadable
  std::uint32_t uid = 0;
  std::string user;    // name from the password database, or the uid as text
  std::string unit;    // systemd unit (service, scope or slice), empty if none
  std::string cgroup;  // the unified-hierarchy cgroup path
  ContainerInfo container;
  bool operator==(const ProcessInfo&) const = default;
};

// How fast a process's open file descriptors grow and when they reach its limit, from a robust
// slope over the forecast window (rules/fd_forecast.hpp).
struct FdForecast {
  double perMinute = 0.0;  // growth of open fds; 0 only at the limit, where it cannot grow
  Duration exhaustion{0};  // until openFds reaches maxFds at that rate; 0 when already there
  bool operator==(const FdForecast&) const = default;
};

}  // namespace waitwatch
