// SPDX-License-Identifier: Apache-2.0
#pragma once
// The compiled BPF programs, embedded at build time (embed.cmake). Internal to waitwatch::bpf.
#include <cstddef>

namespace waitwatch::bpf::detail {

extern const unsigned char kSocketFdsObject[];  // socket_fds.bpf.c
extern const std::size_t kSocketFdsObjectSize;
extern const unsigned char kClosesObject[];  // closes.bpf.c
extern const std::size_t kClosesObjectSize;
extern const unsigned char kTcpSocketsObject[];  // tcp_sockets.bpf.c
extern const std::size_t kTcpSocketsObjectSize;

}  // namespace waitwatch::bpf::detail
