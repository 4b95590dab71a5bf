// SPDX-License-Identifier: Apache-2.0
#include "core/address.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("10.1.2.3");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AddressFamily::V4);
  EXPECT_EQ(v4->toString(), "10.1.2.3");
  auto v6 = IpAddress::parse("fd00::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AddressFamily::V6);
  EXPECT_EQ(v6->toString(), "fd00::1");
  EXPECT_FALSE(IpAddress::parse("10.1.2"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("not an address at all, and far too long to be one anyway"));
}

TEST(IpAddress, UnmapsV4MappedV6) {
  auto mapped = IpAddress::parse("::ffff:192.0.2.7");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->unmapped(), *IpAddress::parse("192.0.2.7"));
  EXPECT_EQ(IpAddress::parse("::1")->unmapped(), *IpAddress::parse("::1"));
}

TEST(IpAddress, Loopback) {
  for (const char* a : {"127.0.0.1", "127.0.1.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"})
    EXPECT_TRUE(IpAddress::parse(a)->isLoopback()) << a;
  for (const char* a : {"128.0.0.1", "10.0.0.1", "::2", "::", "0.0.0.0", "::ffff:10.0.0.1"})
    EXPECT_FALSE(IpAddress::parse(a)->isLoopback()) << a;
  EXPECT_FALSE(IpAddress{}.isLoopback());
}

TEST(Endpoint, BracketsV6) {
  EXPECT_EQ((Endpoint{*IpAddress::parse("::1"), 80}).toString(), "[::1]:80");
  EXPECT_EQ((Endpoint{*IpAddress::parse("127.0.0.1"), 8080}).toString(), "127.0.0.1:8080");
}

TEST(Cidr, ContainsAndNormalises) {
  auto c = Cidr::parse("10.1.2.3/8");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->toString(), "10.0.0.0/8");
  EXPECT_TRUE(c->contains(*IpAddress::parse("10.200.0.1")));
  EXPECT_TRUE(c->contains(*IpAddress::parse("::ffff:10.9.9.9")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("fd00::1")));
  auto odd = Cidr::parse("192.168.4.0/22");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(*IpAddress::parse("192.168.7.255")));
  EXPECT_FALSE(odd->contains(*IpAddress::parse("192.168.8.0")));
  auto host = Cidr::parse("fd00::5");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefixLength, 128u);
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/8x"));
}

}  // namespace
}  // namespace waitwatch
