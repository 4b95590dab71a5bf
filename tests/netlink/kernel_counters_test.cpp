// SPDX-License-Identifier: Apache-2.0
// Parsers of /proc/net/netstat and /proc/net/snmp over texts captured from this kernel
// (fixtures/*.txt) and malformed variants.
#include "core/kernel_counters.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "fixture_util.hpp"

namespace waitwatch {
namespace {

using testing::readText;

TEST(KernelCounters, RecordedNamespaceTexts) {
  // netstat.txt / snmp.txt were captured in the recorder's namespace right after it made its
  // sockets: 209 connects and 209 accepts, 2 sockets through TIME_WAIT.
  auto c = parseKernelTcpCounters(readText("netstat.txt"), readText("snmp.txt"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->valid);
  EXPECT_EQ(c->activeOpens, 209u);
  EXPECT_EQ(c->passiveOpens, 209u);
  EXPECT_EQ(c->timeWaitEntered, 2u);
  EXPECT_EQ(c->timeWaitOverflow, 0u);
  EXPECT_EQ(c->listenOverflows, 0u);
  EXPECT_EQ(c->listenDrops, 0u);
  EXPECT_EQ(c->abortOnClose, 0u);
  EXPECT_EQ(c->abortOnTimeout, 0u);
}

TEST(KernelCounters, RecordedHostTexts) {
  auto c = parseKernelTcpCounters(readText("host-netstat.txt"), readText("host-snmp.txt"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->activeOpens, 13u);
  EXPECT_EQ(c->passiveOpens, 2u);
  EXPECT_EQ(c->timeWaitEntered, 11u);
}

TEST(KernelCounters, EveryRealCounterIsVisited) {
  std::map<std::string, std::int64_t> seen;
  std::size_t count = 0;
  auto r = forEachKernelCounter(
      readText("snmp.txt"), [&](std::string_view sec, std::string_view name, KernelCounterValue v) {
        ++count;
        const auto mag = static_cast<std::int64_t>(v.magnitude);
        seen[std::string(sec) + "." + std::string(name)] = v.negative ? -mag : mag;
      });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(seen.at("Tcp.MaxConn"), -1);  // the one value that is not a counter
  EXPECT_EQ(seen.at("Tcp.RtoMin"), 200);
  EXPECT_EQ(seen.at("Ip.DefaultTTL"), 64);
  EXPECT_EQ(count, seen.size());
  EXPECT_GT(count, 50u);
}

TEST(KernelCounters, EachFieldLandsInItsSlot) {
  const std::string netstat =
      "TcpExt: SyncookiesSent TW TCPAbortOnClose TCPAbortOnTimeout ListenOverflows ListenDrops "
      "TCPTimeWaitOverflow\n"
      "TcpExt: 9 1 2 3 4 5 18446744073709551615\n"
      "IpExt: InNoRoutes\n"
      "IpExt: 7\n";
  const std::string snmp =
      "Tcp: RtoAlgorithm MaxConn ActiveOpens PassiveOpens\n"
      "Tcp: 1 -1 11 12\n";
  auto c = parseKernelTcpCounters(netstat, snmp);
  ASSERT_TRUE(c.ok()) << c.error().message;
  KernelTcpCounters want;
  want.timeWaitEntered = 1;
  want.abortOnClose = 2;
  want.abortOnTimeout = 3;
  want.listenOverflows = 4;
  want.listenDrops = 5;
  want.timeWaitOverflow = 18446744073709551615ULL;
  want.activeOpens = 11;
  want.passiveOpens = 12;
  want.valid = true;
  EXPECT_EQ(*c, want);
}

TEST(KernelCounters, MissingFieldStaysZeroMissingSectionFails) {
  KernelTcpCounters c;
  ASSERT_TRUE(parseNetstatCounters("TcpExt: TW\nTcpExt: 5\n", c).ok());
  EXPECT_EQ(c.timeWaitEntered, 5u);
  EXPECT_EQ(c.timeWaitOverflow, 0u);

  auto r = parseNetstatCounters("IpExt: InNoRoutes\nIpExt: 0\n", c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "netstat: no TcpExt section");
  // "TcpExt" must not satisfy the snmp parser's "Tcp".
  auto s = parseSnmpCounters("TcpExt: ActiveOpens\nTcpExt: 3\n", c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "snmp: no Tcp section");
}

struct Bad {
  const char* text;
  const char* error;
};

TEST(KernelCounters, MalformedTextNamesTheLine) {
  const Bad cases[] = {
      {"TcpExt: A B C\nTcpExt: 1 2\n",
       "netstat: line 2: TcpExt values line has 2 fields, its header (line 1) has 3"},
      {"TcpExt: A B\nTcpExt: 1 2 3\n",
       "netstat: line 2: TcpExt values line has 3 fields, its header (line 1) has 2"},
      {"TcpExt: A B\n", "netstat: line 1: the TcpExt header has no values line"},
      {"TcpExt: A B\nIpExt: 1 2\n",
       "netstat: line 2: expected the values line of TcpExt, got 'IpExt:'"},
      {"TcpExt A B\nTcpExt 1 2\n",
       "netstat: line 1: expected a header such as 'TcpExt: Name ...', got 'TcpExt'"},
      {"TcpExt: TW X\nTcpExt: 1 2x\n", "netstat: line 2: TcpExt X value '2x' is not an integer"},
      {"TcpExt: TW\nTcpExt: 99999999999999999999\n",
       "netstat: line 2: TcpExt TW value '99999999999999999999' is not an integer"},
      {"TcpExt: TW\nTcpExt: -\n", "netstat: line 2: TcpExt TW value '-' is not an integer"},
      {"TcpExt: TW\nTcpExt: -4\n", "netstat: TcpExt TW is negative, expected a counter"},
      {"TcpExt: 1 2\nTcpExt: 1 2\n",
       "netstat: line 1: TcpExt header field '1' is not a counter name"},
      {"\n\nTcpExt: TW\n\nTcpExt: 1\n1: 2\n",
       "netstat: line 6: expected a header such as 'TcpExt: Name ...', got '1:'"},
      {"TcpExt: TW\nTcpExt: \x01\n", "netstat: line 2: TcpExt TW value '?' is not an integer"},
  };
  for (const auto& b : cases) {
    SCOPED_TRACE(b.text);
    KernelTcpCounters c;
    auto r = parseNetstatCounters(b.text, c);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, b.error);
  }
}

TEST(KernelCounters, TruncatedRealTextFailsOrParsesWholePairs) {
  // Every prefix of the real file: a cut inside a pair is an error naming a line; a cut at a
  // pair boundary parses.
  const std::string text = readText("host-netstat.txt");
  std::size_t errors = 0;
  for (std::size_t len = 0; len <= text.size(); ++len) {
    KernelTcpCounters c;
    auto r = parseNetstatCounters(std::string_view(text).substr(0, len), c);
    if (!r.ok()) {
      ++errors;
      EXPECT_EQ(r.error().message.rfind("netstat: ", 0), 0u);
    }
  }
  EXPECT_GT(errors, text.size() / 2);
}

}  // namespace
}  // namespace waitwatch

namespace waitwatch {
namespace {

// /proc/net/sockstat as this kernel prints it, and what is refused.
TEST(TcpMemoryTexts, SockstatPages) {
  const char* text =
      "sockets: used 407\nTCP: inuse 403 orphan 0 tw 2 alloc 403 mem 910\nUDP: inuse 0 mem 7\n";
  EXPECT_EQ(*parseSockstatTcpPages(text), 910u);
  EXPECT_EQ(parseSockstatTcpPages("UDP: inuse 0 mem 7\n").error().message, "no TCP line");
  EXPECT_EQ(parseSockstatTcpPages("sockets: used 1\nTCP: inuse 3\n").error().message,
            "line 2: the TCP line has no mem");
  EXPECT_EQ(parseSockstatTcpPages("TCP: inuse 3 mem -1\n").error().message,
            "line 1: TCP mem is not a page count");
  EXPECT_EQ(parseSockstatTcpPages("TCP: mem 99999999999999999999\n").error().message,
            "line 1: TCP mem is not a page count");
}

TEST(TcpMemoryTexts, TcpMemSysctl) {
  const auto mem = parseTcpMem("287892\t383858\t575784\n");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(*mem, (std::array<std::uint64_t, 3>{287892, 383858, 575784}));
  for (const char* bad : {"", "1 2", "1 2 3 4", "1 x 3", "1 -2 3"})
    EXPECT_EQ(parseTcpMem(bad).error().message, "expected three page counts") << bad;
}

TEST(TcpHashTexts, EhashEntriesSysctl) {
  EXPECT_EQ(parseTcpHashEntries("262144\n").value(), 262144);
  EXPECT_EQ(parseTcpHashEntries("-262144\n").value(), -262144);  // the host's, shared
  EXPECT_EQ(parseTcpHashEntries("512").value(), 512);
  for (const char* bad :
       {"", "\n", "0\n", "-0", "x", "12 3", " 12", "+12", "2147483648", "-2147483648", "12\n\n"}) {
    EXPECT_EQ(parseTcpHashEntries(bad).error().message, "expected a non-zero bucket count") << bad;
  }
  // Negative: the host's table, shared; positive: the namespace's own (or the host's, read there).
  EXPECT_EQ(tcpHashTable(-262144).buckets, 262144u);
  EXPECT_TRUE(tcpHashTable(-262144).sharedWithHost);
  EXPECT_EQ(tcpHashTable(512).buckets, 512u);
  EXPECT_FALSE(tcpHashTable(512).sharedWithHost);
}

}  // namespace
}  // namespace waitwatch
