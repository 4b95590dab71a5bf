// SPDX-License-Identifier: Apache-2.0
#pragma once
// WAITWATCH_NO_BPF=1 (any value but empty and "0") in the environment: load no BPF program and
// take the /proc and netlink paths that give the same answers, e.g. to compare both or to rule
// a program out.
#include <cstdlib>
#include <cstring>

namespace waitwatch::bpf {

inline bool disabledByEnvironment() {
  const char* v = std::getenv("WAITWATCH_NO_BPF");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace waitwatch::bpf
