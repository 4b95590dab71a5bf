// SPDX-License-Identifier: Apache-2.0
// The inet_diag reply parser over real replies recorded from the kernel (fixtures/), and over
// malformed and truncated variants of them.
#include "core/netlink_parser.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fixture_util.hpp"

namespace waitwatch {
namespace {

using testing::loadDump;
using testing::loadManifest;
using testing::ManifestEntry;
using testing::messageLength;
using testing::messageOffsets;
using testing::messageType;
using Buffer = std::vector<std::byte>;

constexpr std::uint32_t kRecordedSeq = 7;  // record_dump.cpp's request sequence number

struct Parsed {
  std::vector<SocketRecord> records;
  std::vector<DumpBufferResult> results;
};

Parsed parseParts(const std::vector<Buffer>& parts, const DumpParseOptions& opts = {}) {
  Parsed p;
  for (const auto& part : parts) {
    p.results.push_back(
        parseSockDiagBuffer(part, opts, [&](const SocketRecord& r) { p.records.push_back(r); }));
  }
  return p;
}

DumpBufferResult parseOne(const Buffer& buf, std::vector<SocketRecord>* out = nullptr,
                          const DumpParseOptions& opts = {}) {
  return parseSockDiagBuffer(buf, opts, [&](const SocketRecord& r) {
    if (out) out->push_back(r);
  });
}

void put16(Buffer& b, std::size_t off, std::uint16_t v) {
  std::memcpy(b.data() + off, &v, 2);
}
void put32(Buffer& b, std::size_t off, std::uint32_t v) {
  std::memcpy(b.data() + off, &v, 4);
}

// The first SOCK_DIAG_BY_FAMILY message of a fixture, on its own, as a one-message buffer.
Buffer firstSocketMessage() {
  const Buffer part = loadDump("tcp6")[0];
  const auto offs = messageOffsets(part);
  for (std::size_t off : offs) {
    if (messageType(part, off) == kSockDiagByFamily) {
      const auto len = messageLength(part, off);
      return Buffer(part.begin() + static_cast<std::ptrdiff_t>(off),
                    part.begin() + static_cast<std::ptrdiff_t>(off + len));
    }
  }
  throw std::runtime_error("no socket message in tcp6 fixture");
}

std::string stateText(const SocketRecord& r) {
  return std::string(stateName(r.state));
}

void expectMatchesManifest(const SocketRecord& r, const ManifestEntry& e) {
  SCOPED_TRACE(e.local + " -> " + e.remote);
  EXPECT_EQ(r.family, e.family == 4 ? AddressFamily::V4 : AddressFamily::V6);
  EXPECT_EQ(stateText(r), e.state);
  EXPECT_EQ(std::to_string(r.uid), e.uid);
  EXPECT_EQ(std::to_string(r.inode), e.inode);
  if (e.cookie != "-") {
    EXPECT_EQ(std::to_string(r.cookie), e.cookie);
  }
  EXPECT_NE(r.cookie, 0u);
  EXPECT_EQ(std::to_string(r.recvQ), e.recvq);
  EXPECT_EQ(std::to_string(r.sendQ), e.sendq);
  EXPECT_EQ(std::to_string(static_cast<int>(r.timer)), e.timer);
  if (r.state == TcpState::TimeWait) {
    // TIME_WAIT lasts 60 s on Linux; the recorder dumped within seconds of making it.
    EXPECT_GT(r.timerRemainingMs, 50'000u);
    EXPECT_LE(r.timerRemainingMs, 60'000u);
  } else {
    EXPECT_EQ(r.timerRemainingMs, 0u);  // no timer pending on idle sockets
  }
  if (e.cgroup == "none") {
    EXPECT_FALSE(r.hasCgroupId);
  } else {
    ASSERT_TRUE(r.hasCgroupId);
    EXPECT_EQ(std::to_string(r.cgroupId), e.cgroup);
  }
}

void checkDumpAgainstManifest(const std::string& dump, int family) {
  const auto parts = loadDump(dump);
  const Parsed p = parseParts(parts, {.expectSeq = kRecordedSeq});
  for (std::size_t i = 0; i + 1 < p.results.size(); ++i) {
    EXPECT_EQ(p.results[i].status, DumpBufferStatus::Continue) << "part " << i;
    EXPECT_FALSE(p.results[i].doneSeen);
  }
  EXPECT_EQ(p.results.back().status, DumpBufferStatus::Done);
  EXPECT_TRUE(p.results.back().doneSeen);

  std::map<std::string, const SocketRecord*> byKey;
  for (const auto& r : p.records) {
    const std::string key = r.local.toString() + " " + r.remote.toString();
    EXPECT_TRUE(byKey.emplace(key, &r).second) << "duplicate socket " << key;
  }
  std::size_t expected = 0;
  for (const auto& e : loadManifest()) {
    if (e.family != family) continue;
    ++expected;
    auto it = byKey.find(e.local + " " + e.remote);
    ASSERT_NE(it, byKey.end()) << "socket missing from the dump: " << e.local << " " << e.remote;
    expectMatchesManifest(*it->second, e);
  }
  // The namespace held only the recorder's sockets: nothing more, nothing less.
  EXPECT_EQ(p.records.size(), expected);
}

TEST(NetlinkParser, Ipv4DumpMatchesWhatTheRecorderBuilt) {
  checkDumpAgainstManifest("tcp4", 4);
}
TEST(NetlinkParser, Ipv6DumpMatchesWhatTheRecorderBuilt) {
  checkDumpAgainstManifest("tcp6", 6);
}

TEST(NetlinkParser, KnownSocketsDecodeExactly) {
  // Spot checks written out, independent of the manifest format.
  Parsed p = parseParts(loadDump("tcp6"));
  const SocketRecord* listener = nullptr;
  const SocketRecord* mapped = nullptr;
  const SocketRecord* otherUser = nullptr;
  for (const auto& r : p.records) {
    if (r.state == TcpState::Listen && r.local.port == 8443) listener = &r;
    if (r.local.port == 9000 && r.state == TcpState::Established) mapped = &r;
    if (r.local.port == 40100) otherUser = &r;
  }
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->local.toString(), "[::1]:8443");
  EXPECT_EQ(listener->sendQ, 32u);  // the backlog
  ASSERT_NE(mapped, nullptr);
  EXPECT_EQ(mapped->family, AddressFamily::V6);
  EXPECT_EQ(mapped->remote.toString(), "[::ffff:127.0.0.1]:40200");
  EXPECT_EQ(mapped->remote.address.unmapped().toString(), "127.0.0.1");
  ASSERT_NE(otherUser, nullptr);
  EXPECT_EQ(otherUser->uid, 1234u);
  EXPECT_EQ(otherUser->state, TcpState::Established);

  Parsed p4 = parseParts(loadDump("tcp4"));
  StateCounts counts;
  for (const auto& r : p4.records)
    counts[r.state] += 1;
  EXPECT_EQ(counts[TcpState::Listen], 3u);
  // 2 accepted pairs, the queued connection's two ends, the dual-stack client, 200 bulk pairs.
  EXPECT_EQ(counts[TcpState::Established], 4u + 2u + 1u + 400u);
  EXPECT_EQ(counts[TcpState::CloseWait], 1u);
  EXPECT_EQ(counts[TcpState::FinWait2], 1u);
  EXPECT_EQ(counts[TcpState::TimeWait], 1u);
  EXPECT_EQ(counts.total(), p4.records.size());
}

TEST(NetlinkParser, MultipartReplyCountsEveryMessage) {
  const auto parts = loadDump("tcp4");
  ASSERT_GE(parts.size(), 3u) << "the recorder makes the IPv4 reply span several buffers";
  const Parsed p = parseParts(parts);
  std::uint32_t sockets = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(p.results[i].messages, messageOffsets(parts[i]).size()) << "part " << i;
    EXPECT_EQ(p.results[i].skipped, 0u);
    sockets += p.results[i].sockets;
  }
  EXPECT_EQ(sockets, p.records.size());
  EXPECT_GT(p.results[1].sockets, 0u);
}

TEST(NetlinkParser, KernelStateFilterReply) {
  const Parsed p = parseParts(loadDump("tcp4-cw-tw"));
  EXPECT_EQ(p.results.back().status, DumpBufferStatus::Done);
  std::multiset<TcpState> states;
  for (const auto& r : p.records)
    states.insert(r.state);
  EXPECT_EQ(states, (std::multiset<TcpState>{TcpState::TimeWait, TcpState::CloseWait}));
}

TEST(NetlinkParser, KernelErrorReply) {
  const auto parts = loadDump("error-einval");
  const auto r = parseOne(parts[0]);
  EXPECT_EQ(r.status, DumpBufferStatus::Error);
  EXPECT_EQ(r.error.errnum, EINVAL);
  EXPECT_NE(r.error.message.find("netlink message 0 at offset 0"), std::string::npos)
      << r.error.message;
  EXPECT_NE(r.error.message.find("Invalid argument"), std::string::npos) << r.error.message;
}

TEST(NetlinkParser, DoneCarryingAnErrorFails) {
  Buffer done = loadDump("tcp6").back();  // the recorded NLMSG_DONE alone
  ASSERT_EQ(messageType(done, 0), kNlmsgDone);
  ASSERT_EQ(parseOne(done).status, DumpBufferStatus::Done);
  put32(done, 16, static_cast<std::uint32_t>(-ENOBUFS));
  const auto r = parseOne(done);
  EXPECT_EQ(r.status, DumpBufferStatus::Error);
  EXPECT_EQ(r.error.errnum, ENOBUFS);
  EXPECT_TRUE(r.doneSeen);
}

TEST(NetlinkParser, InterruptedDumpStopsDelivering) {
  Buffer part = loadDump("tcp4")[1];
  const auto offs = messageOffsets(part);
  ASSERT_GT(offs.size(), 5u);
  put16(part, offs[3] + 6, 0x2 /*NLM_F_MULTI*/ | kNlmFlagDumpIntr);
  std::vector<SocketRecord> got;
  const auto r = parseOne(part, &got);
  EXPECT_EQ(r.status, DumpBufferStatus::Interrupted);
  EXPECT_FALSE(r.doneSeen);
  EXPECT_EQ(got.size(), 3u);  // the messages before the flagged one
  EXPECT_EQ(r.messages, offs.size());

  Buffer done = loadDump("tcp4").back();
  put16(done, 6, static_cast<std::uint16_t>(0x2 | kNlmFlagDumpIntr));
  const auto d = parseOne(done);
  EXPECT_EQ(d.status, DumpBufferStatus::Interrupted);
  EXPECT_TRUE(d.doneSeen);
}

TEST(NetlinkParser, ForeignSequenceAndPortAreSkipped) {
  const auto parts = loadDump("tcp4");
  std::uint32_t pid = 0;
  std::memcpy(&pid, parts[0].data() + 12, 4);
  const Parsed mine = parseParts(parts, {.expectSeq = kRecordedSeq, .expectPortId = pid});
  EXPECT_EQ(mine.results.back().status, DumpBufferStatus::Done);
  EXPECT_GT(mine.records.size(), 400u);

  const Parsed stale = parseParts(parts, {.expectSeq = kRecordedSeq + 1});
  EXPECT_TRUE(stale.records.empty());
  for (const auto& r : stale.results) {
    EXPECT_EQ(r.status, DumpBufferStatus::Continue);  // not even the NLMSG_DONE is ours
    EXPECT_EQ(r.skipped, r.messages);
  }
  const Parsed otherPort = parseParts(parts, {.expectPortId = pid + 1});
  EXPECT_TRUE(otherPort.records.empty());
}

TEST(NetlinkParser, CgroupIdCanBeIgnored) {
  const Parsed p = parseParts(loadDump("tcp6"), {.wantCgroupId = false});
  ASSERT_FALSE(p.records.empty());
  for (const auto& r : p.records)
    EXPECT_FALSE(r.hasCgroupId);
}

TEST(NetlinkParser, UnalignedBufferDecodesTheSame) {
  const Buffer part = loadDump("tcp4")[1];
  Buffer shifted(part.size() + 1);
  std::memcpy(shifted.data() + 1, part.data(), part.size());
  std::vector<SocketRecord> a;
  std::vector<SocketRecord> b;
  parseOne(part, &a);
  parseSockDiagBuffer(std::span<const std::byte>(shifted).subspan(1), {},
                      [&](const SocketRecord& r) { b.push_back(r); });
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST(NetlinkParser, UnmodelledStateIsSkippedNotFatal) {
  Buffer msg = firstSocketMessage();
  msg[16 + 1] = std::byte{13};  // idiag_state = TCP_BOUND_INACTIVE
  std::vector<SocketRecord> got;
  const auto r = parseOne(msg, &got);
  EXPECT_EQ(r.status, DumpBufferStatus::Continue);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(r.skipped, 1u);
}

TEST(NetlinkParser, EmptyBufferIsAnEmptyContinue) {
  const auto r = parseOne(Buffer{});
  EXPECT_EQ(r.status, DumpBufferStatus::Continue);
  EXPECT_EQ(r.messages, 0u);
}

struct Malformed {
  const char* name;
  void (*mutate)(Buffer&);
  const char* expect;  // substring of the error message
};

// Attribute offsets inside firstSocketMessage(): header 16 + inet_diag_msg 72.
constexpr std::size_t kFirstAttr = 16 + 72;

const Malformed kMalformed[] = {
    {"nlmsg_len below the header", [](Buffer& b) { put32(b, 0, 8); }, "shorter than the 16-byte"},
    {"nlmsg_len past the buffer",
     [](Buffer& b) { put32(b, 0, static_cast<std::uint32_t>(b.size() + 4)); }, "exceeds the"},
    {"socket payload too short",
     [](Buffer& b) {
       b.resize(16 + 40);
       put32(b, 0, 16 + 40);
     },
     "an inet_diag_msg needs 72"},
    {"unknown address family", [](Buffer& b) { b[16] = std::byte{7}; },
     "socket family 7 is neither"},
    {"attribute shorter than its header", [](Buffer& b) { put16(b, kFirstAttr, 2); },
     "has rta_len 2"},
    {"attribute past its message",
     [](Buffer& b) { put16(b, kFirstAttr, static_cast<std::uint16_t>(b.size())); }, "has rta_len"},
    {"unexpected message type", [](Buffer& b) { put16(b, 4, 0x99); },
     "unexpected message type 153"},
    {"overrun", [](Buffer& b) { put16(b, 4, kNlmsgOverrun); }, "NLMSG_OVERRUN"},
    {"error message without a code",
     [](Buffer& b) {
       put16(b, 4, kNlmsgError);
       b.resize(18);
       put32(b, 0, 18);
     },
     "too short for the error code"},
    {"error code out of range",
     [](Buffer& b) {
       put16(b, 4, kNlmsgError);
       put32(b, 16, static_cast<std::uint32_t>(INT_MIN));
     },
     "impossible error code"},
};

TEST(NetlinkParser, MalformedMessagesGiveClearErrors) {
  for (const auto& m : kMalformed) {
    SCOPED_TRACE(m.name);
    Buffer msg = firstSocketMessage();
    // Put one good message first so the error must name message 1 and its offset.
    Buffer buf = msg;
    buf.resize((buf.size() + 3) & ~std::size_t{3});
    const std::size_t second = buf.size();
    Buffer bad = msg;
    m.mutate(bad);
    buf.insert(buf.end(), bad.begin(), bad.end());
    std::vector<SocketRecord> got;
    const auto r = parseOne(buf, &got);
    ASSERT_EQ(r.status, DumpBufferStatus::Error);
    EXPECT_NE(r.error.errnum, 0);
    EXPECT_NE(r.error.message.find("netlink message 1 at offset " + std::to_string(second)),
              std::string::npos)
        << r.error.message;
    EXPECT_NE(r.error.message.find(m.expect), std::string::npos) << r.error.message;
    EXPECT_EQ(got.size(), 1u);  // the good message before it was delivered
  }
}

TEST(NetlinkParser, CgroupAttributeOfWrongSizeIsAnError) {
  Buffer msg = firstSocketMessage();
  // Find the INET_DIAG_CGROUP_ID attribute and claim it is 4 bytes long.
  std::size_t at = kFirstAttr;
  bool found = false;
  while (at + 4 <= msg.size()) {
    std::uint16_t len = 0;
    std::uint16_t type = 0;
    std::memcpy(&len, msg.data() + at, 2);
    std::memcpy(&type, msg.data() + at + 2, 2);
    if (type == kInetDiagCgroupId) {
      put16(msg, at, 8);
      found = true;
      break;
    }
    at += (len + 3u) & ~3u;
  }
  ASSERT_TRUE(found) << "the recorded socket carries INET_DIAG_CGROUP_ID";
  const auto r = parseOne(msg);
  EXPECT_EQ(r.status, DumpBufferStatus::Error);
  EXPECT_NE(r.error.message.find("INET_DIAG_CGROUP_ID attribute at offset " + std::to_string(at)),
            std::string::npos)
      << r.error.message;
  EXPECT_NE(r.error.message.find("expected 8"), std::string::npos);
}

// Every prefix of every recorded buffer: either an error naming the cut message, or (when the
// cut falls exactly between messages) a clean partial that delivered exactly the sockets of
// the whole messages before it. Never a crash, never a read past the prefix (ASan checks that
// in the sanitizer build, since each prefix is copied into a buffer of exactly that size).
TEST(NetlinkParser, EveryTruncationIsAnErrorOrACleanPartial) {
  std::size_t checked = 0;
  for (const char* dump : {"tcp4", "tcp6", "tcp4-cw-tw", "error-einval"}) {
    for (const auto& part : loadDump(dump)) {
      const auto offs = messageOffsets(part);
      for (std::size_t len = 0; len < part.size(); ++len) {
        const Buffer prefix(part.begin(), part.begin() + static_cast<std::ptrdiff_t>(len));
        std::uint32_t visited = 0;
        const auto r = parseSockDiagBuffer(prefix, {}, [&](const SocketRecord&) { ++visited; });
        EXPECT_EQ(visited, r.sockets);
        // Whole messages that fit in the prefix, and how many of them are sockets.
        std::uint32_t whole = 0;
        std::uint32_t wholeSockets = 0;
        bool boundary = len == 0;
        for (std::size_t off : offs) {
          const std::size_t end = off + messageLength(part, off);
          if (end > len) break;
          ++whole;
          if (messageType(part, off) == kSockDiagByFamily) ++wholeSockets;
          if (end == len || ((end + 3) & ~std::size_t{3}) == len) boundary = true;
        }
        if (r.status == DumpBufferStatus::Error) {
          EXPECT_EQ(r.error.errnum, EBADMSG) << dump << " len " << len;
          EXPECT_NE(r.error.message.find("netlink message " + std::to_string(whole)),
                    std::string::npos)
              << dump << " len " << len << ": " << r.error.message;
          EXPECT_EQ(r.sockets, wholeSockets) << dump << " len " << len;
        } else {
          EXPECT_TRUE(boundary) << dump << " len " << len << " parsed without error mid-message";
          EXPECT_EQ(r.messages, whole) << dump << " len " << len;
          EXPECT_EQ(r.sockets, wholeSockets) << dump << " len " << len;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 50'000u);
}

}  // namespace
}  // namespace waitwatch
