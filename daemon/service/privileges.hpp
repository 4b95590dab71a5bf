// SPDX-License-Identifier: Apache-2.0
#pragma once
// Least privilege after start-up: once the listener is bound and the socket source is open, the
// daemon keeps exactly the capabilities its configuration needs and drops every other one from
// its permitted, effective, inheritable, ambient and (with CAP_SETPCAP) bounding sets, then sets
// no_new_privs. A thin adapter over capget(2), capset(2) and prctl(2) (no libcap).
//
// Run as root by hand, the daemon stays uid 0 with the reduced sets: changing to a user of its
// own is the unit's job (User=waitwatch), not the daemon's.
#include <cstdint>
#include <string>

#include "core/result.hpp"
#include "rules/config.hpp"

namespace waitwatch {

// Bit N is capability N as <linux/capability.h> numbers it (CAP_SYS_ADMIN = 21).
using CapabilitySet = std::uint64_t;

constexpr CapabilitySet capabilityBit(int cap) {
  return CapabilitySet{1} << static_cast<unsigned>(cap);
}

// The capabilities of the calling thread (/proc/<pid>/status shows the same for the main one).
struct ThreadCapabilities {
  CapabilitySet effective = 0;
  CapabilitySet permitted = 0;
  CapabilitySet inheritable = 0;
  CapabilitySet bounding = 0;
  CapabilitySet ambient = 0;
  bool noNewPrivs = false;
};
Result<ThreadCapabilities> currentCapabilities();

// What a configuration needs: CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE to read other users'
// /proc/<pid>/fd (attribution), always; CAP_SYS_ADMIN to setns() into other network namespaces
// ("namespaces": "all").
CapabilitySet neededCapabilities(NamespaceSelection namespaces);

// "cap_dac_read_search,cap_sys_ptrace", or "none".
std::string capabilityNames(CapabilitySet set);

// What dropPrivileges did.
struct PrivilegeDrop {
  CapabilitySet kept = 0;        // permitted (and effective) afterwards
  CapabilitySet dropped = 0;     // permitted before, not afterwards
  CapabilitySet missing = 0;     // needed but never held: what the daemon cannot do
  bool boundingReduced = false;  // false: no CAP_SETPCAP, the bounding set was left as it was
  CapabilitySet boundingLeft = 0;

  // The one start-up line: "capabilities: kept cap_dac_read_search,cap_sys_ptrace; dropped
  // cap_net_bind_service; bounding set: only the kept ones; ...; no_new_privs set".
  [[nodiscard]] std::string summary() const;
};

// Reduces the calling thread to `keep` (intersected with what it holds). Capabilities, the
// bounding and ambient sets and no_new_privs are per thread, and a new thread copies them from
// the thread that creates it: call this before the process starts any other thread.
Result<PrivilegeDrop> dropPrivileges(CapabilitySet keep);

}  // namespace waitwatch
