// SPDX-License-Identifier: Apache-2.0
#include "proc/closer_ledger.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

ProcessKey key(std::int32_t pid, std::uint64_t start) {
  return ProcessKey{pid, start};
}

TEST(CloserLedger, ARecordedCloseChargesItsTimeWaitSocketUntilItIsGone) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const auto [curl, fresh] = ledger.intern(key(100, 7), "curl");
  EXPECT_TRUE(fresh);
  ledger.recordClose(1001, curl);
  EXPECT_EQ(ledger.closerOf(1001), curl);
  ledger.endPoll();

  // The process has exited; its TIME_WAIT socket is still charged to it, for as long as dumps
  // show the socket.
  for (int poll = 0; poll < 12; ++poll) {
    ledger.beginPoll(1);
    ASSERT_EQ(ledger.closerOf(1001), curl) << "poll " << poll;
    ledger.endPoll();
  }
  EXPECT_EQ(ledger.closer(curl).comm, "curl");
  EXPECT_EQ(ledger.closer(curl).key, key(100, 7));

  // The TIME_WAIT socket is gone: its entry and then the closer go too.
  ledger.beginPoll(1);
  ledger.endPoll();
  EXPECT_EQ(ledger.sockets(), 0u);
  EXPECT_EQ(ledger.closers(), 0u);
  ledger.beginPoll(1);
  EXPECT_EQ(ledger.closerOf(1001), kUnknownCloser);
  ledger.endPoll();
}

TEST(CloserLedger, AReusedPidIsAnotherCloser) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const std::uint32_t first = ledger.intern(key(100, 7), "worker").first;
  const std::uint32_t second = ledger.intern(key(100, 9000), "worker").first;
  EXPECT_NE(first, second);
  EXPECT_EQ(ledger.intern(key(100, 7), "worker").first, first);
  // The same pid and start time under another name (exec) is another closer too.
  EXPECT_NE(ledger.intern(key(100, 7), "php").first, first);
  ledger.recordClose(1, first);
  ledger.recordClose(2, second);
  EXPECT_EQ(ledger.closerOf(1), first);
  EXPECT_EQ(ledger.closerOf(2), second);
  ledger.endPoll();
}

TEST(CloserLedger, ACloseBeforeItsSocketIsDumpedIsKeptForOnePoll) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const std::uint32_t id = ledger.intern(key(5, 1), "client").first;
  ledger.recordClose(77, id);  // the dump had passed the socket's bucket already
  ledger.endPoll();
  ledger.beginPoll(1);
  EXPECT_EQ(ledger.closerOf(77), id);  // the next dump shows it
  ledger.endPoll();

  // A close whose socket no dump ever shows (reset, not TIME_WAIT) is forgotten after that.
  ledger.beginPoll(1);
  ledger.recordClose(78, ledger.intern(key(5, 1), "client").first);
  ledger.endPoll();
  ledger.beginPoll(1);
  ledger.endPoll();
  ledger.beginPoll(1);
  ledger.endPoll();
  EXPECT_EQ(ledger.sockets(), 0u);
}

TEST(CloserLedger, OwnershipChargesTheLastSoleOwnerAndNeverOverridesARecordedClose) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const std::uint32_t parent = ledger.intern(key(10, 1), "server").first;
  const std::uint32_t child = ledger.intern(key(11, 2), "server").first;
  ledger.rememberOwner(500, parent);
  ledger.endPoll();
  // The connection was passed to the child, which alone holds it now.
  ledger.beginPoll(1);
  ledger.rememberOwner(500, child);
  ledger.endPoll();
  ledger.beginPoll(1);
  EXPECT_EQ(ledger.closerOf(500), child);
  ledger.endPoll();

  // A recorded close says who really closed it.
  ledger.beginPoll(1);
  const std::uint32_t closer = ledger.intern(key(12, 3), "worker").first;
  ledger.rememberOwner(600, parent);
  ledger.recordClose(600, closer);
  ledger.rememberOwner(600, parent);
  EXPECT_EQ(ledger.closerOf(600), closer);
  ledger.endPoll();
}

TEST(CloserLedger, ALiveSocketNoLongerSeenIsForgotten) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const std::uint32_t id = ledger.intern(key(10, 1), "app").first;
  for (std::uint64_t c = 1; c <= 3000; ++c)
    ledger.rememberOwner(c, id);
  ledger.endPoll();
  EXPECT_EQ(ledger.sockets(), 3000u);
  // The connections were reset (never TIME_WAIT): no dump shows them any more.
  ledger.beginPoll(3000);
  ledger.endPoll();
  EXPECT_EQ(ledger.sockets(), 0u);
  EXPECT_EQ(ledger.closers(), 0u);
}

TEST(CloserLedger, FreedCloserIdsAreReusedWithFreshInfo) {
  CloserLedger ledger;
  ledger.beginPoll(0);
  const std::uint32_t a = ledger.intern(key(1, 1), "a").first;
  ledger.closer(a).unit = "a.service";
  ledger.endPoll();
  ledger.beginPoll(0);
  ledger.endPoll();  // a poll in which nothing named it: freed
  EXPECT_EQ(ledger.closers(), 0u);
  ledger.beginPoll(0);
  const auto [b, fresh] = ledger.intern(key(2, 2), "b");
  EXPECT_TRUE(fresh);
  EXPECT_EQ(b, a);
  EXPECT_EQ(ledger.closer(b).comm, "b");
  EXPECT_TRUE(ledger.closer(b).unit.empty());
  ledger.endPoll();
}

}  // namespace
}  // namespace waitwatch
