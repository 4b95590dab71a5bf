// SPDX-License-Identifier: Apache-2.0
#pragma once
// Which network namespaces a look at the host covers: the daemon's "namespaces" setting and
// the CLI's --netns, one meaning for both.
#include <cstdint>
#include <string_view>

#include "core/enum_names.hpp"

namespace waitwatch {

enum class NamespaceSelection : std::uint8_t {
  Host,   // the namespace waitwatch runs in
  All,    // every namespace on the host (/proc/*/ns/net and /run/netns)
  Named,  // namespaces named by `ip netns` (/run/netns)
};

inline constexpr EnumNames<NamespaceSelection, 3> kNamespaceSelections(
    {{NamespaceSelection::Host, "host"},
     {NamespaceSelection::All, "all"},
     {NamespaceSelection::Named, "named"}});

constexpr std::string_view namespaceSelectionName(NamespaceSelection s) {
  return kNamespaceSelections.name(s);
}

}  // namespace waitwatch
