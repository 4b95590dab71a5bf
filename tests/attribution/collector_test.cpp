// SPDX-License-Identifier: Apache-2.0
// The Collector end to end in the test's own network namespace, with the real /proc and real
// sock_diag dumps (which need no privilege for one's own namespace). Other tests may make
// sockets in the same namespace at the same time, so only this process's sockets are checked.
#include "attribution/collector.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "attribution/one_shot_owners.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {
namespace {

using namespace std::chrono_literals;

UniqueFd tcpSocket() {
  return UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

class Sockets {
 public:
  Sockets() {
    listener = tcpSocket();
    auto a = loopback(0);
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener.get(), 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  // One connection; returns {client, server}.
  std::pair<UniqueFd, UniqueFd> connect() {
    UniqueFd client = tcpSocket();
    auto a = loopback(port);
    EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_TRUE(server.valid());
    return {std::move(client), std::move(server)};
  }

  UniqueFd listener;
  std::uint16_t port = 0;
};

const ProcessEntry* self(const Snapshot& s) {
  for (const auto& p : s.processes) {
    if (p.info.key.pid == ::getpid()) return &p;
  }
  return nullptr;
}

// Loopback state changes are quick but not instantaneous: poll until `done` or 2 s.
template <typename Done>
// `searched`, when given, adds up the resolver's targeted searches (fd walks plus inodes left
// pending after a dump) over every poll: an owner found after one poll's dump shows in the
// next poll's counts, so the poll that ends the loop may have searched nothing itself.
Snapshot collectUntil(Collector& c, Done&& done, std::uint64_t* searched = nullptr) {
  Snapshot s;
  for (int i = 0; i < 200; ++i) {
    auto r = c.collect(Clock::now(), 5s);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return s;
    if (searched) *searched += c.stats().resolver.walks + c.stats().resolver.pending;
    s = std::move(*r);
    if (done(s)) break;
    std::this_thread::sleep_for(10ms);
  }
  return s;
}

TEST(Collector, AttributesThisProcessesSocketsInItsNamespace) {
  Sockets net;
  std::vector<std::pair<UniqueFd, UniqueFd>> open;
  for (int i = 0; i < 4; ++i)
    open.push_back(net.connect());
  // Two leaks: the peer closed its side, we never close ours (CLOSE_WAIT here, FIN_WAIT2 there).
  ::shutdown(open[0].first.get(), SHUT_WR);
  ::shutdown(open[1].first.get(), SHUT_WR);
  // Two TIME_WAIT sockets: one where the client closed first, one where the server did.
  {
    auto [client, server] = net.connect();
    client.reset();
    std::this_thread::sleep_for(20ms);
    server.reset();
  }
  {
    auto [client, server] = net.connect();
    server.reset();
    std::this_thread::sleep_for(20ms);
    client.reset();
  }

  Collector collector(CollectorOptions{.keepAllSockets = true});
  const Snapshot s = collectUntil(collector, [](const Snapshot& snap) {
    const ProcessEntry* me = self(snap);
    return me && me->states[TcpState::CloseWait] == 2 && me->states[TcpState::FinWait2] == 2;
  });
  ASSERT_EQ(s.namespaces.size(), 1u);
  const ProcessEntry* me = self(s);
  ASSERT_TRUE(me) << "this process was not attributed";
  EXPECT_EQ(me->info.comm.substr(0, 15), std::string("attribution_test").substr(0, 15));
  EXPECT_EQ(me->info.uid, ::geteuid());
  EXPECT_EQ(me->states[TcpState::Listen], 1u);
  EXPECT_EQ(me->states[TcpState::CloseWait], 2u);
  EXPECT_EQ(me->states[TcpState::FinWait2], 2u);
  EXPECT_EQ(me->states[TcpState::Established], 4u);  // both ends of the two healthy connections
  EXPECT_EQ(me->states[TcpState::TimeWait], 0u);     // TIME_WAIT sockets have no owner
  EXPECT_EQ(me->listenPorts, std::vector<std::uint16_t>{net.port});

  int mine = 0;
  for (const auto& cw : s.closeWait) {
    if (cw.localPort != net.port) continue;
    ++mine;
    EXPECT_NE(cw.cookie, 0u);
    EXPECT_NE(cw.inode, 0u);
    ASSERT_EQ(cw.ownerCount, 1u);
    EXPECT_EQ(s.processes[s.ownerLinks[cw.ownerBegin]].info.key.pid, ::getpid());
  }
  EXPECT_EQ(mine, 2);

  bool server = false;
  bool client = false;
  for (const auto& g : s.timeWait) {
    if (g.destination.port != net.port) continue;
    if (g.serverSide) {
      server = true;
      ASSERT_NE(g.listener, kNoIndex);
      EXPECT_EQ(s.processes[g.listener].info.key.pid, ::getpid());
    } else {
      client = true;
      EXPECT_EQ(g.source.toString(), "127.0.0.1");
      EXPECT_GT(g.portUsageRatio, 0.0);
    }
  }
  EXPECT_TRUE(server) << "no server-side TIME_WAIT group for :" << net.port;
  EXPECT_TRUE(client) << "no client-side TIME_WAIT group toward :" << net.port;

  const auto& lines = collector.sockets();
  const auto listenLine = std::find_if(lines.begin(), lines.end(), [&](const SocketLine& l) {
    return l.socket.state == TcpState::Listen && l.socket.local.port == net.port;
  });
  ASSERT_NE(listenLine, lines.end());
  EXPECT_EQ(listenLine->attribution, Attribution::Owned);

  // Next poll: a new connection is found (unknown inodes, this process's fd table changed),
  // and closed sockets leave the counts.
  open.push_back(net.connect());
  open.erase(open.begin() + 2);  // a healthy connection closes on both ends
  std::uint64_t searched = 0;
  const Snapshot next = collectUntil(
      collector,
      [](const Snapshot& snap) {
        const ProcessEntry* p = self(snap);
        return p && p->states[TcpState::Established] == 4 && p->states[TcpState::CloseWait] == 2;
      },
      &searched);
  const ProcessEntry* again = self(next);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->states[TcpState::Established], 4u);
  EXPECT_EQ(again->states[TcpState::CloseWait], 2u);
  EXPECT_GE(searched, 1u);
}

// The CLI's one-shot owners and the daemon's cached resolver behind the same Collector: the
// same owners for the same sockets, TCP and UDP alike, and UDP kept out of the TCP counts.
TEST(Collector, BothOwnerFindersAttributeTcpAndUdpAlike) {
  Sockets net;
  std::vector<std::pair<UniqueFd, UniqueFd>> open;
  for (int i = 0; i < 3; ++i)
    open.push_back(net.connect());
  ::shutdown(open[0].first.get(), SHUT_WR);  // one CLOSE_WAIT on the server side
  UniqueFd udpBound(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  auto a = loopback(0);
  ASSERT_EQ(::bind(udpBound.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  UniqueFd udpConnected(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  socklen_t len = sizeof a;
  ::getsockname(udpBound.get(), reinterpret_cast<sockaddr*>(&a), &len);
  ASSERT_EQ(::connect(udpConnected.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);

  auto look = [&](std::unique_ptr<OwnerFinder> owners) {
    Collector c(CollectorOptions{.keepAllSockets = true, .udp = true}, std::move(owners));
    const Snapshot tcp = collectUntil(c, [](const Snapshot& snap) {
      const ProcessEntry* me = self(snap);
      return me && me->states[TcpState::CloseWait] == 1 && me->states[TcpState::FinWait2] == 1;
    });
    return std::make_pair(tcp, c.takeUdp());
  };
  const auto [cachedTcp, cachedUdp] = look(nullptr);
  const auto [oneShotTcp, oneShotUdp] =
      look(std::make_unique<OneShotOwners>(OneShotOwnersOptions{.bpf = false, .threads = 2}));
  for (const auto* tcp : {&cachedTcp, &oneShotTcp}) {
    const ProcessEntry* me = self(*tcp);
    ASSERT_TRUE(me);
    EXPECT_EQ(me->states[TcpState::Listen], 1u);
    EXPECT_EQ(me->states[TcpState::CloseWait], 1u);
    EXPECT_EQ(me->states[TcpState::FinWait2], 1u);
    EXPECT_EQ(me->states[TcpState::Established], 4u);
    EXPECT_EQ(me->states[TcpState::Close], 0u);  // no UDP socket among the TCP counts
    EXPECT_EQ(me->info.comm, self(cachedTcp)->info.comm);
  }
  for (const auto* udp : {&cachedUdp, &oneShotUdp}) {
    const ProcessEntry* me = self(*udp);
    ASSERT_TRUE(me) << "the UDP sockets were not attributed";
    EXPECT_EQ(me->states[TcpState::Close], 1u);        // bound, unconnected
    EXPECT_EQ(me->states[TcpState::Established], 1u);  // connected
    EXPECT_EQ(me->states.total(), 2u);
  }
}

TEST(Collector, NamedNamespaceThatDoesNotExistIsAnError) {
  Collector collector(CollectorOptions{.namespaces = NamespaceSelection::Named,
                                       .names = {"waitwatch-no-such-netns-4242"}});
  auto r = collector.collect(Clock::now(), 5s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("waitwatch-no-such-netns-4242"), std::string::npos)
      << r.error().message;
}

TEST(Collector, ProcRootThatDoesNotExistIsAnError) {
  Collector collector(CollectorOptions{.procRoot = "/nonexistent/waitwatch-proc"});
  auto r = collector.collect(Clock::now(), 5s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/waitwatch-proc"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace waitwatch
