// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the container runtimes write about a container, read from their own files: the name an
// operator knows it by, and for Kubernetes the pod. Pure: the files' text in, names out. Every
// text is outside input (another program's file): sizes are capped by the caller, parse errors
// name what is wrong, and every name kept is made printable.
//
// Where each runtime keeps what (checked in the runtimes' source):
//  - containerd, the OCI bundle of each task:
//    <state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json (containerd
//    core/runtime/v2/bundle.go, NewBundle). Kubernetes pods (CRI plugin, namespace "k8s.io")
//    carry annotations io.kubernetes.cri.container-name (containerd >= 1.4),
//    io.kubernetes.cri.sandbox-name and -namespace (>= 1.5), -uid (>= 1.6.11)
//    (internal/cri/annotations/annotations.go); nerdctl writes nerdctl/name
//    (nerdctl pkg/labels/labels.go).
//  - CRI-O, <runroot>/overlay-containers/<id>/userdata/config.json (cri-o
//    server/container_create.go, SaveToFile of the spec), whose annotations are the pod's own
//    annotations and then the kubelet's labels io.kubernetes.pod.name, .namespace, .uid and
//    io.kubernetes.container.name, which overwrite any a pod set
//    (internal/factory/container/container.go, SpecAddAnnotations). A pod's author chooses its
//    annotations: in a CRI-O bundle only the kubelet's keys are believed.
//  - Docker, <data-root>/containers/<id>/config.v2.json (moby daemon/container/container.go,
//    toDisk): "Name" ("/web-1") and "Config"."Labels", where Compose puts
//    com.docker.compose.project and .service and cri-dockerd the io.kubernetes.* labels. An
//    image's labels are copied there too: the io.kubernetes.* labels are believed only for a
//    container the cgroup path already places in a Kubernetes pod.
//  - Podman, <graphroot>/overlay-containers/containers.json (containers/storage containers.go):
//    an array of {"id", "names": [...]}; Podman's OCI config.json holds no name.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch {

struct ContainerNames {
  std::string name{};  // the runtime's name for it; a Kubernetes container's name in its pod
  std::string podName{};
  std::string podNamespace{};
  std::string podUid{};
  std::string composeProject{};
  std::string composeService{};
  [[nodiscard]] bool empty() const {
    return name.empty() && podName.empty() && podNamespace.empty() && podUid.empty() &&
           composeProject.empty() && composeService.empty();
  }
  bool operator==(const ContainerNames&) const = default;
};

// Whose bundle a config.json is: which of its annotations its runtime writes itself.
enum class OciBundle : std::uint8_t {
  Containerd,  // io.kubernetes.cri.* (written after any passed through), nerdctl/name
  CriO,        // the kubelet's io.kubernetes.pod.* and io.kubernetes.container.name
};

// An OCI runtime spec (config.json): names from the "annotations" its runtime writes.
Result<ContainerNames> namesFromOciConfig(std::string_view json, OciBundle bundle);

// Docker's config.v2.json: "Name" without its leading '/', the Compose labels, and with
// `kubernetes` (the cgroup path is a pod's) the kubelet's labels of "Config"."Labels".
Result<ContainerNames> namesFromDockerConfig(std::string_view json, bool kubernetes);

// containers/storage's containers.json (Podman): the first of "names" of the entry whose "id"
// is `id`; empty names when the id is not listed.
Result<ContainerNames> namesFromStorageContainers(std::string_view json, std::string_view id);

}  // namespace waitwatch
