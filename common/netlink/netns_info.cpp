// SPDX-License-Identifier: Apache-2.0
#include "netlink/netns_info.hpp"

#include <fcntl.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/kernel_counters.hpp"
#include "netlink/netns.hpp"
#include "sys/file.hpp"

namespace waitwatch {
namespace {

void note(std::string& problems, const std::string& line) {
  if (!problems.empty()) problems += '\n';
  problems += line;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  return s;
}

}  // namespace

NetnsKernelInfo readCurrentNetnsKernelInfo(const std::string& procRoot) {
  NetnsKernelInfo info;
  // thread-self: /proc/self/net shows the namespace of the thread-group leader, which is not
  // this thread's after a setns() on another thread.
  const std::string net = procRoot + "/thread-self/net/";
  const std::string sys = procRoot + "/sys/net/ipv4/";
  std::string netstat;
  std::string snmp;
  auto a = readFileAt(AT_FDCWD, net + "netstat", netstat);
  auto b = readFileAt(AT_FDCWD, net + "snmp", snmp);
  if (!a) {
    note(info.problems, a.error().message);
  } else if (!b) {
    note(info.problems, b.error().message);
  } else if (auto c = parseKernelTcpCounters(netstat, snmp); !c) {
    note(info.problems, c.error().message);
  } else {
    info.counters = *c;
  }

  std::string range;
  std::string reserved;
  auto r1 = readFileAt(AT_FDCWD, sys + "ip_local_port_range", range);
  auto r2 = readFileAt(AT_FDCWD, sys + "ip_local_reserved_ports", reserved);
  if (!r1) {
    note(info.problems, r1.error().message);
  } else if (!r2) {
    note(info.problems, r2.error().message);
  } else if (auto e = EphemeralRange::fromSysctl(range, reserved)) {
    info.ephemeral = *e;
  } else {
    note(info.problems, "ip_local_port_range / ip_local_reserved_ports: cannot parse '" +
                            std::string(trimmed(range)) + "' / '" + std::string(trimmed(reserved)) +
                            "'");
  }

  std::string buckets;
  if (auto r = readFileAt(AT_FDCWD, sys + "tcp_max_tw_buckets", buckets); !r) {
    note(info.problems, r.error().message);
  } else {
    const auto t = trimmed(buckets);
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc{} || end != t.data() + t.size()) {
      note(info.problems, "tcp_max_tw_buckets: cannot parse '" + std::string(t) + "'");
    } else {
      info.maxTimeWaitBuckets = v;
    }
  }

  std::string entries;
  if (auto r = readFileAt(AT_FDCWD, sys + "tcp_ehash_entries", entries); !r) {
    if (r.error().errnum != ENOENT) note(info.problems, r.error().message);
  } else if (auto v = parseTcpHashEntries(entries); !v) {
    note(info.problems, "tcp_ehash_entries: cannot parse '" + std::string(trimmed(entries)) +
                            "' (" + v.error().message + ")");
  } else {
    info.tcpHashEntries = *v;
  }
  return info;
}

Result<NetnsKernelInfo> readNetnsKernelInfo(int netnsFd) {
  auto guard = NetnsGuard::enter(netnsFd);
  if (!guard) return guard.error();
  NetnsKernelInfo info = readCurrentNetnsKernelInfo();
  if (auto r = guard->restore(); !r) return r.error();
  return info;
}

TcpMemory readTcpMemory(const std::string& procRoot, std::string& problems) {
  TcpMemory out;
  std::string text;
  const std::string sockstat = procRoot + "/thread-self/net/sockstat";
  if (auto r = readFileAt(AT_FDCWD, sockstat, text); !r) {
    note(problems, r.error().message);
  } else if (auto pages = parseSockstatTcpPages(text); !pages) {
    note(problems, sockstat + ": " + pages.error().message);
  } else {
    out.pages = *pages;
    out.valid = true;
  }
  const std::string sysctl = procRoot + "/sys/net/ipv4/tcp_mem";
  if (auto r = readFileAt(AT_FDCWD, sysctl, text); !r) {
    note(problems, r.error().errnum == ENOENT
                       ? "net.ipv4.tcp_mem: not in this network namespace (only the host's has "
                         "it): the TCP memory thresholds and their forecasts are unknown"
                       : r.error().message);
  } else if (auto limits = parseTcpMem(text); !limits) {
    note(problems, sysctl + ": " + limits.error().message);
  } else {
    out.min = (*limits)[0];
    out.pressure = (*limits)[1];
    out.max = (*limits)[2];
  }
  return out;
}

}  // namespace waitwatch
