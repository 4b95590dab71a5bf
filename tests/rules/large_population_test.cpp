// SPDX-License-Identifier: Apache-2.0
// evaluate() at 500,000 CLOSE_WAIT sockets: linear work, no allocation per socket. This binary
// counts every heap allocation (global operator new) to prove the second point; it prints the
// time of a steady-state poll for the record (bench/ measures it properly).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "config/default_config.hpp"
#include "engine_harness.hpp"
#include "support/snapshot_builder.hpp"

namespace {
std::atomic<std::size_t> gAllocations{0};
}  // namespace

void* operator new(std::size_t n) {
  gAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace waitwatch::testing {
namespace {
using namespace std::chrono_literals;

constexpr std::size_t kSockets = 500'000;
constexpr std::size_t kProcesses = 1'000;

// Written directly (not through the text-parsing builder helpers) to keep set-up fast.
Snapshot bigSnapshot() {
  SnapshotBuilder b;
  for (std::size_t p = 0; p < kProcesses; ++p) {
    (void)b.process(proc(static_cast<std::int32_t>(1000 + p), "worker-" + std::to_string(p % 10))
                        .inUnit("app" + std::to_string(p % 50) + ".service")
                        .listening({8080}));
  }
  Snapshot s = b.build();
  s.closeWait.reserve(kSockets);
  s.ownerLinks.reserve(kSockets);
  AddressInterner addresses;
  const std::uint32_t local = addresses.intern(ip("10.0.0.1"), s.addresses);
  for (std::size_t i = 0; i < kSockets; ++i) {
    CloseWaitSocket c;
    c.cookie = 0x1000'0000ull + i;
    c.netns = 0;
    c.localAddress = local;
    c.localPort = 8080;
    c.remoteAddress =
        addresses.intern(IpAddress::v4({10, 2, static_cast<std::uint8_t>(i >> 8 & 0xff),
                                        static_cast<std::uint8_t>(i & 0xff)}),
                         s.addresses);
    c.remotePort = static_cast<std::uint16_t>(30000 + i % 30000);
    c.ownerBegin = static_cast<std::uint32_t>(s.ownerLinks.size());
    c.ownerCount = 1;
    s.ownerLinks.push_back(static_cast<std::uint32_t>(i % kProcesses));
    s.closeWait.push_back(c);
  }
  s.namespaces[0].states[TcpState::CloseWait] = kSockets;
  return s;
}

TEST(LargePopulation, HalfAMillionCloseWaitSocketsWithoutPerSocketAllocation) {
  auto config = compileConfig(embeddedDefaultConfig(), kEmbeddedConfigOrigin);
  ASSERT_TRUE(config);
  config->rules[0].forDuration = Duration::zero();
  Engine engine(*config);
  const Snapshot s = bigSnapshot();

  (void)engine.evaluate(s, at(0));  // warm-up: the cookie table is sized here
  EXPECT_EQ(engine.trackedSockets(), kSockets);

  const std::size_t before = gAllocations.load();
  const auto start = std::chrono::steady_clock::now();
  const auto alerts = engine.evaluate(s, at(400));  // 5 minutes old: every process fires
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const std::size_t allocations = gAllocations.load() - before;

  ASSERT_EQ(alerts.size(), kProcesses);
  EXPECT_EQ(alerts[0].count, kSockets / kProcesses);
  // Allocation follows groups and alerts (a few dozen each), never the 500,000 sockets.
  EXPECT_LT(allocations, kProcesses * 60) << allocations;
  std::printf(
      "steady-state evaluate, %zu CLOSE_WAIT sockets, %zu processes, %zu alerts: %.1f ms, "
      "%zu allocations\n",
      kSockets, kProcesses, alerts.size(),
      std::chrono::duration<double, std::milli>(elapsed).count(), allocations);

  // A quiet steady poll (alerts already firing, no transitions) allocates less still.
  const std::size_t before2 = gAllocations.load();
  const auto start2 = std::chrono::steady_clock::now();
  EXPECT_TRUE(engine.evaluate(s, at(405)).empty());
  const auto elapsed2 = std::chrono::steady_clock::now() - start2;
  const std::size_t allocations2 = gAllocations.load() - before2;
  EXPECT_LT(allocations2, kProcesses * 40) << allocations2;
  std::printf("quiet evaluate: %.1f ms, %zu allocations\n",
              std::chrono::duration<double, std::milli>(elapsed2).count(), allocations2);

  // The daemon's per-process oldest age, from the same poll.
  const auto start3 = std::chrono::steady_clock::now();
  const auto oldest = engine.oldestCloseWaitByProcess(s, at(405));
  const auto elapsed3 = std::chrono::steady_clock::now() - start3;
  ASSERT_EQ(oldest.size(), kProcesses);
  for (const SocketAge& a : oldest)
    ASSERT_EQ(a, (SocketAge{405s, true}));
  std::printf("oldestCloseWaitByProcess: %.1f ms\n",
              std::chrono::duration<double, std::milli>(elapsed3).count());
}

}  // namespace
}  // namespace waitwatch::testing
