// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small hand-built poll shared by the daemon's unit tests: one namespace, three processes
// (two nginx workers in one unit, one redis), one TIME_WAIT destination, one firing alert.
#include <memory>

#include "core/snapshot.hpp"
#include "rules/alert.hpp"
#include "service/poll_view.hpp"

namespace waitwatch::testing {

inline ProcessEntry process(std::int32_t pid, std::string comm, std::string unit,
                            std::uint64_t closeWait, std::uint64_t established,
                            std::vector<std::uint16_t> listen) {
  ProcessEntry p;
  p.info.key = ProcessKey{pid, 1000u + static_cast<std::uint64_t>(pid)};
  p.info.comm = std::move(comm);
  p.info.unit = std::move(unit);
  p.info.user = "www-data";
  p.info.uid = 33;
  p.netns = 0;
  p.states[TcpState::CloseWait] = closeWait;
  p.closeWaitKinds[CloseWaitKind::Abandoned] =
      static_cast<std::uint32_t>(closeWait - closeWait / 2);
  p.closeWaitKinds[CloseWaitKind::EofNotClosed] = static_cast<std::uint32_t>(closeWait / 2);
  p.states[TcpState::Established] = established;
  p.states[TcpState::Listen] = listen.size();
  p.listenPorts = std::move(listen);
  return p;
}

inline Snapshot sampleSnapshot() {
  Snapshot s;
  s.pollInterval = Duration{5000};
  NetnsEntry ns;
  ns.ref = NetnsRef{4026531840, "", {}};
  ns.states[TcpState::Established] = 5;
  ns.states[TcpState::CloseWait] = 3;
  ns.states[TcpState::Listen] = 2;
  ns.states[TcpState::TimeWait] = 7;
  ns.timeWaitCreated = 2;
  ns.maxTimeWaitBuckets = 131072;
  ns.tcpHash = TcpHashTable{262144, false};
  ns.kernel = KernelTcpCounters{.timeWaitOverflow = 1,
                                .timeWaitEntered = 40,
                                .abortOnClose = 2,
                                .abortOnTimeout = 3,
                                .listenOverflows = 4,
                                .listenDrops = 5,
                                .activeOpens = 600,
                                .passiveOpens = 700,
                                .valid = true};
  s.namespaces.push_back(ns);
  s.processes.push_back(process(100, "nginx", "nginx.service", 2, 3, {8080}));
  s.processes.back().openFds = 900;
  s.processes.back().maxFds = 1024;
  s.processes.back().fdForecast = FdForecast{62.0, Duration(120'000)};
  s.processes.push_back(process(101, "nginx", "nginx.service", 1, 1, {8080}));
  s.processes.back().openFds = 40;
  s.processes.back().maxFds = 1024;
  s.processes.push_back(process(200, "redis-server", "redis.service", 0, 1, {}));
  TimeWaitGroup tw;
  tw.netns = 0;
  tw.source = *IpAddress::parse("10.0.0.1");
  tw.destination = Endpoint{*IpAddress::parse("10.0.0.9"), 5432};
  tw.timeWait = 7;
  tw.live = 1;
  tw.portUsageRatio = 0.25;
  s.timeWait.push_back(tw);
  s.unattributedNoPermission = 4;
  return s;
}

inline Alert sampleAlert() {
  Alert a;
  a.rule = "close-wait-leak";
  a.type = RuleType::CloseWait;
  a.severity = Severity::Warning;
  a.state = AlertState::Firing;
  a.key = "process:100@1100:4026531840";
  a.group.kind = GroupKind::Process;
  a.group.pid = 100;
  a.group.startTime = 1100;
  a.group.comm = "nginx";
  a.group.user = "www-data";
  a.group.unit = "nginx.service";
  a.group.netns = "net:[4026531840]";
  a.group.netnsInode = 4026531840;
  a.reasons = {AlertReason::OldSockets};
  a.count = 2;
  a.closeWait.total = 2;
  a.closeWait.kinds[CloseWaitKind::Abandoned] = 1;
  a.closeWait.kinds[CloseWaitKind::EofNotClosed] = 1;
  a.closeWait.fds = FdDetails{100, "nginx", 900, 1024, FdForecast{62.0, Duration(120'000)}};
  a.oldestAge = Duration{120'000};
  a.localPorts = {PortCount{8080, 2}};
  a.peers = {PeerCount{Endpoint{*IpAddress::parse("10.0.0.7"), 0}, 2}};
  a.message = "nginx[100] (nginx.service) holds 2 CLOSE_WAIT sockets on :8080";
  return a;
}

inline std::shared_ptr<PollView> sampleView() {
  auto v = std::make_shared<PollView>();
  v->snapshot = std::make_shared<const Snapshot>(sampleSnapshot());
  v->processOldestCloseWait = {SocketAge{Duration{120'000}, false},
                               SocketAge{Duration{30'500}, true}, SocketAge{}};
  v->timeWaitCreatedTotal = {12};
  v->firing = {sampleAlert()};
  v->pollCount = 3;
  v->unixTimeMs = 1'700'000'000'000;
  return v;
}

}  // namespace waitwatch::testing
