// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fuzz entry points shared by the libFuzzer targets and the corpus regression test. Each runs
// one input through a parser of outside input and checks what must hold for any input; it
// returns nullptr, or a description of the broken invariant.
#include <cstddef>
#include <cstdint>

namespace waitwatch::fuzz {

// Bytes as one recv() buffer of a NETLINK_SOCK_DIAG dump reply.
const char* netlinkReply(const std::uint8_t* data, std::size_t size);
// Bytes as one read() of the BPF TCP socket walk (tcp_sockets.bpf.c's records).
const char* tcpWalkRecords(const std::uint8_t* data, std::size_t size);
// Bytes as /proc/net/netstat or /proc/net/snmp text.
const char* kernelCounters(const std::uint8_t* data, std::size_t size);

// fuzz_entries_text.cpp (waitwatch::proc, waitwatch::core)
// Bytes as the text of /proc/<pid>/stat, status, cmdline, cgroup and a /proc/<pid>/fd link
// target: every input goes through every one of those parsers.
const char* procTexts(const std::uint8_t* data, std::size_t size);
// Bytes as a duration ("1h30m"), an IP address and a CIDR prefix: parsed, and what parses
// prints back to text that parses to the same value.
const char* coreText(const std::uint8_t* data, std::size_t size);

// fuzz_entries_config.cpp (waitwatch::rules)
// Bytes as the JSON configuration file (compileConfig), and as a listen address.
const char* jsonConfig(const std::uint8_t* data, std::size_t size);

// fuzz_entries_http.cpp (waitwatch::service)
// Bytes as what an HTTP client sends on one connection to the daemon's listener: the real
// HttpServer (libmicrohttpd) and DaemonApi over a published poll, on 127.0.0.1.
const char* httpRequest(const std::uint8_t* data, std::size_t size);
// After any number of inputs: the server still answers a plain scrape.
const char* httpServerAlive();

// fuzz_entries_api.cpp (waitwatch::api)
// Bytes as a daemon's /api/v1/snapshot or /api/v1/alerts document: read, and what reads is
// consistent and writes back as a document that reads as itself.
const char* apiDocuments(const std::uint8_t* data, std::size_t size);

// fuzz_entries_state.cpp (waitwatch::state, waitwatch::rules)
// Bytes as waitwatchd's state file (readState), as they are and with their CRC made right: an
// error is one printable line; a state that reads writes back as itself, and restores into an
// engine that then polls.
const char* stateFile(const std::uint8_t* data, std::size_t size);

// fuzz_entries_containers.cpp (waitwatch::containers)
// Bytes as a container runtime's file about a container: an OCI config.json (containerd,
// CRI-O), Docker's config.v2.json and containers/storage's containers.json. Errors are one
// printable line; every name read is printable and at most 256 bytes.
const char* containerFiles(const std::uint8_t* data, std::size_t size);

}  // namespace waitwatch::fuzz
