// SPDX-License-Identifier: Apache-2.0
// The BPF TCP socket walk against the inet_diag dump, on real sockets in private network
// namespaces: every state the test can hold (LISTEN with an accept queue, request sockets in
// SYN_RECV, SYN_SENT, ESTABLISHED with and without a holder, CLOSE_WAIT with unread bytes,
// FIN_WAIT2 in its timewait form, TIME_WAIT on both sides), IPv4 and IPv6, several namespaces:
// every field of every socket identical, each namespace's walk its own sockets only, and the
// Collector's snapshot the same whichever way it read them (and with the check mode's verdict).
#include "bpf/tcp_sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "attribution/collector.hpp"
#include "netlink/netns.hpp"
#include "netlink/sampler.hpp"
#include "netns_fixture.hpp"
#include "proc/sampler_check.hpp"

namespace waitwatch::testing {
namespace {

class TcpSocketsTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto loaded = bpf::TcpSocketIterator::load();
    if (!loaded) GTEST_SKIP() << "the iterator cannot load here: " << loaded.error().message;
    iterator_.emplace(std::move(*loaded));
    auto handle = openNamedNetworkNamespace(netns().name());
    ASSERT_TRUE(handle.ok()) << handle.error().message;
    handle_.emplace(std::move(*handle));
  }

  std::vector<SocketRecord> dump(const NetnsHandle& h) {
    std::vector<SocketRecord> out;
    auto sampler = SockDiagSampler::openInNamespace(h.fd.get());
    EXPECT_TRUE(sampler.ok()) << sampler.error().message;
    if (!sampler) return out;
    auto r = sampler->dump(
        {}, [&](const SocketRecord& s) { out.push_back(s); }, [&] { out.clear(); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return out;
  }

  std::vector<SocketRecord> walk(const NetnsHandle& h) {
    std::vector<SocketRecord> out;
    auto guard = NetnsGuard::enter(h.fd.get());
    EXPECT_TRUE(guard.ok()) << guard.error().message;
    if (!guard) return out;
    auto started = iterator_->start();
    EXPECT_TRUE(guard->restore().ok());
    EXPECT_TRUE(started.ok()) << started.error().message;
    if (!started) return out;
    auto r = iterator_->read(std::move(*started), true,
                             [&](const SocketRecord& s) { out.push_back(s); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return out;
  }

  std::optional<bpf::TcpSocketIterator> iterator_;
  std::optional<NetnsHandle> handle_;
};

// Sockets the farm does not make, opened by this test inside the namespace: a listener with an
// accept queue of established children nobody accepted, a TCP_DEFER_ACCEPT listener whose
// silent clients leave request sockets in SYN_RECV, and a connect whose SYNs are dropped.
struct ExtraSockets {
  std::vector<UniqueFd> fds;
};

UniqueFd tcpSocket(int family) {
  return UniqueFd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

void addExtraSockets(const NetnsHandle& h, ExtraSockets& out) {
  auto guard = NetnsGuard::enter(h.fd.get());
  ASSERT_TRUE(guard.ok()) << guard.error().message;
  for (const int family : {AF_INET, AF_INET6}) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    }
    auto setPort = [&](std::uint16_t port) {
      if (family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
      }
    };
    // 7701: three children in the accept queue; 7702 (TCP_DEFER_ACCEPT): three request sockets
    // waiting for data; 7703 (backlog 0): one child fills the queue, so the kernel drops the
    // next client's SYNs (tcp_conn_request(), sk_acceptq_is_full()) and it stays in SYN_SENT.
    for (const std::uint16_t port : std::initializer_list<std::uint16_t>{7701, 7702, 7703}) {
      UniqueFd listener = tcpSocket(family);
      ASSERT_TRUE(listener);
      const int one = 1;
      ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (port == 7702) {
        const int seconds = 60;
        ASSERT_EQ(
            ::setsockopt(listener.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds),
            0);
      }
      setPort(port);
      ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len), 0)
          << std::strerror(errno);
      ASSERT_EQ(::listen(listener.get(), port == 7703 ? 0 : 16), 0);
      for (int i = 0; i < (port == 7703 ? 1 : 3); ++i) {
        UniqueFd client = tcpSocket(family);
        ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len), 0)
            << std::strerror(errno);
        out.fds.push_back(std::move(client));
      }
      if (port == 7703) {
        UniqueFd pending(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        ASSERT_EQ(::connect(pending.get(), reinterpret_cast<sockaddr*>(&addr), len), -1);
        ASSERT_EQ(errno, EINPROGRESS);
        out.fds.push_back(std::move(pending));
      }
      out.fds.push_back(std::move(listener));
    }
  }
  ASSERT_TRUE(guard->restore().ok());
}

std::map<std::uint64_t, SocketRecord> byCookie(const std::vector<SocketRecord>& records) {
  std::map<std::uint64_t, SocketRecord> out;
  for (const SocketRecord& r : records)
    EXPECT_TRUE(out.emplace(r.cookie, r).second) << "cookie " << r.cookie << " twice";
  return out;
}

StateCounts countStates(const std::vector<SocketRecord>& records) {
  StateCounts c;
  for (const auto& r : records)
    c[r.state]++;
  return c;
}

TEST_F(TcpSocketsTest, EveryFieldOfEverySocketEqualsTheDump) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  ExtraSockets extra;
  ASSERT_NO_FATAL_FAILURE(addExtraSockets(*handle_, extra));

  const auto before = dump(*handle_);
  const auto walked = walk(*handle_);
  const auto after = dump(*handle_);
  const StateCounts counts = countStates(walked);
  // Every kind the test holds is there: the check below compares all of them.
  for (const TcpState s :
       {TcpState::Listen, TcpState::SynRecv, TcpState::SynSent, TcpState::Established,
        TcpState::CloseWait, TcpState::FinWait2, TcpState::TimeWait}) {
    EXPECT_GT(counts[s], 0u) << stateName(s) << " missing: " << describe(counts);
  }
  EXPECT_EQ(counts, countStates(before))
      << "walk " << describe(counts) << ", dump " << describe(countStates(before));

  const auto dumped = byCookie(before);
  const auto dumpedAfter = byCookie(after);
  const auto seen = byCookie(walked);
  ASSERT_EQ(seen.size(), dumped.size());
  bool queued = false, unowned = false;
  for (const auto& [cookie, d] : dumped) {
    const auto w = seen.find(cookie);
    ASSERT_NE(w, seen.end()) << "cookie " << cookie << " " << stateName(d.state)
                             << " not in the walk";
    // Time runs between the readings: the remaining time is checked by checkSampler below,
    // and a SYN or SYN-ACK retransmitted meanwhile leaves the walk equal to the later dump.
    auto untimed = [](SocketRecord r) {
      r.timerRemainingMs = 0;
      return r;
    };
    const auto later = dumpedAfter.find(cookie);
    const bool asLater = later != dumpedAfter.end() && untimed(later->second) == untimed(w->second);
    if (!asLater) {
      EXPECT_EQ(untimed(d), untimed(w->second))
          << stateName(d.state) << " " << d.local.toString() << " -> " << d.remote.toString()
          << " (cookie " << cookie << ")";
    }
    if (d.state == TcpState::Listen && d.recvQ == 3) queued = true;
    if (d.state == TcpState::Established && d.inode == 0) unowned = true;
  }
  EXPECT_TRUE(queued) << "no listener with its accept queue of 3";
  EXPECT_TRUE(unowned) << "no established child waiting in an accept queue";

  const SamplerCheck check = checkSampler(before, walked, after);
  EXPECT_EQ(check.faults(), 0u) << (check.examples.empty() ? "" : check.examples.front());
  // All but sockets whose SYN or SYN-ACK was retransmitted between the dumps (the two dumps
  // then differ, which proves nothing).
  EXPECT_GE(check.compared + counts[TcpState::SynSent] + counts[TcpState::SynRecv], walked.size());
}

TEST_F(TcpSocketsTest, EachNamespaceWalksItsOwnSockets) {
  auto other = NetworkNamespace::create();
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto otherHandle = openNamedNetworkNamespace(other->name());
  ASSERT_TRUE(otherHandle.ok()) << otherHandle.error().message;
  auto farmA = SockFarm::start(netns(), {"--family", "4", "--close-wait", "7", "--listen", "1"});
  ASSERT_TRUE(farmA.ok()) << farmA.error().message;
  auto farmB = SockFarm::start(*other, {"--family", "6", "--established", "4", "--time-wait", "5"});
  ASSERT_TRUE(farmB.ok()) << farmB.error().message;

  for (const NetnsHandle* h : {&*handle_, &*otherHandle}) {
    const auto walked = walk(*h);
    const auto dumped = dump(*h);
    EXPECT_EQ(countStates(walked), countStates(dumped)) << h->ref.label();
    for (const SocketRecord& r : walked) {
      EXPECT_EQ(r.family, h == &*handle_ ? AddressFamily::V4 : AddressFamily::V6);
    }
  }
  EXPECT_EQ(countStates(walk(*handle_))[TcpState::CloseWait], 7u);
  EXPECT_EQ(countStates(walk(*otherHandle))[TcpState::TimeWait], 5u);
}

// What the Collector makes of the sockets, without what differs between two polls by nature.
struct SnapshotFacts {
  std::vector<std::pair<std::uint64_t, StateCounts>> namespaces;
  std::vector<std::tuple<std::int32_t, StateCounts, CloseWaitKinds>> processes;
  std::vector<std::tuple<std::uint64_t, std::uint32_t, std::uint16_t, std::uint32_t>> closeWait;
  std::vector<std::tuple<bool, std::uint16_t, std::uint32_t, std::uint32_t, std::uint32_t>>
      timeWait;
  bool operator==(const SnapshotFacts&) const = default;
};

SnapshotFacts factsOf(const Snapshot& s) {
  SnapshotFacts f;
  for (const NetnsEntry& n : s.namespaces)
    f.namespaces.emplace_back(n.ref.inode, n.states);
  for (const ProcessEntry& p : s.processes)
    f.processes.emplace_back(p.info.key.pid, p.states, p.closeWaitKinds);
  for (const CloseWaitSocket& c : s.closeWait)
    f.closeWait.emplace_back(c.cookie, c.inode, c.localPort, c.ownerCount);
  for (const TimeWaitGroup& g : s.timeWait)
    f.timeWait.emplace_back(g.serverSide, g.destination.port, g.timeWait, g.live, g.created);
  std::sort(f.closeWait.begin(), f.closeWait.end());
  std::sort(f.timeWait.begin(), f.timeWait.end());
  return f;
}

TEST_F(TcpSocketsTest, TheCollectorBuildsTheSameSnapshotEitherWay) {
  auto farm = SockFarm::start(netns(), kMixedFarmArgs);
  ASSERT_TRUE(farm.ok()) << farm.error().message;
  auto collect = [&](SamplerMode mode, bool verify, CollectStats* stats) {
    CollectorOptions o;
    o.namespaces = NamespaceSelection::Named;
    o.names = {netns().name()};
    o.sampler = mode;
    o.verifySampler = verify;
    Collector c(o);
    EXPECT_EQ(c.walksSockets(), mode == SamplerMode::Auto) << c.samplerFallbackReason();
    // A poll interval longer than the test: every TIME_WAIT socket counts as new in each
    // collect, however slow the machine.
    auto s = c.collect(TimePoint{} + std::chrono::hours(1), std::chrono::seconds(60));
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (stats != nullptr) *stats = c.stats();
    return s.ok() ? *s : Snapshot{};
  };
  const Snapshot dumped = collect(SamplerMode::Netlink, false, nullptr);
  CollectStats walkStats;
  const Snapshot walked = collect(SamplerMode::Auto, false, &walkStats);
  CollectStats checkStats;
  const Snapshot checked = collect(SamplerMode::Auto, true, &checkStats);

  EXPECT_EQ(dumped.socketSource, SocketSource::Netlink);
  EXPECT_EQ(walked.socketSource, SocketSource::BpfIterator);
  EXPECT_EQ(walkStats.walkedNamespaces, 1u);
  ASSERT_FALSE(dumped.processes.empty());
  EXPECT_EQ(factsOf(walked), factsOf(dumped));
  EXPECT_EQ(factsOf(checked), factsOf(dumped));
  EXPECT_TRUE(checked.samplerChecked);
  EXPECT_EQ(checkStats.samplerCheck.faults(), 0u)
      << (checkStats.samplerCheck.examples.empty() ? "" : checkStats.samplerCheck.examples[0]);
  EXPECT_EQ(checkStats.samplerCheck.compared, walkStats.sockets);
  EXPECT_EQ(checked.samplerCheckSockets, walkStats.sockets);
}

}  // namespace
}  // namespace waitwatch::testing
