// SPDX-License-Identifier: Apache-2.0
// The daemon's log line about namespaces that share the host's TCP hash table.
#include "service/collector_source.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

TEST(SharedTcpHashNote, NamesHowManyShareOfHowManyAndTheSysctl) {
  EXPECT_EQ(sharedTcpHashNote(3, 24, 262144),
            "sockets: 3 of the 24 namespaces polled share the host's TCP established-hash table "
            "(262144 buckets) instead of having one of their own: each poll reads that whole table "
            "once for each of them, passing over the sockets of every other namespace in it. "
            "net.ipv4.tcp_child_ehash_entries (Linux >= 6.1) gives namespaces made after it is "
            "set tables of their own (waitwatch_kernel_tcp_hash_shared shows which share)");
  const std::string one = sharedTcpHashNote(1, 5, 1024);
  EXPECT_EQ(one.rfind("sockets: 1 of the 5 namespaces polled shares the host's", 0), 0u) << one;
  EXPECT_NE(one.find("once for it,"), std::string::npos) << one;
  const std::string alone = sharedTcpHashNote(1, 1, 1024);
  EXPECT_EQ(alone.rfind("sockets: the one namespace polled shares the host's", 0), 0u) << alone;
}

}  // namespace
}  // namespace waitwatch
