// SPDX-License-Identifier: Apache-2.0
#pragma once
// A small host, hand-built and fed through the real SnapshotAggregator (so the snapshot, its
// socket lines and owner links are what a poll would give), for the CLI's view, JSON and
// renderer tests:
//   pid 100 nginx (nginx.service, www-data): LISTEN 0.0.0.0:80 and 0.0.0.0:8080, 3 CLOSE_WAIT
//           on :8080, 2 ESTABLISHED on :80
//   pid 101 nginx worker (nginx.service): shares the :80 listener and one CLOSE_WAIT with 100
//   pid 200 java (docker container 0123456789abcdef..., uid 1000 "app"): 2 ESTABLISHED to
//           10.0.0.9:5432, 1 SYN_SENT to 10.0.0.10:443
//   TIME_WAIT: 4 client side 10.0.0.1 -> 10.0.0.9:5432, 2 server side on 10.0.0.1:80
//   1 orphaned FIN_WAIT2 (no inode), 1 CLOSE_WAIT of uid 1000 whose holder we may not read
// Totals: LISTEN 2, CLOSE_WAIT 4, ESTABLISHED 4, SYN_SENT 1, TIME_WAIT 6, FIN_WAIT2 1 (18).
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/snapshot.hpp"
#include "proc/aggregator.hpp"
#include "proc/inode_table.hpp"
#include "support/addresses.hpp"
#include "support/table_owners.hpp"

namespace waitwatch::testing {

inline SocketRecord record(TcpState state, const std::string& local, const std::string& remote,
                           std::uint32_t inode, std::uint32_t uid = 0) {
  SocketRecord r;
  r.family = AddressFamily::V4;
  r.state = state;
  r.local = endpoint(local);
  r.remote = endpoint(remote);
  r.inode = inode;
  r.uid = uid;
  r.cookie = 0x1000u + inode + (static_cast<std::uint64_t>(r.local.port) << 20) +
             (static_cast<std::uint64_t>(r.remote.port) << 36);
  if (state == TcpState::CloseWait) r.recvQ = 1;
  if (state == TcpState::TimeWait) {
    r.timer = SocketTimer::TimeWait;
    r.timerRemainingMs = 42'000;
  }
  return r;
}

struct Shop {
  Snapshot snapshot;
  std::vector<SocketLine> lines;
};

inline ProcessInfo processInfo(std::int32_t pid, std::string comm, std::string user,
                               std::uint32_t uid, std::string cmdline) {
  ProcessInfo p;
  p.key = ProcessKey{pid, 5000u + static_cast<std::uint64_t>(pid)};
  p.comm = std::move(comm);
  p.user = std::move(user);
  p.uid = uid;
  p.cmdline = std::move(cmdline);
  return p;
}

inline Shop buildShop() {
  TableOwners owners;
  owners.hiddenUids = {1000};
  ProcessInfo nginx =
      processInfo(100, "nginx", "www-data", 33, "/usr/sbin/nginx -g daemon on; master_process on;");
  nginx.unit = "nginx.service";
  ProcessInfo worker = processInfo(101, "nginx", "www-data", 33, "nginx: worker process");
  worker.unit = "nginx.service";
  ProcessInfo java = processInfo(200, "java", "app", 1000, "java -jar /srv/app.jar");
  java.unit = "docker-0123456789abcdef0123456789abcdef.scope";
  java.container = ContainerInfo{"docker", "0123456789abcdef0123456789abcdef", ""};
  owners.infos = {nginx, worker, java};
  owners.table.addOwner(1, 0, true);  // LISTEN :80, shared by master and worker
  owners.table.addOwner(1, 1, true);
  owners.table.addOwner(2, 0, true);  // LISTEN :8080
  for (std::uint32_t i = 10; i <= 12; ++i)
    owners.table.addOwner(i, 0, true);
  owners.table.addOwner(10, 1, true);  // one CLOSE_WAIT shared across the fork
  owners.table.addOwner(20, 0, true);
  owners.table.addOwner(21, 0, true);
  for (std::uint32_t i = 30; i <= 32; ++i)
    owners.table.addOwner(i, 2, true);

  NetnsEntry ns;
  ns.ref = NetnsRef{4026531840, "", {}};
  ns.maxTimeWaitBuckets = 262144;

  SnapshotAggregator agg(
      AggregatorOptions{.perSocketStates = stateBit(TcpState::CloseWait), .keepAllSockets = true});
  agg.begin(TimePoint{}, Duration{0}, owners);
  agg.beginNamespace(ns);
  agg.beginDump();
  // The kernel's order: listeners first.
  agg.add(record(TcpState::Listen, "0.0.0.0:80", "0.0.0.0:0", 1));
  agg.add(record(TcpState::Listen, "0.0.0.0:8080", "0.0.0.0:0", 2));
  agg.add(record(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.5:50001", 10));
  agg.add(record(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.5:50002", 11));
  agg.add(record(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.5:50003", 12));
  agg.add(record(TcpState::Established, "10.0.0.1:80", "10.0.0.6:40001", 20));
  agg.add(record(TcpState::Established, "10.0.0.1:80", "10.0.0.6:40002", 21));
  agg.add(record(TcpState::Established, "10.0.0.1:50001", "10.0.0.9:5432", 30));
  agg.add(record(TcpState::Established, "10.0.0.1:50002", "10.0.0.9:5432", 31));
  agg.add(record(TcpState::SynSent, "10.0.0.1:50003", "10.0.0.10:443", 32));
  for (int i = 0; i < 4; ++i) {
    agg.add(
        record(TcpState::TimeWait, "10.0.0.1:" + std::to_string(50100 + i), "10.0.0.9:5432", 0));
  }
  agg.add(record(TcpState::TimeWait, "10.0.0.1:80", "10.0.0.7:30001", 0));
  agg.add(record(TcpState::TimeWait, "10.0.0.1:80", "10.0.0.7:30002", 0));
  agg.add(record(TcpState::FinWait2, "10.0.0.1:8080", "10.0.0.5:51000", 0));
  agg.add(record(TcpState::CloseWait, "10.0.0.1:8080", "10.0.0.8:52000", 99, 1000));
  agg.endNamespace();
  (void)agg.pendingHints();
  Shop shop;
  agg.finish(shop.snapshot);
  shop.lines = agg.sockets();
  return shop;
}

}  // namespace waitwatch::testing
