// SPDX-License-Identifier: Apache-2.0
#include "core/process.hpp"

namespace waitwatch {

std::string ContainerInfo::shortName() const {
  if (runtime.empty()) return {};
  return runtime + ":" + id.substr(0, 12);
}

std::string ContainerInfo::displayName() const {
  if (runtime.empty()) return {};
  if (!podName.empty()) {
    return "k8s:" + podNamespace + "/" + podName + (name.empty() ? "" : "/" + name);
  }
  if (!name.empty()) return runtime + ":" + name;
  return shortName();
}

std::string ContainerInfo::labelName() const {
  return name.empty() ? shortName() : name;
}

}  // namespace waitwatch
