// SPDX-License-Identifier: Apache-2.0
#include "rules/messages.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "core/snapshot.hpp"

namespace waitwatch {
namespace {

std::string percent(double ratio) {
  return std::to_string(std::lround(ratio * 100.0)) + "%";
}

std::string rateText(double perSecond) {
  char buf[32];
  if (perSecond >= 10.0) {
    std::snprintf(buf, sizeof buf, "%.0f", perSecond);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", perSecond);
  }
  return buf;
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// Unnamed namespaces read "net:[4026531840]" and waitwatch's own "host": only another named
// one is worth saying.
bool namedNetns(const AlertGroup& g) {
  // A pod's own namespace is named after the pod ("pod:<uid>"): the pod is named already.
  if (!g.podUid.empty() && g.netns.rfind("pod:", 0) == 0) return false;
  return !g.netns.empty() && g.netns.rfind("net:[", 0) != 0 && g.netns != kOwnNetnsAlias;
}

std::string who(const Alert& a) {
  const AlertGroup& g = a.group;
  std::string out;
  switch (g.kind) {
    case GroupKind::Process:
      out = (g.comm.empty() ? std::string("pid") : g.comm) + "[" + std::to_string(g.pid) + "]";
      if (!g.container.empty()) {
        out += " (" + containerText(g) + ")";
      } else if (!g.unit.empty()) {
        out += " (" + g.unit + ")";
      }
      break;
    case GroupKind::Unit:
    case GroupKind::Container:
    case GroupKind::Pod: {
      if (g.kind == GroupKind::Unit) {
        out = g.unit;
      } else if (g.kind == GroupKind::Container) {
        out = containerText(g);
      } else {
        out = podText(g);
      }
      std::string inner = g.comm;
      if (g.processes > 1) {
        inner += (inner.empty() ? "" : ", ") + plural(g.processes, "process", "processes");
      }
      if (!inner.empty()) out += " (" + inner + ")";
      break;
    }
    default:
      out = "?";
  }
  if (namedNetns(g)) out += " in " + g.netns;
  return out;
}

// " on :8080, :8443 and to 10.0.0.9:5432"
std::string where(const Alert& a) {
  std::string local;
  for (std::size_t i = 0; i < a.localPorts.size() && i < 3; ++i) {
    local += (i == 0 ? ":" : ", :") + std::to_string(a.localPorts[i].port);
  }
  std::string remote;
  std::size_t shown = 0;
  for (const PeerCount& p : a.peers) {
    if (p.endpoint.port == 0 || shown == 2) continue;
    remote += (shown++ == 0 ? "" : ", ") + p.endpoint.toString();
  }
  std::string out;
  if (!local.empty()) out += " on " + local;
  if (!remote.empty()) out += (out.empty() ? " to " : " and to ") + remote;
  return out;
}

bool has(const Alert& a, AlertReason r) {
  for (AlertReason x : a.reasons) {
    if (x == r) return true;
  }
  return false;
}

// "the oldest stuck for 3h12m" ("at least" for sockets already there when waitwatch started).
std::string oldest(const Alert& a) {
  if (a.oldestAge < std::chrono::seconds(1)) return "the oldest just seen";
  return "the oldest stuck for " + std::string(a.oldestAgeIsLowerBound ? "at least " : "") +
         humanDuration(a.oldestAge);
}

// "All 3 were not read since the peer closed: look for ...": what the sockets' kinds say to
// look for in the code, by the kind most of them are.
std::string kindsSentence(const CloseWaitKinds& kinds) {
  const std::uint64_t total = kinds.total();
  if (total == 0) return "";
  CloseWaitKind most = CloseWaitKind::Abandoned;
  for (CloseWaitKind k : kCloseWaitKinds) {
    if (kinds[k] > kinds[most]) most = k;
  }
  std::string who;
  if (total == 1) {
    who = "It was ";
  } else if (kinds[most] == total) {
    who = total == 2 ? std::string("Both were ") : "All " + std::to_string(total) + " were ";
  } else {
    who = std::to_string(kinds[most]) + " of " + std::to_string(total) + " were ";
  }
  return ". " + who + std::string(closeWaitKindSummary(most)) + ": " +
         std::string(closeWaitKindHint(most));
}

// A forecast's time, as precise as a forecast is: "40 seconds", "9 minutes", "5 hours", "3 days".
std::string roughDuration(Duration d) {
  const double secs = std::chrono::duration<double>(d).count();
  auto say = [](double n, std::string_view unit) {
    const auto whole = static_cast<std::uint64_t>(std::llround(n));
    return plural(whole, unit, std::string(unit) + "s");
  };
  if (secs < 90) return say(std::max(secs, 1.0), "second");
  if (secs < 90 * 60) return say(secs / 60, "minute");
  if (secs < 48 * 3600) return say(secs / 3600, "hour");
  return say(secs / 86400, "day");
}

// A growth of open files: "50/min", "2.5/hour", "4.0/day" (a slow leak is not "0.0/min").
std::string growthText(double perMinute) {
  if (perMinute >= 1.0) return rateText(perMinute) + "/min";
  if (perMinute * 60 >= 1.0) return rateText(perMinute * 60) + "/hour";
  return rateText(perMinute * 60 * 24) + "/day";
}

// ". Its open files grow by 50/min: it runs out of file descriptors (9800 open, limit 10240) in
// about 9 minutes", named "It" in a process group's alert and "nginx[1234]'s" in a unit's.
std::string fdSentence(const Alert& a) {
  const FdDetails& f = a.closeWait.fds;
  if (!f.forecast || f.max == 0) return "";
  const bool self = a.group.kind == GroupKind::Process;
  const std::string name =
      self ? "It" : (f.comm.empty() ? "pid" : f.comm) + "[" + std::to_string(f.pid) + "]";
  const std::string counts =
      " (" + std::to_string(f.open) + " open, limit " + std::to_string(f.max) + ")";
  const std::string growth = growthText(f.forecast->perMinute);
  if (f.forecast->exhaustion <= Duration::zero()) {
    return ". " + name + " has run out of file descriptors" + counts +
           ": its accept() and socket() fail with EMFILE";
  }
  return ". " + name + (self ? "s" : "'s") + " open files grow by " + growth +
         ": it runs out of file descriptors" + counts + " in about " +
         roughDuration(f.forecast->exhaustion);
}

std::string closeWaitMessage(const Alert& a, const Rule& rule) {
  const CloseWaitRule& cw = rule.closeWait;
  const std::uint64_t total = a.closeWait.total;
  if (a.state == AlertState::Resolved) {
    const std::string subject = a.group.kind == GroupKind::Unattributed
                                    ? "unattributed CLOSE_WAIT sockets in " + a.group.netns
                                    : who(a);
    std::string out = "resolved: " + subject;
    if (a.group.kind == GroupKind::Unattributed) {
      out += total == 0 ? ": none left" : ": " + std::to_string(total) + " left";
    } else if (total == 0) {
      out += " holds no CLOSE_WAIT sockets any more";
    } else {
      out += " holds " + plural(total, "CLOSE_WAIT socket", "CLOSE_WAIT sockets") + " now (" +
             std::to_string(a.count) + " older than " + formatDuration(cw.minAge) + ")";
    }
    out += "; peak " + std::to_string(a.closeWait.peak) + ", firing for " +
           humanDuration(std::chrono::duration_cast<Duration>(a.at - a.firedAt));
    return out;
  }

  std::string detail;
  if (has(a, AlertReason::OldSockets) && a.count != total) {
    detail += std::to_string(a.count) + " older than " + formatDuration(cw.minAge);
  }
  if (has(a, AlertReason::Growth)) {
    detail += (detail.empty() ? "" : ", ") + std::string("up by ") +
              std::to_string(a.closeWait.growth) + " in the last " +
              formatDuration(cw.growthWindow);
  }
  if (!detail.empty()) detail = " (" + detail + ")";
  std::string out;
  if (a.group.kind == GroupKind::Unattributed) {
    out = plural(total, "CLOSE_WAIT socket", "CLOSE_WAIT sockets") + where(a) + detail + " in " +
          a.group.netns + (total == 1 ? " has" : " have") + " no visible owner, " + oldest(a) +
          ": a process waitwatch cannot see (no permission, or another pid namespace) does not "
          "close() connections its peers have closed";
  } else {
    out = who(a) + " holds " + plural(total, "CLOSE_WAIT socket", "CLOSE_WAIT sockets") + where(a) +
          detail + ", " + oldest(a) + ": it does not close() connections its peers have closed";
  }
  if (a.state == AlertState::StillFiring) {
    out += " (still firing after " +
           humanDuration(std::chrono::duration_cast<Duration>(a.at - a.firedAt)) + ")";
  }
  return out + fdSentence(a) + kindsSentence(a.closeWait.kinds);
}

std::string pairText(const Alert& a) {
  return a.timeWait.source.toString() + " -> " + a.timeWait.destination.toString();
}

std::string portUsageText(const Alert& a) {
  const TimeWaitDetails& t = a.timeWait;
  return "uses " + percent(t.portUsageRatio) + " of the " + std::to_string(t.usablePorts) +
         " usable ephemeral ports (" + std::to_string(a.count) + " in TIME_WAIT, " +
         std::to_string(t.live) + " live)";
}

// "; closed by php-fpm[1234] (php-fpm.service): 812 of them, 40 new per second", or nothing
// when no closer is known.
std::string closerText(const Alert& a, bool ofThem) {
  const TimeWaitDetails& t = a.timeWait;
  if (!t.closersTracked || t.closerTimeWait == 0) return "";
  std::string name = (a.group.comm.empty() ? std::string("pid") : a.group.comm);
  if (a.group.pid != 0) name += "[" + std::to_string(a.group.pid) + "]";
  if (!a.group.container.empty()) {
    name += " (" + containerText(a.group) + ")";
  } else if (!a.group.unit.empty()) {
    name += " (" + a.group.unit + ")";
  }
  std::string out = "; closed by " + name + ": " + std::to_string(t.closerTimeWait);
  out += ofThem ? " of them" : " in TIME_WAIT";
  if (t.closerRatePerSecond > 0) out += ", " + rateText(t.closerRatePerSecond) + " new per second";
  // The one named may be a small part: say so when most closers are not known.
  if (t.closerUnknown > t.closerTimeWait) {
    out += " (" + std::to_string(t.closerUnknown) + " closed by processes not known)";
  }
  return out;
}

// A time_wait rule grouped by closer: "php-fpm[1234] (php.service) closed 27000 connections
// now in TIME_WAIT, 450 new per second, most toward 10.0.0.5:3306 (26000); ..."
std::string closerMessage(const Alert& a, const std::string& suffix) {
  const TimeWaitDetails& t = a.timeWait;
  const std::string ns = namedNetns(a.group) ? " in " + a.group.netns : "";
  if (a.state == AlertState::Resolved) {
    return "resolved: " + who(a) + ns + " holds " +
           plural(a.count, "TIME_WAIT socket", "TIME_WAIT sockets") + " now, " +
           rateText(t.ratePerSecond) + " new per second";
  }
  std::string out = who(a) + ns + " closed " +
                    plural(a.count, "connection now in TIME_WAIT", "connections now in TIME_WAIT") +
                    ", " + rateText(t.ratePerSecond) + " new per second";
  if (!a.peers.empty()) {
    out += ", most toward " + a.peers.front().endpoint.toString() + " (" +
           std::to_string(a.peers.front().count) + ")";
  } else if (!a.localPorts.empty()) {
    out += ", most from clients of :" + std::to_string(a.localPorts.front().port) + " (" +
           std::to_string(a.localPorts.front().count) + ")";
  }
  if (has(a, AlertReason::PortUsage)) {
    out += "; " + pairText(a) + " uses " + percent(t.portUsageRatio) + " of the " +
           std::to_string(t.usablePorts) +
           " usable ephemeral ports: new connections will fail with EADDRNOTAVAIL";
  }
  return out + ": reuse connections (keep-alive, a pool)" + suffix;
}

std::string timeWaitMessage(const Alert& a) {
  const TimeWaitDetails& t = a.timeWait;
  const std::string prefix = a.state == AlertState::Resolved ? "resolved: " : "";
  std::string suffix;
  if (a.state == AlertState::StillFiring) {
    suffix = " (still firing after " +
             humanDuration(std::chrono::duration_cast<Duration>(a.at - a.firedAt)) + ")";
  }
  if (a.group.kind == GroupKind::Destination) {
    const std::string ns = namedNetns(a.group) ? a.group.netns + ": " : "";
    if (a.state == AlertState::Resolved)
      return prefix + ns + pairText(a) + " " + portUsageText(a) + " now";
    return ns + pairText(a) + " " + portUsageText(a) + closerText(a, true) +
           ": new connections will fail with EADDRNOTAVAIL; reuse connections (keep-alive, "
           "pooling)" +
           suffix;
  }

  if (a.group.kind == GroupKind::Process || a.group.kind == GroupKind::Unit ||
      a.group.kind == GroupKind::Container || a.group.kind == GroupKind::Pod) {
    return closerMessage(a, suffix);
  }
  std::string out =
      prefix + a.group.netns + ": " + plural(a.count, "TIME_WAIT socket", "TIME_WAIT sockets");
  if (t.maxTimeWaitBuckets > 0) {
    out += " (" + percent(static_cast<double>(a.count) / t.maxTimeWaitBuckets) +
           " of net.ipv4.tcp_max_tw_buckets " + std::to_string(t.maxTimeWaitBuckets) + ")";
  }
  out += ", " + rateText(t.ratePerSecond) + " new per second";
  if (a.state == AlertState::Resolved) return out;
  if (has(a, AlertReason::TimeWaitRate) && t.newest > 0) {
    const std::string where = t.newestServerSide ? "on :" + std::to_string(t.newestAt.port)
                                                 : "toward " + t.newestAt.toString();
    out += ", most new ones " + where + " (" + std::to_string(t.newest) + ")";
  } else if (!a.peers.empty()) {
    out += ", most toward " + a.peers.front().endpoint.toString() + " (" +
           std::to_string(a.peers.front().count) + ")";
  } else if (!a.localPorts.empty()) {
    out += ", most on :" + std::to_string(a.localPorts.front().port) + " (" +
           std::to_string(a.localPorts.front().count) + ")";
  }
  out += closerText(a, false);
  if (has(a, AlertReason::TimeWaitOverflow)) {
    out += "; TCPTimeWaitOverflow rose by " + std::to_string(t.overflowDelta) +
           ": TIME_WAIT buckets ran out and the kernel tore connections down without TIME_WAIT, "
           "so late segments can reach new connections; reuse connections (keep-alive, "
           "pooling) or raise net.ipv4.tcp_max_tw_buckets";
  } else {
    out +=
        ": connections are opened and closed at a high rate; reuse connections (keep-alive, "
        "pooling)";
  }
  return out + suffix;
}

}  // namespace

std::string alertMessage(const Alert& a, const Rule& rule) {
  return a.type == RuleType::CloseWait ? closeWaitMessage(a, rule) : timeWaitMessage(a);
}

}  // namespace waitwatch
