// SPDX-License-Identifier: Apache-2.0
#include "proc/sampler_check.hpp"

#include <unordered_map>
#include <unordered_set>

#include "core/tcp_state.hpp"

namespace waitwatch {
namespace {

// What a socket's reading must repeat while the socket lives on unchanged: who and where it is,
// its state, and (in CLOSE_WAIT, where no byte can arrive after the FIN and the count only falls
// as the holder reads) its Recv-Q, by which the snapshot tells leaks apart. Queues, and which
// timer runs, move and come back with traffic between any two readings, so a live host cannot
// check them; tests/bpf/tcp_sockets_test.cpp does on sockets that stand still.
bool sameSocket(const SocketRecord& a, const SocketRecord& b) {
  return a.cookie == b.cookie && a.family == b.family && a.state == b.state && a.local == b.local &&
         a.remote == b.remote && a.inode == b.inode && a.uid == b.uid &&
         a.hasCgroupId == b.hasCgroupId && a.cgroupId == b.cgroupId &&
         (a.state != TcpState::CloseWait || a.recvQ == b.recvQ);
}

bool timedByKernel(const SocketRecord& s) {
  // TIME_WAIT and request sockets run down one timer; the kernel re-arms it only for a
  // retransmitted FIN or in-window segment (tcp_timewait_state_process(): inet_twsk_reschedule())
  // or a retransmitted SYN-ACK, and checkSampler() skips a socket whose timer went up.
  return s.timer == SocketTimer::TimeWait ||
         (s.state == TcpState::SynRecv && s.inode == 0 && !s.hasCgroupId);
}

std::string describe(const SocketRecord& s) {
  return "cookie " + std::to_string(s.cookie) + " " + std::string(stateName(s.state)) + " " +
         s.local.toString() + " -> " + s.remote.toString();
}

// The first field that differs, named.
std::string difference(const SocketRecord& dump, const SocketRecord& walk) {
  auto line = [&](const char* field, auto a, auto b) {
    return describe(dump) + ": " + field + " " + std::to_string(a) + " by the dump, " +
           std::to_string(b) + " by the walk";
  };
  if (dump.state != walk.state) {
    return describe(dump) + ": state " + std::string(stateName(walk.state)) + " by the walk";
  }
  if (dump.family != walk.family || dump.local != walk.local || dump.remote != walk.remote) {
    return describe(dump) + ": endpoints " + walk.local.toString() + " -> " +
           walk.remote.toString() + " by the walk";
  }
  if (dump.inode != walk.inode) return line("inode", dump.inode, walk.inode);
  if (dump.uid != walk.uid) return line("uid", dump.uid, walk.uid);
  if (dump.hasCgroupId != walk.hasCgroupId || dump.cgroupId != walk.cgroupId)
    return line("cgroup id", dump.cgroupId, walk.cgroupId);
  return line("Recv-Q", dump.recvQ, walk.recvQ);
}

}  // namespace

void SamplerCheck::add(const SamplerCheck& other) {
  compared += other.compared;
  missing += other.missing;
  differing += other.differing;
  walkOnly += other.walkOnly;
  for (const std::string& e : other.examples) {
    if (examples.size() < kExamples) examples.push_back(e);
  }
}

SamplerCheck checkSampler(std::span<const SocketRecord> before, std::span<const SocketRecord> walk,
                          std::span<const SocketRecord> after, std::uint32_t timerSlackMs) {
  SamplerCheck check;
  std::unordered_map<std::uint64_t, const SocketRecord*> first;
  first.reserve(before.size());
  for (const SocketRecord& s : before)
    first.emplace(s.cookie, &s);
  std::unordered_map<std::uint64_t, const SocketRecord*> walked;
  walked.reserve(walk.size());
  for (const SocketRecord& s : walk)
    walked.emplace(s.cookie, &s);
  std::unordered_set<std::uint64_t> dumped;  // the cookies of `after`
  dumped.reserve(after.size());
  auto fault = [&](std::uint64_t& counter, std::string line) {
    ++counter;
    if (check.examples.size() < SamplerCheck::kExamples) check.examples.push_back(std::move(line));
  };
  for (const SocketRecord& b : after) {
    dumped.insert(b.cookie);
    const auto a = first.find(b.cookie);
    if (a == first.end() || !sameSocket(*a->second, b)) continue;
    ++check.compared;
    const auto w = walked.find(b.cookie);
    if (w == walked.end()) {
      fault(check.missing, describe(b) + ": in both dumps, not in the walk");
      continue;
    }
    const SocketRecord& s = *w->second;
    if (!sameSocket(b, s)) {
      fault(check.differing, difference(b, s));
      continue;
    }
    // A timer that ran down between the dumps (not re-armed) ran down through the walk too.
    if (timedByKernel(b) &&
        b.timerRemainingMs <= std::uint64_t{a->second->timerRemainingMs} + timerSlackMs) {
      const std::uint64_t low = b.timerRemainingMs;
      const std::uint64_t high = a->second->timerRemainingMs;
      if (s.timerRemainingMs + std::uint64_t{timerSlackMs} < low ||
          s.timerRemainingMs > high + timerSlackMs) {
        fault(check.differing, describe(b) + ": " + std::to_string(s.timerRemainingMs) +
                                   " ms left by the walk, " + std::to_string(high) + " then " +
                                   std::to_string(low) + " by the dumps");
      }
    }
  }
  for (const SocketRecord& s : walk) {
    if (!first.contains(s.cookie) && !dumped.contains(s.cookie)) ++check.walkOnly;
  }
  return check;
}

}  // namespace waitwatch
