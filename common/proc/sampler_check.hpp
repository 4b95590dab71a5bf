// SPDX-License-Identifier: Apache-2.0
#pragma once
// Whether two ways of reading a namespace's sockets agree (the inet_diag dump and the BPF
// iterator), on a live host where sockets come and go between any two readings. Pure.
//
// The reading under test (`walk`) is taken between two dumps (`before`, `after`). A socket the
// two dumps report alike (by cookie: endpoints, state, inode, uid, cgroup, and in CLOSE_WAIT its
// Recv-Q) existed unchanged for the whole walk, so the walk must report it too, and alike; its
// TIME_WAIT or SYN_RECV timer, unless the kernel re-armed it meanwhile, must lie between the two
// dumps' values. What the dumps disagree on changed meanwhile and proves nothing; a socket only
// the walk saw lived between the dumps.
// Other queues and which timer runs are not compared: traffic moves them and brings them back
// between any two readings.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/socket.hpp"

namespace waitwatch {

struct SamplerCheck {
  std::uint64_t compared = 0;   // sockets both dumps agreed on
  std::uint64_t missing = 0;    // of those, not in the walk
  std::uint64_t differing = 0;  // of those, in the walk with another value
  std::uint64_t walkOnly = 0;   // in the walk and in neither dump
  // Up to kExamples of the faults, one line each: "cookie 4099 ESTABLISHED 10.0.0.1:80 ->
  // 10.0.0.2:5000: inode 123 by the dump, 0 by the walk".
  std::vector<std::string> examples;
  static constexpr std::size_t kExamples = 3;

  [[nodiscard]] std::uint64_t faults() const { return missing + differing; }
  void add(const SamplerCheck& other);
};

// `timerSlackMs`: how far the walk's remaining time may lie outside the dumps' (one kernel tick
// of rounding).
SamplerCheck checkSampler(std::span<const SocketRecord> before, std::span<const SocketRecord> walk,
                          std::span<const SocketRecord> after, std::uint32_t timerSlackMs = 10);

}  // namespace waitwatch
