// SPDX-License-Identifier: Apache-2.0
// The sampler's answer to an interrupted dump (NLM_F_DUMP_INTR), which inet_diag never flags
// on demand: a fake kernel on a SOCK_SEQPACKET pair replays a recorded IPv4 dump, flagged
// interrupted for the first attempts, to the real sampler.
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/netlink_parser.hpp"
#include "fixture_util.hpp"
#include "netlink/sampler.hpp"

namespace waitwatch {
namespace {

constexpr std::uint32_t kRecordedSeq = 7;  // record_dump.cpp's request sequence number

// Answers each dump request with the recorded reply, its messages given the request's sequence
// number and port id 0 (the kernel's), every message flagged NLM_F_DUMP_INTR while fewer than
// `interrupted` requests have been answered.
class FakeKernel {
 public:
  FakeKernel(UniqueFd fd, std::vector<std::vector<std::byte>> reply, int interrupted)
      : fd_(std::move(fd)),
        reply_(std::move(reply)),
        interrupted_(interrupted),
        thread_([this] { serve(); }) {}
  ~FakeKernel() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  [[nodiscard]] int requests() const { return requests_; }

 private:
  void serve() {
    char request[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_.get(), request, sizeof request, 0);
      if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) return;
      nlmsghdr req{};
      std::memcpy(&req, request, sizeof req);
      const bool flag = requests_++ < interrupted_;
      for (std::vector<std::byte> part : reply_) {
        for (std::size_t off : testing::messageOffsets(part)) {
          nlmsghdr h{};
          std::memcpy(&h, part.data() + off, sizeof h);
          h.nlmsg_seq = req.nlmsg_seq;
          h.nlmsg_pid = 0;
          if (flag) h.nlmsg_flags |= NLM_F_DUMP_INTR;
          std::memcpy(part.data() + off, &h, sizeof h);
        }
        if (::send(fd_.get(), part.data(), part.size(), MSG_NOSIGNAL) < 0) return;
      }
    }
  }

  UniqueFd fd_;
  std::vector<std::vector<std::byte>> reply_;
  int interrupted_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// The sockets of the recorded dump, as the parser reads it untouched.
std::size_t recordedSockets(const std::vector<std::vector<std::byte>>& reply) {
  std::size_t n = 0;
  for (const auto& part : reply) {
    (void)parseSockDiagBuffer(part, DumpParseOptions{.expectSeq = kRecordedSeq},
                              [&](const SocketRecord&) { ++n; });
  }
  return n;
}

struct DumpRun {
  Result<DumpStats> result = Error{};
  std::size_t visitedAfterLastRestart = 0;
  int restarts = 0;
  int requests = 0;
};

DumpRun dumpThroughFakeKernel(int interrupted) {
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  const auto reply = testing::loadDump("tcp4");
  DumpRun run;
  {
    FakeKernel kernel(UniqueFd(pair[1]), reply, interrupted);
    SockDiagSampler sampler = SockDiagSampler::overSocket(UniqueFd(pair[0]));
    run.result = sampler.dump(
        DumpOptions{.ipv6 = false}, [&](const SocketRecord&) { ++run.visitedAfterLastRestart; },
        [&] {
          ++run.restarts;
          run.visitedAfterLastRestart = 0;
        });
    run.requests = kernel.requests();
  }
  return run;
}

TEST(SamplerRestart, AnInterruptedDumpIsRestartedAndOnlyTheLastPassCounts) {
  const std::size_t expected = recordedSockets(testing::loadDump("tcp4"));
  ASSERT_GT(expected, 0u);
  const DumpRun run = dumpThroughFakeKernel(2);
  ASSERT_TRUE(run.result.ok()) << run.result.error().message;
  EXPECT_EQ(run.result->retries, 2u);
  EXPECT_EQ(run.restarts, 2);
  EXPECT_EQ(run.requests, 3);
  EXPECT_EQ(run.result->sockets, expected);
  EXPECT_EQ(run.visitedAfterLastRestart, expected);
}

TEST(SamplerRestart, GivesUpAfterItsRestartsWithAClearError) {
  const DumpRun run = dumpThroughFakeKernel(1000);
  ASSERT_FALSE(run.result.ok());
  EXPECT_EQ(run.result.error().errnum, EAGAIN);
  EXPECT_EQ(run.result.error().message, "inet_diag dump interrupted (NLM_F_DUMP_INTR) " +
                                            std::to_string(SockDiagSampler::kMaxRestarts) +
                                            " times in a row");
  EXPECT_EQ(run.restarts, static_cast<int>(SockDiagSampler::kMaxRestarts) - 1);
  EXPECT_EQ(run.requests, static_cast<int>(SockDiagSampler::kMaxRestarts));
}

TEST(SamplerRestart, AnUninterruptedDumpIsReadOnce) {
  const DumpRun run = dumpThroughFakeKernel(0);
  ASSERT_TRUE(run.result.ok()) << run.result.error().message;
  EXPECT_EQ(run.result->retries, 0u);
  EXPECT_EQ(run.restarts, 0);
  EXPECT_EQ(run.requests, 1);
}

}  // namespace
}  // namespace waitwatch
