// SPDX-License-Identifier: Apache-2.0
#pragma once
// A Kubernetes pod's container as a node shows it, without Kubernetes: a real cgroup at the path
// the kubelet's systemd driver gives a container
// (kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/
// cri-containerd-<id>.scope, or crio-<id>.scope, in the unified hierarchy), and the runtime's
// config.json with the annotations it writes under a fixture root: containerd's task bundle
// (CRI plugin), or CRI-O's userdata. Processes moved into the cgroup show as
// that pod's container to anything reading /proc/<pid>/cgroup and the runtime's files under the
// root. Root only; everything is removed again.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace waitwatch::testing {

struct KubePodSpec {
  std::string podNamespace = "payments";
  std::string podName = "checkout-7d9f-x2k4";
  std::string container = "api";
  bool crio = false;  // CRI-O's, not containerd's
  char tag = 'c';     // a hex digit that sets two pods of one test apart
  // Another pod's root(), to share one fixture root; empty: a new one, removed with the pod.
  std::filesystem::path root{};
};

class KubePod {
 public:
  // nullopt (with `why`) when this host has no writable cgroup v2 hierarchy.
  static std::optional<KubePod> create(const KubePodSpec& spec, std::string& why) {
    std::string unified;
    for (const char* dir : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
      if (::access((std::string(dir) + "/cgroup.subtree_control").c_str(), W_OK) == 0) {
        unified = dir;
        break;
      }
    }
    if (unified.empty()) {
      why = "no writable cgroup v2 hierarchy";
      return std::nullopt;
    }
    KubePod pod;
    pod.spec_ = spec;
    // Unique per test process: tests may run side by side.
    char pid[16];
    std::snprintf(pid, sizeof pid, "%08x", static_cast<unsigned>(::getpid()));
    pod.uid_ = std::string("d6b1c0de-") + std::string(pid).substr(0, 4) + "-4000-8000-" +
               std::string(pid) + "abc" + spec.tag;
    pod.id_ = std::string(pid) + std::string(56, spec.tag);
    std::string underscored = pod.uid_;
    for (char& c : underscored)
      if (c == '-') c = '_';
    pod.slices_ = std::filesystem::path(unified) / "kubepods.slice" / "kubepods-burstable.slice" /
                  ("kubepods-burstable-pod" + underscored + ".slice");
    pod.scope_ = pod.slices_ / ((spec.crio ? "crio-" : "cri-containerd-") + pod.id_ + ".scope");
    std::error_code ec;
    std::filesystem::create_directories(pod.scope_, ec);
    if (ec) {
      why = pod.scope_.string() + ": " + ec.message();
      return std::nullopt;
    }
    if (spec.root.empty()) {
      char root[] = "/tmp/waitwatch-kube-root-XXXXXX";
      if (::mkdtemp(root) == nullptr) {
        why = "mkdtemp";
        return std::nullopt;
      }
      pod.root_ = root;
      pod.ownsRoot_ = true;
    } else {
      pod.root_ = spec.root;
    }
    if (spec.crio) {
      // CRI-O's container_create.go saves the spec with the kubelet's labels as annotations.
      const std::filesystem::path userdata =
          pod.root_ / "run/containers/storage/overlay-containers" / pod.id_ / "userdata";
      std::filesystem::create_directories(userdata, ec);
      std::ofstream(userdata / "config.json")
          << R"({"ociVersion":"1.0.2-dev","annotations":{)"
          << R"("io.kubernetes.cri-o.ContainerType":"container",)"
          << R"("io.kubernetes.container.name":")" << spec.container << R"(",)"
          << R"("io.kubernetes.pod.name":")" << spec.podName << R"(",)"
          << R"("io.kubernetes.pod.namespace":")" << spec.podNamespace << R"(",)"
          << R"("io.kubernetes.pod.uid":")" << pod.uid_ << R"("}})";
    } else {
      const std::filesystem::path bundle =
          pod.root_ / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / pod.id_;
      std::filesystem::create_directories(bundle, ec);
      // containerd's CRI plugin (internal/cri/annotations/annotations.go) writes these.
      std::ofstream(bundle / "config.json")
          << R"({"ociVersion":"1.1.0","process":{"args":["/app"]},"annotations":{)"
          << R"("io.kubernetes.cri.container-type":"container",)"
          << R"("io.kubernetes.cri.container-name":")" << spec.container << R"(",)"
          << R"("io.kubernetes.cri.sandbox-name":")" << spec.podName << R"(",)"
          << R"("io.kubernetes.cri.sandbox-namespace":")" << spec.podNamespace << R"(",)"
          << R"("io.kubernetes.cri.sandbox-uid":")" << pod.uid_ << R"("}})";
    }
    pod.owned_ = true;
    return pod;
  }

  KubePod(KubePod&& o) noexcept
      : spec_(std::move(o.spec_)),
        uid_(std::move(o.uid_)),
        id_(std::move(o.id_)),
        slices_(std::move(o.slices_)),
        scope_(std::move(o.scope_)),
        root_(std::move(o.root_)),
        ownsRoot_(o.ownsRoot_),
        owned_(std::exchange(o.owned_, false)) {}
  KubePod& operator=(KubePod&&) = delete;
  KubePod(const KubePod&) = delete;
  ~KubePod() {
    if (!owned_) return;
    // The processes moved in must be gone (or moved out) for the cgroup to go.
    std::error_code ec;
    for (int i = 0; i < 50 && std::filesystem::exists(scope_, ec); ++i) {
      std::filesystem::remove(scope_, ec);
      if (ec) ::usleep(20'000);
    }
    // The parents only when no other test's pod is in them (rmdir fails on a busy cgroup).
    std::filesystem::remove(slices_, ec);
    std::filesystem::remove(slices_.parent_path(), ec);
    std::filesystem::remove(slices_.parent_path().parent_path(), ec);
    if (ownsRoot_) std::filesystem::remove_all(root_, ec);
  }

  // Moves process `pid` into the container's cgroup.
  [[nodiscard]] bool add(pid_t pid) const {
    std::ofstream procs(scope_ / "cgroup.procs");
    procs << pid << std::flush;
    return static_cast<bool>(procs);
  }

  [[nodiscard]] const KubePodSpec& spec() const { return spec_; }
  [[nodiscard]] const std::string& uid() const { return uid_; }
  [[nodiscard]] const std::string& containerId() const { return id_; }
  // Where the runtime's files are: the collector's containerRoot.
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  KubePod() = default;
  KubePodSpec spec_;
  std::string uid_;
  std::string id_;
  std::filesystem::path slices_;
  std::filesystem::path scope_;
  std::filesystem::path root_;
  bool ownsRoot_ = false;
  bool owned_ = false;
};

}  // namespace waitwatch::testing
