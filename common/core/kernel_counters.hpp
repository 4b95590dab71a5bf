// SPDX-License-Identifier: Apache-2.0
#pragma once
// Parsers for the kernel's SNMP-style counter texts, /proc/net/netstat and /proc/net/snmp: pairs
// of lines, a header ("TcpExt: SyncookiesSent ...") followed by a value line with the same
// prefix and as many fields ("TcpExt: 0 ...").
#include <array>
#include <cstdint>
#include <string_view>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"

namespace waitwatch {

// One value as printed: counters are unsigned 64-bit, but /proc/net/snmp also prints one value
// that is not a counter and may be negative (Tcp MaxConn is -1).
struct KernelCounterValue {
  std::uint64_t magnitude = 0;
  bool negative = false;
};

// Calls `visit(section, name, value)` for every counter, in order. Malformed text gives an Error
// that names the line ("line 4: TcpExt values line has 3 fields, its header has 5").
Result<void> forEachKernelCounter(
    std::string_view text,
    FunctionRef<void(std::string_view section, std::string_view name, KernelCounterValue value)>
        visit);

// Fills the TcpExt fields of `out` from /proc/net/netstat text. A missing TcpExt section is an
// error; a missing field (older kernels) leaves its counter at 0.
Result<void> parseNetstatCounters(std::string_view netstatText, KernelTcpCounters& out);
// Fills the Tcp fields (ActiveOpens, PassiveOpens) of `out` from /proc/net/snmp text.
Result<void> parseSnmpCounters(std::string_view snmpText, KernelTcpCounters& out);
// Both, with `valid` set on success.
Result<KernelTcpCounters> parseKernelTcpCounters(std::string_view netstatText,
                                                 std::string_view snmpText);

// The TCP line's "mem" of /proc/net/sockstat ("TCP: inuse 5 orphan 0 tw 2 alloc 9 mem 3"):
// pages of TCP socket memory in use, host-wide (net/ipv4/proc.c, sockstat_seq_show:
// proto_memory_allocated(&tcp_prot)).
Result<std::uint64_t> parseSockstatTcpPages(std::string_view sockstatText);
// net.ipv4.tcp_mem: three page counts, min, pressure and max ("188319\t251092\t376638\n").
Result<std::array<std::uint64_t, 3>> parseTcpMem(std::string_view text);
// net.ipv4.tcp_ehash_entries ("-262144\n"): the buckets of the TCP hash table the namespace's
// sockets are in, negative when that is the host's table, shared (net/ipv4/sysctl_net_ipv4.c,
// proc_tcp_ehash_entries()). Never 0: a table has at least one bucket.
Result<std::int64_t> parseTcpHashEntries(std::string_view text);
// What that value says of a namespace (TcpHashTable).
TcpHashTable tcpHashTable(std::int64_t ehashEntries);

}  // namespace waitwatch
