// SPDX-License-Identifier: Apache-2.0
#pragma once
// Per-namespace kernel facts the rules need beside the socket dump: the kernel's TCP counters
// and the sysctls that bound TIME_WAIT and ephemeral ports. All of them are per network
// namespace, so they are read from inside the namespace.
#include <cstdint>
#include <optional>
#include <string>

#include "core/ports.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"

namespace waitwatch {

struct NetnsKernelInfo {
  KernelTcpCounters counters;               // valid == false when unreadable (see problems)
  std::optional<EphemeralRange> ephemeral;  // ip_local_port_range minus ip_local_reserved_ports
  std::uint32_t maxTimeWaitBuckets = 0;     // net.ipv4.tcp_max_tw_buckets, 0 when unreadable
  // net.ipv4.tcp_ehash_entries: the buckets of the TCP hash table the namespace's sockets are
  // in, negative when it is the host's, shared (net/ipv4/sysctl_net_ipv4.c,
  // proc_tcp_ehash_entries()). Absent before Linux 6.1, which has no other table than the host's.
  std::optional<std::int64_t> tcpHashEntries;
  // What could not be read, one line each ("tcp_max_tw_buckets: ..."); empty when all was read.
  std::string problems;
};

// Reads the facts of the namespace the calling thread is in, through `procRoot`
// (/proc/thread-self/net/{netstat,snmp} and /proc/sys/net/ipv4/...).
NetnsKernelInfo readCurrentNetnsKernelInfo(const std::string& procRoot = "/proc");

// The same for the namespace `netnsFd` refers to: the calling thread enters it, reads, and
// comes back. Fails only when the namespace cannot be entered or left; unreadable files are
// reported in `problems`.
Result<NetnsKernelInfo> readNetnsKernelInfo(int netnsFd);

// TCP memory, host-wide (TcpMemory without closeWaitMinPages and the forecasts): pages in use
// from /proc/thread-self/net/sockstat, and net.ipv4.tcp_mem. The counter is global whatever
// the namespace it is read in (net/ipv4/proc.c, sockstat_seq_show:
// proto_memory_allocated(&tcp_prot)); tcp_mem is one global sysctl that only the host's
// namespace shows (net/ipv4/sysctl_net_ipv4.c: "tcp_mem" is in ipv4_table, registered for
// init_net alone, not in ipv4_net_table). The counter lags by up to a per-CPU reserve of 1 MB
// per CPU (sk_memory_allocated_add(), SK_MEMORY_PCPU_RESERVE). What could not be read goes to
// `problems`.
TcpMemory readTcpMemory(const std::string& procRoot, std::string& problems);

}  // namespace waitwatch
