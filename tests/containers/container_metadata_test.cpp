// SPDX-License-Identifier: Apache-2.0
// The runtimes' files, as each runtime writes them (the fuzz corpus's seeds), read for names.
#include "containers/container_metadata.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace waitwatch {
namespace {

std::string sample(const std::string& name) {
  std::ifstream in(std::string(WAITWATCH_CONTAINER_CORPUS) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ContainerMetadata, ContainerdKubernetesPod) {
  const auto n = namesFromOciConfig(sample("containerd-cri.json"), OciBundle::Containerd);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, (ContainerNames{.name = "api",
                                .podName = "checkout-7d9f-x2k4",
                                .podNamespace = "payments",
                                .podUid = "d6b1c0de-0000-4000-8000-00000000abcd"}));
}

TEST(ContainerMetadata, CriOKubernetesPod) {
  const ContainerNames expected{.name = "web",
                                .podName = "shop-0",
                                .podNamespace = "default",
                                .podUid = "0f1e2d3c-aaaa-4bbb-8ccc-123456789abc"};
  const auto n = namesFromOciConfig(sample("crio.json"), OciBundle::CriO);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, expected);
  // CRI-O copies a pod's own annotations into the bundle: containerd's keys there are the pod
  // author's, not the runtime's, and never name it.
  const auto spoofed = namesFromOciConfig(sample("crio-spoofed.json"), OciBundle::CriO);
  ASSERT_TRUE(spoofed.ok()) << spoofed.error().message;
  EXPECT_EQ(*spoofed, expected);
}

TEST(ContainerMetadata, Nerdctl) {
  const auto n = namesFromOciConfig(sample("nerdctl.json"), OciBundle::Containerd);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, (ContainerNames{.name = "redis-1"}));
  // A bundle without annotations (Docker's own containerd bundle) names nothing.
  const auto none =
      namesFromOciConfig(R"({"ociVersion":"1.1.0","process":{}})", OciBundle::Containerd);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ContainerMetadata, DockerNameAndComposeLabels) {
  const auto n = namesFromDockerConfig(sample("docker-config-v2.json"), false);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, (ContainerNames{
                    .name = "shop-web-1", .composeProject = "shop", .composeService = "web"}));
  // An image's labels are the container's labels too: a plain Docker container is named by
  // Docker, whatever Kubernetes or nerdctl labels its image carries.
  const auto image = namesFromDockerConfig(sample("docker-image-labels.json"), false);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_EQ(*image, (ContainerNames{.name = "pg"}));
  // cri-dockerd (the cgroup path is a pod's): the Kubernetes names, not Docker's composite
  // "k8s_..." name.
  const auto k = namesFromDockerConfig(sample("docker-cri-dockerd.json"), true);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(*k, (ContainerNames{.name = "api",
                                .podName = "checkout-7d9f",
                                .podNamespace = "payments",
                                .podUid = "d6b1c0de"}));
}

TEST(ContainerMetadata, PodmanStorageList) {
  const std::string text = sample("podman-containers.json");
  const auto n = namesFromStorageContainers(text, "0123abcd");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->name, "web-1");
  const auto absent = namesFromStorageContainers(text, "beef");
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->empty());
}

TEST(ContainerMetadata, BadFilesNameWhatIsWrongAndNamesArePrintable) {
  EXPECT_EQ(namesFromDockerConfig(sample("wrong-type.json"), false).error().message,
            "config.v2.json.Name: expected a string");
  EXPECT_EQ(namesFromStorageContainers(sample("names-not-array.json"), "0123abcd").error().message,
            "containers.json[0].names: expected an array");
  EXPECT_EQ(namesFromOciConfig(sample("truncated.json"), OciBundle::Containerd).error().message,
            "config.json: not valid JSON");
  EXPECT_EQ(namesFromOciConfig("[]", OciBundle::CriO).error().message,
            "config.json: expected a JSON object");
  EXPECT_EQ(namesFromOciConfig(R"({"annotations":{"io.kubernetes.pod.name":3}})", OciBundle::CriO)
                .error()
                .message,
            "config.json: annotations.io.kubernetes.pod.name: expected a string");
  const auto hostile = namesFromOciConfig(sample("hostile.json"), OciBundle::Containerd);
  ASSERT_TRUE(hostile.ok()) << hostile.error().message;
  EXPECT_EQ(hostile->name.find('\x1b'), std::string::npos) << hostile->name;
  EXPECT_EQ(hostile->name.find("\xC2\x9B"), std::string::npos) << hostile->name;
  EXPECT_EQ(hostile->name.rfind("evil", 0), 0u) << hostile->name;
  // A name longer than any runtime allows is cut.
  const auto longName =
      namesFromOciConfig(R"({"annotations":{"nerdctl/name":")" + std::string(5000, 'x') + "\"}}",
                         OciBundle::Containerd);
  ASSERT_TRUE(longName.ok());
  EXPECT_LE(longName->name.size(), 256u);
}

}  // namespace
}  // namespace waitwatch
