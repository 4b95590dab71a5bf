// SPDX-License-Identifier: Apache-2.0
#include "core/snapshot.hpp"

#include <gtest/gtest.h>

#include <set>

namespace waitwatch {
namespace {

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

TEST(CloseWaitSocket, FitsFortyBytes) {
  // Half a million of them per poll at a million sockets: every byte is 0.5 MB.
  EXPECT_LE(sizeof(CloseWaitSocket), 40u);
}

TEST(AddressInterner, GivesEachDistinctAddressOneIndex) {
  std::vector<IpAddress> table;
  AddressInterner interner;
  const std::uint32_t a = interner.intern(ip("10.0.0.1"), table);
  const std::uint32_t b = interner.intern(ip("10.0.0.2"), table);
  const std::uint32_t v6 = interner.intern(ip("fd00::1"), table);
  EXPECT_EQ(interner.intern(ip("10.0.0.1"), table), a);
  EXPECT_EQ(interner.intern(ip("fd00::1"), table), v6);
  // The same bytes in another family are another address.
  EXPECT_NE(interner.intern(ip("::ffff:10.0.0.1"), table), a);
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table[a], ip("10.0.0.1"));
  EXPECT_EQ(table[b], ip("10.0.0.2"));
  EXPECT_EQ(table[v6], ip("fd00::1"));
}

TEST(AddressInterner, StaysExactThroughGrowthAndClear) {
  std::vector<IpAddress> table;
  AddressInterner interner;
  std::vector<std::uint32_t> index;
  for (int round = 0; round < 2; ++round) {
    index.clear();
    for (std::uint32_t i = 0; i < 20'000; ++i) {  // grows the slots many times
      const IpAddress a =
          IpAddress::v4({10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                         static_cast<std::uint8_t>(i)});
      index.push_back(interner.intern(a, table));
    }
    ASSERT_EQ(table.size(), 20'000u);
    for (std::uint32_t i = 0; i < 20'000; ++i) {
      const IpAddress a =
          IpAddress::v4({10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                         static_cast<std::uint8_t>(i)});
      ASSERT_EQ(interner.intern(a, table), index[i]);
      ASSERT_EQ(table[index[i]], a);
    }
    EXPECT_EQ(std::set<std::uint32_t>(index.begin(), index.end()).size(), 20'000u);
    // A new poll: a fresh table, and the interner forgets the old one.
    table.clear();
    interner.clear();
    EXPECT_EQ(interner.intern(ip("192.0.2.1"), table), 0u);
    table.clear();
    interner.clear();
  }
}

TEST(Snapshot, EndpointsOfARecordAndIndicesPointingNowhere) {
  Snapshot s;
  AddressInterner interner;
  CloseWaitSocket c;
  c.localAddress = interner.intern(ip("10.0.0.1"), s.addresses);
  c.remoteAddress = interner.intern(ip("fd00::7"), s.addresses);
  c.localPort = 8080;
  c.remotePort = 40001;
  EXPECT_EQ(s.local(c), (Endpoint{ip("10.0.0.1"), 8080}));
  EXPECT_EQ(s.remote(c), (Endpoint{ip("fd00::7"), 40001}));
  c.remoteAddress = 2;  // past the table: bad input reads as the unspecified address
  EXPECT_EQ(s.remote(c).address, IpAddress{});
  c.localAddress = kNoIndex;
  EXPECT_EQ(s.local(c), (Endpoint{IpAddress{}, 8080}));
}

}  // namespace
TEST(ContainerInfo, DisplayNameIsWhatAnOperatorKnowsItBy) {
  ContainerInfo c{"containerd", std::string(64, 'a'), "d6b1c0de"};
  EXPECT_EQ(c.shortName(), "containerd:aaaaaaaaaaaa");
  EXPECT_EQ(c.displayName(), "containerd:aaaaaaaaaaaa");  // no name found
  c.name = "redis-1";
  EXPECT_EQ(c.displayName(), "containerd:redis-1");
  c.name = "api";
  c.podName = "checkout-7d9f-x2k4";
  c.podNamespace = "payments";
  EXPECT_EQ(c.displayName(), "k8s:payments/checkout-7d9f-x2k4/api");
  EXPECT_EQ(c.shortName(), "containerd:aaaaaaaaaaaa");  // keys stay the id's
  EXPECT_EQ(ContainerInfo{}.displayName(), "");
}

}  // namespace waitwatch
