#pragma once
// Rendering: Snapshot -> text. Pure; no I/O.
#include <nlohmann/json.hpp>
#include <string>

#include "core/snapshot.hpp"

namespace waitwatch::cli {

// {"ESTABLISHED": n, "SYN_SENT": n, ... all eleven states, in the kernel's order}
nlohmann::ordered_json stateCountsJson(const StateCounts& counts);

// {"states": {...totals...}, "namespaces": [{"inode": n, "name": "x" or null, "states": {...}}]}
nlohmann::ordered_json snapshotJson(const Snapshot& snapshot);

// One row per namespace and a TOTAL row (when there is more than one namespace); a column per
// state with the names `ss` prints, then TOTAL.
std::string renderStateTable(const Snapshot& snapshot);

}  // namespace waitwatch::cli
