// SPDX-License-Identifier: Apache-2.0
#pragma once
// The close_wait engine tests' usual case: nginx (nginx.service, listening on 8080) holding
// CLOSE_WAIT sockets, and a rule that fires on 3 of them older than a minute.
#include <chrono>
#include <string>

#include "support/snapshot_builder.hpp"

namespace waitwatch::testing {

inline const char* const kRule = R"({"poll_interval": "10s", "rules": [{
  "name": "leak", "type": "close_wait", "min_sockets": 3, "min_age": "1m",
  "for": "30s", "clear_for": "20s"}]})";

inline ProcessSpec nginx() {
  return proc(1234, "nginx").inUnit("nginx.service").listening({8080});
}

// nginx holding `sockets` CLOSE_WAIT sockets on :8080, cookies from `cookie0`.
inline Snapshot nginxHolding(std::size_t sockets, std::uint64_t cookie0 = 100) {
  SnapshotBuilder b(std::chrono::seconds(10));
  auto p = b.process(nginx());
  b.closeWaitMany(cookie0, sockets, {p}, 8080);
  return b.build();
}

inline const std::string kNginxKey = "process:1234@1000:4026531840";

}  // namespace waitwatch::testing
