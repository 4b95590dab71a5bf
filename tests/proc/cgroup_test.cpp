// SPDX-License-Identifier: Apache-2.0
#include "proc/cgroup.hpp"

#include <gtest/gtest.h>

#include <string>

namespace waitwatch {
namespace {

const std::string kId = "3f4e2b1c9d8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a2b1c0d";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(CgroupUnit, InnermostServiceOrScope) {
  EXPECT_EQ(unitFromCgroupPath("/system.slice/nginx.service"), "nginx.service");
  EXPECT_EQ(unitFromCgroupPath("/system.slice/system-getty.slice/getty@tty1.service"),
            "getty@tty1.service");
  EXPECT_EQ(unitFromCgroupPath("/user.slice/user-1000.slice/session-3.scope"), "session-3.scope");
  EXPECT_EQ(unitFromCgroupPath("/user.slice/user-1000.slice/user@1000.service/app.slice/"
                               "app-org.gnome.Terminal.slice/vte-spawn-1a2b.scope"),
            "vte-spawn-1a2b.scope");
  EXPECT_EQ(unitFromCgroupPath("/user.slice/user-1000.slice/user@1000.service/init.scope"),
            "init.scope");
  EXPECT_EQ(unitFromCgroupPath("/init.scope"), "init.scope");
  // A unit's own sub-cgroups (delegation) still belong to it.
  EXPECT_EQ(unitFromCgroupPath("/system.slice/containerd.service/k8s.io/" + kId),
            "containerd.service");
  EXPECT_EQ(unitFromCgroupPath("/system.slice/docker-" + kId + ".scope/init"),
            "docker-" + kId + ".scope");
  EXPECT_EQ(unitFromCgroupPath("/system.slice/sshd.socket"), "sshd.socket");
  EXPECT_EQ(unitFromCgroupPath("/system.slice/dev-disk-by\\x2dlabel-swap.swap"),
            "dev-disk-by\\x2dlabel-swap.swap");
}

TEST(CgroupUnit, SliceWhenNothingNarrowerAndEmptyForRoot) {
  EXPECT_EQ(unitFromCgroupPath("/user.slice/user-1000.slice"), "user-1000.slice");
  EXPECT_EQ(unitFromCgroupPath("/system.slice"), "system.slice");
  EXPECT_EQ(unitFromCgroupPath("/"), "");
  EXPECT_EQ(unitFromCgroupPath(""), "");
  EXPECT_EQ(unitFromCgroupPath("/docker/" + kId), "");
  EXPECT_EQ(unitFromCgroupPath("/.service"), "");  // a suffix alone is no unit name
  EXPECT_EQ(unitFromCgroupPath("/system.slice/bad\x01name.service"), "bad?name.service");
}

TEST(CgroupContainer, Docker) {
  auto systemd = containerFromCgroupPath("/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(systemd.runtime, "docker");
  EXPECT_EQ(systemd.id, kId);
  EXPECT_EQ(systemd.shortName(), "docker:" + kId.substr(0, 12));
  auto cgroupfs = containerFromCgroupPath("/docker/" + kId);
  EXPECT_EQ(cgroupfs.runtime, "docker");
  EXPECT_EQ(cgroupfs.id, kId);
  // Docker in Docker: the innermost container holds the process.
  auto nested = containerFromCgroupPath("/docker/" + kId + "/docker/" + kId2);
  EXPECT_EQ(nested.id, kId2);
  EXPECT_TRUE(containerFromCgroupPath("/system.slice/docker.service").empty());
  EXPECT_TRUE(containerFromCgroupPath("/system.slice/docker-abc.scope").empty());
}

TEST(CgroupContainer, Podman) {
  auto machine = containerFromCgroupPath("/machine.slice/libpod-" + kId + ".scope/container");
  EXPECT_EQ(machine.runtime, "podman");
  EXPECT_EQ(machine.id, kId);
  auto rootless = containerFromCgroupPath(
      "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope");
  EXPECT_EQ(rootless.runtime, "podman");
  EXPECT_EQ(rootless.id, kId);
  auto cgroupfs = containerFromCgroupPath("/libpod_parent/libpod-" + kId);
  EXPECT_EQ(cgroupfs.runtime, "podman");
  // conmon watches the container from outside it.
  EXPECT_TRUE(containerFromCgroupPath("/machine.slice/libpod-conmon-" + kId + ".scope").empty());
}

TEST(CgroupContainer, Containerd) {
  auto scope = containerFromCgroupPath("/system.slice/cri-containerd-" + kId + ".scope");
  EXPECT_EQ(scope.runtime, "containerd");
  EXPECT_EQ(scope.id, kId);
  auto underService = containerFromCgroupPath("/system.slice/containerd.service/default/" + kId);
  EXPECT_EQ(underService.runtime, "containerd");
  EXPECT_EQ(underService.id, kId);
  auto nerdctl = containerFromCgroupPath("/system.slice/nerdctl-" + kId + ".scope");
  EXPECT_EQ(nerdctl.runtime, "containerd");
  // The containerd daemon itself is no container.
  EXPECT_TRUE(containerFromCgroupPath("/system.slice/containerd.service").empty());
}

TEST(CgroupContainer, CriO) {
  auto scope = containerFromCgroupPath("/machine.slice/crio-" + kId + ".scope");
  EXPECT_EQ(scope.runtime, "cri-o");
  EXPECT_EQ(scope.id, kId);
  EXPECT_TRUE(containerFromCgroupPath("/machine.slice/crio-conmon-" + kId + ".scope").empty());
}

TEST(CgroupContainer, KubernetesSystemdDriver) {
  auto burstable = containerFromCgroupPath(
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod8dbc9e51_a3e4_4bd6_9b6e_bd6b4a6ad6e2.slice/cri-containerd-" +
      kId + ".scope");
  EXPECT_EQ(burstable.runtime, "kubernetes");
  EXPECT_EQ(burstable.pod, "8dbc9e51-a3e4-4bd6-9b6e-bd6b4a6ad6e2");
  EXPECT_EQ(burstable.id, kId);

  auto guaranteed = containerFromCgroupPath(
      "/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8695_a4b3c2d1e0f9.slice/crio-" + kId +
      ".scope");
  EXPECT_EQ(guaranteed.runtime, "kubernetes");
  EXPECT_EQ(guaranteed.pod, "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9");
  EXPECT_EQ(guaranteed.id, kId);

  // containerd's systemd driver below containerd.service: "<pod slice>:cri-containerd:<id>".
  auto colon = containerFromCgroupPath(
      "/system.slice/containerd.service/"
      "kubepods-besteffort-pod11112222_3333_4444_5555_666677778888.slice:cri-containerd:" +
      kId);
  EXPECT_EQ(colon.runtime, "kubernetes");
  EXPECT_EQ(colon.pod, "11112222-3333-4444-5555-666677778888");
  EXPECT_EQ(colon.id, kId);
}

TEST(CgroupContainer, KubernetesCgroupfsDriver) {
  auto c =
      containerFromCgroupPath("/kubepods/burstable/pod8dbc9e51-a3e4-4bd6-9b6e-bd6b4a6ad6e2/" + kId);
  EXPECT_EQ(c.runtime, "kubernetes");
  EXPECT_EQ(c.pod, "8dbc9e51-a3e4-4bd6-9b6e-bd6b4a6ad6e2");
  EXPECT_EQ(c.id, kId);
  auto guaranteed =
      containerFromCgroupPath("/kubepods/pod8dbc9e51-a3e4-4bd6-9b6e-bd6b4a6ad6e2/crio-" + kId);
  EXPECT_EQ(guaranteed.pod, "8dbc9e51-a3e4-4bd6-9b6e-bd6b4a6ad6e2");
  EXPECT_EQ(guaranteed.id, kId);
  EXPECT_TRUE(containerFromCgroupPath("/kubepods/burstable").empty());
}

TEST(CgroupContainer, NothingOnPlainHostPaths) {
  EXPECT_TRUE(containerFromCgroupPath("/").empty());
  EXPECT_TRUE(containerFromCgroupPath("/system.slice/nginx.service").empty());
  EXPECT_TRUE(containerFromCgroupPath("/user.slice/user-1000.slice/session-2.scope").empty());
  EXPECT_TRUE(containerFromCgroupPath("/" + kId).empty());  // a bare id without context
  EXPECT_TRUE(containerFromCgroupPath("/docker/" + kId.substr(1)).empty());  // 63 digits
  EXPECT_TRUE(containerFromCgroupPath("/docker/" + std::string(64, 'G')).empty());
}

TEST(CgroupFile, UnifiedHierarchy) {
  auto info = parseCgroupFile("0::/system.slice/docker-" + kId + ".scope\n");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->path, "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(info->unit, "docker-" + kId + ".scope");
  EXPECT_EQ(info->container.runtime, "docker");
}

TEST(CgroupFile, HybridHostTakesUnitFromNameSystemd) {
  // systemd's hybrid mode: processes sit at the unified root, units show in name=systemd.
  auto info = parseCgroupFile(
      "12:memory:/system.slice/nginx.service\n"
      "1:name=systemd:/system.slice/nginx.service\n"
      "0::/\n");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->path, "/");
  EXPECT_EQ(info->unit, "nginx.service");
  EXPECT_TRUE(info->container.empty());
}

TEST(CgroupFile, V1OnlyDockerFromControllerLines) {
  auto info = parseCgroupFile("11:cpu,cpuacct:/docker/" + kId + "\n4:pids:/docker/" + kId +
                              "\n1:name=systemd:/docker/" + kId + "\n");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->path, "/docker/" + kId);  // no unified line: the name=systemd path
  EXPECT_EQ(info->container.runtime, "docker");
  EXPECT_EQ(info->container.id, kId);
  EXPECT_EQ(info->unit, "");
}

TEST(CgroupFile, DeletedCgroupAndColonsInPaths) {
  auto info = parseCgroupFile("0::/system.slice/old.service (deleted)\n");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->unit, "old.service");
  auto colon = parseCgroupFile("0::/a:b/c.scope\n");
  ASSERT_TRUE(colon);
  EXPECT_EQ(colon->path, "/a:b/c.scope");
}

TEST(CgroupFile, RejectsMalformedLinesNamingThem) {
  auto noColon = parseCgroupFile("0::/ok\ngarbage\n");
  ASSERT_FALSE(noColon);
  EXPECT_NE(noColon.error().message.find("line 2"), std::string::npos);
  auto badId = parseCgroupFile("x::/\n");
  ASSERT_FALSE(badId);
  EXPECT_NE(badId.error().message.find("hierarchy id"), std::string::npos);
  auto relative = parseCgroupFile("0::system.slice\n");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find("'/'"), std::string::npos);
  EXPECT_FALSE(parseCgroupFile(""));
  EXPECT_FALSE(parseCgroupFile("\n\n"));
}

}  // namespace
}  // namespace waitwatch
