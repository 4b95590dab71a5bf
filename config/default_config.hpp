// SPDX-License-Identifier: Apache-2.0
#pragma once
// The shipped configuration file, embedded at build time (target waitwatch::default_config), so
// that the daemon without /etc/waitwatch/waitwatch.json runs on exactly the file in config/.
#include <string_view>

namespace waitwatch {

// The text of config/waitwatch.json; compile it with compileConfig(text, kEmbeddedConfigOrigin).
std::string_view embeddedDefaultConfig();
// The origin to name in messages about it.
inline constexpr std::string_view kEmbeddedConfigOrigin = "built-in defaults";

}  // namespace waitwatch
