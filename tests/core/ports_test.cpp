// SPDX-License-Identifier: Apache-2.0
#include "core/ports.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

TEST(PortClass, BoundariesFollowIana) {
  EXPECT_EQ(classifyPort(0), PortClass::WellKnown);
  EXPECT_EQ(classifyPort(1023), PortClass::WellKnown);
  EXPECT_EQ(classifyPort(1024), PortClass::Registered);
  EXPECT_EQ(classifyPort(49151), PortClass::Registered);
  EXPECT_EQ(classifyPort(49152), PortClass::Ephemeral);
  EXPECT_EQ(classifyPort(65535), PortClass::Ephemeral);
  EXPECT_EQ(parsePortClass("registered"), PortClass::Registered);
  EXPECT_FALSE(parsePortClass("dynamic"));
}

TEST(EphemeralRange, DefaultIsLinuxDefault) {
  EphemeralRange r;
  EXPECT_EQ(r.usableCount(), 60999u - 32768u + 1u);
  EXPECT_TRUE(r.contains(32768));
  EXPECT_FALSE(r.contains(61000));
}

TEST(EphemeralRange, SubtractsReservedPorts) {
  auto r = EphemeralRange::fromSysctl("32768\t60999\n", "40000,50000-50009,1000\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usableCount(), (60999u - 32768u + 1u) - 11u);
  EXPECT_FALSE(r->contains(40000));
  EXPECT_FALSE(r->contains(50005));
  EXPECT_TRUE(r->contains(50010));
}

TEST(EphemeralRange, RejectsMalformedSysctl) {
  EXPECT_FALSE(EphemeralRange::fromSysctl("32768", ""));
  EXPECT_FALSE(EphemeralRange::fromSysctl("60999 32768", ""));
  EXPECT_FALSE(EphemeralRange::fromSysctl("1 70000", ""));
  EXPECT_FALSE(EphemeralRange::fromSysctl("1 2", "5-3"));
  EXPECT_FALSE(EphemeralRange::fromSysctl("1 2", "x"));
  EXPECT_TRUE(EphemeralRange::fromSysctl("1 2", "\n"));
}

}  // namespace
}  // namespace waitwatch
