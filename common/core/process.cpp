// SPDX-License-Identifier: Apache-2.0
#include "core/process.hpp"

namespace waitwatch {

std::string ContainerInfo::shortName() const {
  if (runtime.empty()) return {};
  return runtime + ":" + id.substr(0, 12);
}

}  // namespace waitwatch
