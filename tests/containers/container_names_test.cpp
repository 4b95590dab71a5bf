// SPDX-License-Identifier: Apache-2.0
// The name cache on fixture trees laid out as each runtime lays out the host: the right file per
// runtime, each id read once, misses retried later and said why, ids that are gone forgotten.
#include "containers/container_names.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace waitwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kId(64, 'a');
const std::string kOtherId(64, 'b');

class ContainerNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/waitwatch-containers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& path, const std::string& text) {
    const fs::path p = root_ / path;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  static std::string annotations(const std::string& body) {
    return R"({"ociVersion":"1.1.0","annotations":{)" + body + "}}";
  }
  fs::path root_;
};

TEST_F(ContainerNamesTest, EachRuntimeFromItsOwnFile) {
  write("run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId + "/config.json",
        annotations(R"("io.kubernetes.cri.container-name":"api",)"
                    R"("io.kubernetes.cri.sandbox-name":"checkout-7d9f",)"
                    R"("io.kubernetes.cri.sandbox-namespace":"payments")"));
  write("run/containerd/io.containerd.runtime.v2.task/default/" + kOtherId + "/config.json",
        annotations(R"("nerdctl/name":"redis-1")"));
  write("var/lib/docker/containers/" + kId + "/config.v2.json",
        R"({"Name":"/shop-web-1","Config":{"Labels":{"com.docker.compose.service":"web"}}})");
  write("run/containers/storage/overlay-containers/" + kOtherId + "/userdata/config.json",
        annotations(R"("io.kubernetes.container.name":"web","io.kubernetes.pod.name":"shop-0")"));
  write("var/lib/containers/storage/overlay-containers/containers.json",
        R"([{"id":")" + kId + R"(","names":["pg-1"]}])");
  ContainerNameCache cache(root_.string() + "/");
  const TimePoint t{};
  // Kubernetes (found as containerd's, in the k8s.io namespace).
  EXPECT_EQ(cache.lookup(ContainerInfo{"kubernetes", kId, "uid"}, t).podName, "checkout-7d9f");
  // containerd in another namespace (nerdctl's "default").
  EXPECT_EQ(cache.lookup(ContainerInfo{"containerd", kOtherId, ""}, t).name, "redis-1");
  EXPECT_EQ(cache.stats(), (ContainerNameCache::Stats{2, 0}));
  ContainerNameCache docker(root_.string());
  const ContainerNames& d = docker.lookup(ContainerInfo{"docker", kId, ""}, t);
  EXPECT_EQ(d.name, "shop-web-1");
  EXPECT_EQ(d.composeService, "web");
  ContainerNameCache crio(root_.string());
  EXPECT_EQ(crio.lookup(ContainerInfo{"cri-o", kOtherId, ""}, t).podName, "shop-0");
  ContainerNameCache podman(root_.string());
  EXPECT_EQ(podman.lookup(ContainerInfo{"podman", kId, ""}, t).name, "pg-1");
}

// k3s's embedded containerd keeps its tasks under /run/k3s.
TEST_F(ContainerNamesTest, K3sContainerdStateDirectory) {
  write("run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId + "/config.json",
        annotations(R"("io.kubernetes.cri.container-name":"traefik",)"
                    R"("io.kubernetes.cri.sandbox-name":"traefik-7d9f",)"
                    R"("io.kubernetes.cri.sandbox-namespace":"kube-system")"));
  ContainerNameCache cache(root_.string());
  const ContainerNames& n = cache.lookup(ContainerInfo{"kubernetes", kId, "uid"}, TimePoint{});
  EXPECT_EQ(n.name, "traefik");
  EXPECT_EQ(n.podNamespace, "kube-system");
  EXPECT_EQ(cache.stats(), (ContainerNameCache::Stats{1, 0}));
}

TEST_F(ContainerNamesTest, ReadOncePerIdMissesRetriedLaterAndGoneIdsForgotten) {
  ContainerNameCache cache(root_.string(), 60s);
  const ContainerInfo c{"docker", kId, ""};
  const TimePoint t0{};
  EXPECT_TRUE(cache.lookup(c, t0).empty());
  EXPECT_EQ(cache.stats(), (ContainerNameCache::Stats{1, 1}));
  EXPECT_NE(cache.lastMiss().find("config.v2.json"), std::string::npos) << cache.lastMiss();
  // Not read again at every poll.
  EXPECT_TRUE(cache.lookup(c, t0 + 30s).empty());
  EXPECT_EQ(cache.stats().reads, 1u);
  // The container's file appears (it was being created): read again after the retry interval.
  write("var/lib/docker/containers/" + kId + "/config.v2.json", R"({"Name":"/late"})");
  EXPECT_EQ(cache.lookup(c, t0 + 61s).name, "late");
  EXPECT_EQ(cache.stats(), (ContainerNameCache::Stats{2, 1}));
  // Found names are kept: the file is not read again.
  write("var/lib/docker/containers/" + kId + "/config.v2.json", R"({"Name":"/renamed"})");
  EXPECT_EQ(cache.lookup(c, t0 + 200s).name, "late");
  EXPECT_EQ(cache.stats().reads, 2u);
  // Not looked up for a while (the container went away): a sweep forgets it, and the next
  // lookup reads the file again; a sweep within the interval keeps it.
  cache.sweep(t0 + 230s);
  EXPECT_EQ(cache.lookup(c, t0 + 231s).name, "late");
  cache.sweep(t0 + 300s);
  EXPECT_EQ(cache.lookup(c, t0 + 301s).name, "renamed");
  EXPECT_EQ(cache.stats().reads, 3u);
}

TEST_F(ContainerNamesTest, BadFilesAndOddIdsAreMissesNeverPaths) {
  write("var/lib/docker/containers/" + kId + "/config.v2.json", "{\"Name\":");
  ContainerNameCache cache(root_.string());
  EXPECT_TRUE(cache.lookup(ContainerInfo{"docker", kId, ""}, TimePoint{}).empty());
  EXPECT_NE(cache.lastMiss().find("not valid JSON"), std::string::npos) << cache.lastMiss();
  // An id that is not hex never becomes a path.
  EXPECT_TRUE(cache.lookup(ContainerInfo{"docker", "../../etc", ""}, TimePoint{}).empty());
  EXPECT_EQ(cache.stats().reads, 1u);
  // A file over the size cap is refused, not read whole.
  write("run/containers/storage/overlay-containers/" + kOtherId + "/userdata/config.json",
        annotations(R"("io.kubernetes.pod.name":")" + std::string(5u << 20, 'x') + "\""));
  EXPECT_TRUE(cache.lookup(ContainerInfo{"cri-o", kOtherId, ""}, TimePoint{}).empty());
  EXPECT_NE(cache.lastMiss().find("larger than 4 MiB"), std::string::npos) << cache.lastMiss();
}

}  // namespace
}  // namespace waitwatch
