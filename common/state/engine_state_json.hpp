// SPDX-License-Identifier: Apache-2.0
#pragma once
// The rules' and forecasts' saved state (rules/engine_state.hpp) as JSON, the part of the state
// file that is not per socket. Every field is written; the reader checks each one and names
// the path of the first that is wrong ("rules[0].groups[3].alert.peers[1].port: expected an
// integer from 0 to 65535"). Pure: values in, values out.
#include <nlohmann/json.hpp>

#include "core/result.hpp"
#include "rules/engine_state.hpp"

namespace waitwatch::state {

nlohmann::json engineStateToJson(const EngineState& state);
Result<EngineState> engineStateFromJson(const nlohmann::json& json);

}  // namespace waitwatch::state
