// SPDX-License-Identifier: Apache-2.0
#include "service/privileges.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstring>

namespace waitwatch {
namespace {

// capability(7) names, indexed by number (CAP_LAST_CAP is 40 on the kernels of 2024).
constexpr std::array<const char*, 41> kNames = {"cap_chown",
                                                "cap_dac_override",
                                                "cap_dac_read_search",
                                                "cap_fowner",
                                                "cap_fsetid",
                                                "cap_kill",
                                                "cap_setgid",
                                                "cap_setuid",
                                                "cap_setpcap",
                                                "cap_linux_immutable",
                                                "cap_net_bind_service",
                                                "cap_net_broadcast",
                                                "cap_net_admin",
                                                "cap_net_raw",
                                                "cap_ipc_lock",
                                                "cap_ipc_owner",
                                                "cap_sys_module",
                                                "cap_sys_rawio",
                                                "cap_sys_chroot",
                                                "cap_sys_ptrace",
                                                "cap_sys_pacct",
                                                "cap_sys_admin",
                                                "cap_sys_boot",
                                                "cap_sys_nice",
                                                "cap_sys_resource",
                                                "cap_sys_time",
                                                "cap_sys_tty_config",
                                                "cap_mknod",
                                                "cap_lease",
                                                "cap_audit_write",
                                                "cap_audit_control",
                                                "cap_setfcap",
                                                "cap_mac_override",
                                                "cap_mac_admin",
                                                "cap_syslog",
                                                "cap_wake_alarm",
                                                "cap_block_suspend",
                                                "cap_audit_read",
                                                "cap_perfmon",
                                                "cap_bpf",
                                                "cap_checkpoint_restore"};

// The highest capability number the running kernel knows: PR_CAPBSET_READ says EINVAL past it.
int lastCapability() {
  int cap = 0;
  while (cap < 63 && ::prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
    ++cap;
  return cap;
}

CapabilitySet join(std::uint32_t low, std::uint32_t high) {
  return (CapabilitySet{high} << 32) | low;
}

// capset(2) of the calling thread: version 3, two 32-bit words per set.
Result<void> setCapabilities(CapabilitySet effective, CapabilitySet permitted,
                             CapabilitySet inheritable) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  for (std::size_t i = 0; i < data.size(); ++i) {
    const unsigned shift = 32 * static_cast<unsigned>(i);
    data[i].effective = static_cast<std::uint32_t>(effective >> shift);
    data[i].permitted = static_cast<std::uint32_t>(permitted >> shift);
    data[i].inheritable = static_cast<std::uint32_t>(inheritable >> shift);
  }
  if (::syscall(SYS_capset, &header, data.data()) != 0) {
    Error e = osError(errno, "capset");
    // Lowering capabilities needs no privilege: only a filter refuses it.
    if (e.errnum == EPERM)
      e.message += " (a seccomp filter, e.g. SystemCallFilter=, refuses capset)";
    return e;
  }
  return {};
}

}  // namespace

Result<ThreadCapabilities> currentCapabilities() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  if (::syscall(SYS_capget, &header, data.data()) != 0) return osError(errno, "capget");
  ThreadCapabilities caps;
  caps.effective = join(data[0].effective, data[1].effective);
  caps.permitted = join(data[0].permitted, data[1].permitted);
  caps.inheritable = join(data[0].inheritable, data[1].inheritable);
  const int last = lastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) caps.bounding |= capabilityBit(cap);
    // Kernels before 4.3 have no ambient set: EINVAL, and nothing to clear.
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) {
      caps.ambient |= capabilityBit(cap);
    }
  }
  const int nnp = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  if (nnp < 0) return osError(errno, "prctl(PR_GET_NO_NEW_PRIVS)");
  caps.noNewPrivs = nnp == 1;
  return caps;
}

CapabilitySet neededCapabilities(NamespaceSelection namespaces) {
  CapabilitySet needed = capabilityBit(CAP_DAC_READ_SEARCH) | capabilityBit(CAP_SYS_PTRACE);
  if (namespaces == NamespaceSelection::All) needed |= capabilityBit(CAP_SYS_ADMIN);
  return needed;
}

std::string capabilityNames(CapabilitySet set) {
  if (set == 0) return "none";
  std::string out;
  for (unsigned cap = 0; cap < 64; ++cap) {
    if ((set & (CapabilitySet{1} << cap)) == 0) continue;
    if (!out.empty()) out += ',';
    out += cap < kNames.size() ? kNames[cap] : "cap_" + std::to_string(cap);
  }
  return out;
}

std::string PrivilegeDrop::summary() const {
  std::string line = "capabilities: kept " + capabilityNames(kept);
  const int count = std::popcount(dropped);
  if (count == 0) {
    line += "; dropped none";
  } else if (count <= 6) {
    line += "; dropped " + capabilityNames(dropped);
  } else {
    line += "; dropped all " + std::to_string(count) + " others";
  }
  if (missing != 0) line += "; missing " + capabilityNames(missing);
  if (boundingReduced) {
    line += "; bounding set: only the kept ones";
  } else {
    // Without CAP_SETPCAP (any unprivileged start) the bounding set cannot shrink; with an
    // empty permitted rest and no_new_privs, nothing in it can be gained any more.
    line += "; bounding set left with " + std::to_string(std::popcount(boundingLeft & ~kept)) +
            " others (no cap_setpcap to drop them)";
  }
  line += "; ambient and inheritable sets cleared; no_new_privs set";
  return line;
}

Result<PrivilegeDrop> dropPrivileges(CapabilitySet keep) {
  auto before = currentCapabilities();
  if (!before) return before.error();
  const CapabilitySet kept = before->permitted & keep;
  PrivilegeDrop drop;
  drop.kept = kept;
  drop.dropped = before->permitted & ~keep;
  drop.missing = keep & ~before->permitted;

  // The bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set, which the
  // capset below removes. (Root by hand has it; a systemd unit grants it to nobody.)
  const CapabilitySet setpcap = capabilityBit(CAP_SETPCAP);
  if ((before->permitted & setpcap) != 0) {
    if ((before->effective & setpcap) == 0) {
      if (auto r =
              setCapabilities(before->effective | setpcap, before->permitted, before->inheritable);
          !r) {
        return r.error().wrap("raising cap_setpcap to reduce the bounding set");
      }
    }
    for (unsigned cap = 0; cap < 64; ++cap) {
      const CapabilitySet bit = CapabilitySet{1} << cap;
      if ((before->bounding & bit) == 0 || (keep & bit) != 0) continue;
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        const int err = errno;  // before the message is built
        return osError(err, "prctl(PR_CAPBSET_DROP, " + capabilityNames(bit) + ")");
      }
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return osError(errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  if (auto r = setCapabilities(kept, kept, 0); !r) return r.error();
  // No execve() can give anything back (set-user-ID bits and file capabilities are ignored;
  // a root execve() gets no more than the permitted set has now). The daemon never executes
  // anything; this holds even if someone made it.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return osError(errno, "prctl(PR_SET_NO_NEW_PRIVS)");

  auto after = currentCapabilities();
  if (!after) return after.error();
  if (after->permitted != kept || after->effective != kept || after->inheritable != 0 ||
      after->ambient != 0 || !after->noNewPrivs) {
    return Error{0, "capabilities after the drop are not what was set: permitted " +
                        capabilityNames(after->permitted) + ", effective " +
                        capabilityNames(after->effective)};
  }
  drop.boundingLeft = after->bounding;
  drop.boundingReduced = (after->bounding & ~keep) == 0;
  return drop;
}

}  // namespace waitwatch
