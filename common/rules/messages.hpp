// SPDX-License-Identifier: Apache-2.0
#pragma once
// The one-line human sentence of an alert: what is wrong, how bad, what to look at.
#include <string>

#include "rules/alert.hpp"
#include "rules/config.hpp"

namespace waitwatch {

// Uses every field of `a` (state, group, counts, details, times) and the rule's parameters.
[[nodiscard]] std::string alertMessage(const Alert& a, const Rule& rule);

}  // namespace waitwatch
