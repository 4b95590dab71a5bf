// SPDX-License-Identifier: Apache-2.0
#pragma once
// Evaluation of a rule's `match` (see Match in rules/config.hpp for the semantics). Split into
// the process dimensions (comm, unit, container, user), evaluated once per process and poll,
// and the endpoint dimensions (local port, destination), evaluated per socket or per TIME_WAIT
// group only when the rule uses them.
#include <cstdint>
#include <optional>

#include "core/address.hpp"
#include "core/process.hpp"
#include "rules/config.hpp"

namespace waitwatch {

[[nodiscard]] bool usesProcessDimensions(const Match& m);
[[nodiscard]] bool usesEndpointDimensions(const Match& m);

// `process` null: a subject without an owner; only its uid (if known) can match `user`.
[[nodiscard]] bool passesProcess(const Match& m, const ProcessInfo* process,
                                 std::optional<std::uint32_t> uid);
// A dimension given as nullopt / nullptr is one the subject does not have. `ephemeral` is the
// subject's namespace's range (it classes the local port).
[[nodiscard]] bool passesEndpoint(const Match& m, std::optional<std::uint16_t> localPort,
                                  const Endpoint* destination, const EphemeralRange& ephemeral);

}  // namespace waitwatch
