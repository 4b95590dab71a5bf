// SPDX-License-Identifier: Apache-2.0
#pragma once
// The compiled socket_fds.bpf.c, embedded at build time (embed.cmake). Internal to
// waitwatch::bpf.
#include <cstddef>

namespace waitwatch::bpf::detail {

extern const unsigned char kSocketFdsObject[];
extern const std::size_t kSocketFdsObjectSize;

}  // namespace waitwatch::bpf::detail
