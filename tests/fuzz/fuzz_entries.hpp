#pragma once
// Fuzz entry points shared by the libFuzzer targets and the corpus regression test. Each runs
// one input through a parser of outside input and checks what must hold for any input; it
// returns nullptr, or a description of the broken invariant.
#include <cstddef>
#include <cstdint>

namespace waitwatch::fuzz {

// Bytes as one recv() buffer of a NETLINK_SOCK_DIAG dump reply.
const char* netlinkReply(const std::uint8_t* data, std::size_t size);
// Bytes as /proc/net/netstat or /proc/net/snmp text.
const char* kernelCounters(const std::uint8_t* data, std::size_t size);

}  // namespace waitwatch::fuzz
