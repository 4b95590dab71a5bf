// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which network namespaces a look at the host covers: the daemon's "namespaces" setting and
// the CLI's --netns, one meaning for both.
#include <cstdint>
#include <string_view>

namespace waitwatch {

enum class NamespaceSelection : std::uint8_t {
  Host,   // the namespace waitwatch runs in
  All,    // every namespace on the host (/proc/*/ns/net and /run/netns)
  Named,  // namespaces named by `ip netns` (/run/netns)
};

// "host", "all", "named"
constexpr std::string_view namespaceSelectionName(NamespaceSelection s) {
  switch (s) {
    case NamespaceSelection::All:
      return "all";
    case NamespaceSelection::Named:
      return "named";
    case NamespaceSelection::Host:
      break;
  }
  return "host";
}

}  // namespace waitwatch
