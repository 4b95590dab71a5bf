// SPDX-License-Identifier: Apache-2.0
#include "service/bounded_queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

namespace waitwatch {
namespace {
using namespace std::chrono_literals;

// An item counts against the capacity from push (or reserve) until the worker's done(), not
// only while it waits: that bounds the work in flight, not just the queue.
TEST(BoundedQueue, ThePlaceIsFreeOnlyOnceTheWorkerIsDone) {
  BoundedQueue<std::string> q(2);
  EXPECT_TRUE(q.push("a"));
  EXPECT_TRUE(q.reserve());
  EXPECT_FALSE(q.push("c"));
  EXPECT_FALSE(q.reserve());
  EXPECT_EQ(q.submit("b"), std::nullopt);
  EXPECT_EQ(q.pop(), "a");
  EXPECT_FALSE(q.push("c"));  // "a" is being handled
  q.done();
  EXPECT_TRUE(q.push("c"));
  EXPECT_EQ(q.pop(), "b");
  EXPECT_EQ(q.pop(), "c");
}

// close(): nothing new is taken, the worker drains what is queued and then ends.
TEST(BoundedQueue, CloseDrainsThenEndsTheWorker) {
  BoundedQueue<int> q(8);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.push(2));
  ASSERT_TRUE(q.reserve());
  q.close();
  EXPECT_FALSE(q.push(3));
  EXPECT_FALSE(q.reserve());
  EXPECT_EQ(q.submit(4), 4);  // reserved before the close: handed back
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_EQ(q.pop(), std::nullopt);
}

// A worker waiting in pop() wakes for an item and for the close.
TEST(BoundedQueue, AWaitingWorkerWakesForItemsAndForTheClose) {
  BoundedQueue<int> q(4);
  auto worker = std::async(std::launch::async, [&] {
    int sum = 0;
    while (auto item = q.pop()) {
      sum += *item;
      q.done();
    }
    return sum;
  });
  for (int i = 1; i <= 3; ++i) {
    while (!q.push(i))
      std::this_thread::yield();
  }
  q.close();
  ASSERT_EQ(worker.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(worker.get(), 6);
}

// closeAndTake() waits for a reserved place to be submitted (its connection is suspended and
// must be answered by someone), hands back what was queued, and the worker ends at once.
TEST(BoundedQueue, CloseAndTakeWaitsForReservationsAndHandsBackTheQueue) {
  BoundedQueue<int> q(4);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.reserve());
  auto taker = std::async(std::launch::async, [&] { return q.closeAndTake(); });
  while (!q.closed())
    std::this_thread::yield();
  EXPECT_EQ(taker.wait_for(100ms), std::future_status::timeout);
  EXPECT_EQ(q.submit(2), 2);  // closed meanwhile: the submitter answers it
  ASSERT_EQ(taker.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(taker.get(), std::deque<int>{1});
  EXPECT_EQ(q.pop(), std::nullopt);
}

}  // namespace
}  // namespace waitwatch
