// SPDX-License-Identifier: Apache-2.0
#pragma once
// /proc/<pid>/cgroup -> systemd unit and container, recognised from the cgroup path alone.
#include <string>
#include <string_view>

#include "core/process.hpp"
#include "core/result.hpp"

namespace waitwatch {

struct CgroupInfo {
  // The unified-hierarchy path (the "0::" line); the name=systemd path on v1-only hosts.
  std::string path;
  std::string unit;  // see unitFromCgroupPath
  ContainerInfo container;
};

// Parses every line ("hierarchy-id:controllers:path"; paths may themselves hold ':'). The unit
// comes from the unified path, else the name=systemd one; the container from the unified path,
// else from any v1 hierarchy (Docker's cgroupfs driver on v1 hosts). An Error names the first
// malformed line.
Result<CgroupInfo> parseCgroupFile(std::string_view text);

// The innermost systemd unit that can hold processes (.service, .scope, .socket, .mount,
// .swap) on the path, else the innermost .slice, else "". Names are kept escaped as systemd
// spells them ("getty@tty1.service", "dev-disk-by\x2dlabel.swap") and made printable.
std::string unitFromCgroupPath(std::string_view path);

// Docker ("docker-<id>.scope", "/docker/<id>"), Podman ("libpod-<id>.scope", "libpod-<id>"),
// containerd ("cri-containerd-<id>.scope", "nerdctl-<id>.scope", ids under
// "containerd.service"), CRI-O ("crio-<id>.scope", "crio-<id>") and Kubernetes (anything under
// a "kubepods" cgroup: runtime "kubernetes", `pod` the pod uid and `id` the container id, with
// the systemd driver's '_' turned back into '-'). Container ids are 64 hex digits; monitor
// processes (conmon: "libpod-conmon-<id>", "crio-conmon-<id>") are not in the container.
// Empty when the path names no container.
ContainerInfo containerFromCgroupPath(std::string_view path);

}  // namespace waitwatch
