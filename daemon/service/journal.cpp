// SPDX-License-Identifier: Apache-2.0
#include "service/journal.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

// The CODE_FILE/CODE_LINE fields sd_journal_sendv() would add name our writer, not the alert.
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "service/bounded_queue.hpp"

namespace waitwatch {
namespace {

std::string field(std::string_view key, std::string_view value) {
  std::string f;
  f.reserve(key.size() + 1 + value.size());
  f.append(key).append("=").append(value);
  return f;
}

std::string formatSeconds(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::string formatRatio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", r);
  return buf;
}

// Three significant digits, without an exponent: "1200", "62.5", "0.0521".
std::string formatRate(double perMinute) {
  char buf[64];
  std::snprintf(buf, sizeof buf, perMinute >= 100 ? "%.0f" : "%.3g", perMinute);
  return buf;
}

}  // namespace

std::string_view JournalEntry::get(std::string_view key) const {
  for (const auto& f : fields) {
    if (f.size() > key.size() && f.compare(0, key.size(), key) == 0 && f[key.size()] == '=') {
      return std::string_view(f).substr(key.size() + 1);
    }
  }
  return {};
}

std::string_view messageIdFor(RuleType type, AlertState state) {
  const bool resolved = state == AlertState::Resolved;
  if (type == RuleType::CloseWait) {
    return resolved ? kMessageIdCloseWaitResolved : kMessageIdCloseWaitFiring;
  }
  return resolved ? kMessageIdTimeWaitResolved : kMessageIdTimeWaitFiring;
}

int priorityFor(const Alert& alert) {
  if (alert.state == AlertState::Resolved) return 5;    // LOG_NOTICE
  return alert.severity == Severity::Critical ? 2 : 4;  // LOG_CRIT : LOG_WARNING
}

JournalEntry alertEntry(const Alert& a) {
  JournalEntry e;
  auto& f = e.fields;
  f.push_back(field("MESSAGE", a.message));
  f.push_back(field("MESSAGE_ID", messageIdFor(a.type, a.state)));
  f.push_back(field("PRIORITY", std::to_string(priorityFor(a))));
  f.push_back(field("SYSLOG_IDENTIFIER", "waitwatchd"));
  f.push_back(field("WAITWATCH_RULE", a.rule));
  f.push_back(field("WAITWATCH_RULE_TYPE", ruleTypeName(a.type)));
  f.push_back(field("WAITWATCH_STATE", journalState(a.state)));
  if (a.state == AlertState::StillFiring) f.push_back(field("WAITWATCH_REMINDER", "1"));
  f.push_back(field("WAITWATCH_SEVERITY", severityName(a.severity)));
  f.push_back(field("WAITWATCH_ALERT_KEY", a.key));
  f.push_back(field("WAITWATCH_GROUP", groupKindName(a.group.kind)));
  std::string reasons;
  for (AlertReason r : a.reasons) {
    if (!reasons.empty()) reasons += ',';
    reasons += alertReasonName(r);
  }
  f.push_back(field("WAITWATCH_REASONS", reasons));  // the catalog refers to it: always there
  const auto& g = a.group;
  if (g.pid != 0) f.push_back(field("WAITWATCH_PID", std::to_string(g.pid)));
  if (!g.comm.empty()) f.push_back(field("WAITWATCH_COMM", g.comm));
  if (!g.user.empty()) f.push_back(field("WAITWATCH_USER", g.user));
  if (!g.unit.empty()) f.push_back(field("WAITWATCH_UNIT", g.unit));
  if (!g.container.empty()) f.push_back(field("WAITWATCH_CONTAINER", g.container));
  if (!g.containerName.empty()) f.push_back(field("WAITWATCH_CONTAINER_NAME", g.containerName));
  if (!g.pod.empty()) f.push_back(field("WAITWATCH_POD", g.pod));
  if (!g.podNamespace.empty()) f.push_back(field("WAITWATCH_POD_NAMESPACE", g.podNamespace));
  if (!g.podUid.empty()) f.push_back(field("WAITWATCH_POD_UID", g.podUid));
  f.push_back(field("WAITWATCH_NETNS", g.netns));  // the catalog refers to it: always there
  f.push_back(field("WAITWATCH_COUNT", std::to_string(a.count)));
  if (a.type == RuleType::CloseWait) {
    f.push_back(field("WAITWATCH_OLDEST_AGE_SECONDS", formatSeconds(a.oldestAge)));
    if (a.oldestAgeIsLowerBound) f.push_back(field("WAITWATCH_OLDEST_AGE_IS_LOWER_BOUND", "1"));
    // "abandoned=2 eof_not_closed=1 unread_data=0": the catalog refers to it.
    std::string kinds;
    for (CloseWaitKind k : kCloseWaitKinds) {
      if (!kinds.empty()) kinds += ' ';
      kinds += std::string(closeWaitKindName(k)) + "=" + std::to_string(a.closeWait.kinds[k]);
    }
    f.push_back(field("WAITWATCH_KINDS", kinds));
    const FdDetails& fds = a.closeWait.fds;
    if (fds.open != 0) {
      f.push_back(field("WAITWATCH_FD_PID", std::to_string(fds.pid)));
      f.push_back(field("WAITWATCH_OPEN_FDS", std::to_string(fds.open)));
      if (fds.max != 0) f.push_back(field("WAITWATCH_MAX_FDS", std::to_string(fds.max)));
    }
    if (fds.forecast && fds.max != 0) {
      f.push_back(
          field("WAITWATCH_FD_EXHAUSTION_SECONDS", formatSeconds(fds.forecast->exhaustion)));
      f.push_back(field("WAITWATCH_FD_GROWTH_PER_MINUTE", formatRate(fds.forecast->perMinute)));
    }
  }
  if (!a.localPorts.empty()) {
    std::string ports;
    for (const auto& p : a.localPorts) {
      if (!ports.empty()) ports += ',';
      ports += std::to_string(p.port);
    }
    f.push_back(field("WAITWATCH_LOCAL_PORTS", ports));
  }
  if (!a.peers.empty()) {
    std::string peers;
    for (const auto& p : a.peers) {
      if (!peers.empty()) peers += ',';
      peers += p.endpoint.port != 0 ? p.endpoint.toString() : p.endpoint.address.toString();
    }
    f.push_back(field("WAITWATCH_PEERS", peers));
  }
  if (a.type == RuleType::TimeWait && g.kind == GroupKind::Destination) {
    f.push_back(field("WAITWATCH_SOURCE", a.timeWait.source.toString()));
    f.push_back(field("WAITWATCH_DESTINATION", a.timeWait.destination.toString()));
    f.push_back(field("WAITWATCH_PORT_USAGE_RATIO", formatRatio(a.timeWait.portUsageRatio)));
  }
  return e;
}

JournalEntry configRejectedEntry(std::string_view path, std::string_view error) {
  JournalEntry e;
  e.fields = {
      field("MESSAGE", "configuration " + std::string(path) +
                           " rejected, still running on the previous one: " + std::string(error)),
      field("MESSAGE_ID", kMessageIdConfigRejected),
      field("PRIORITY", "3"),
      field("SYSLOG_IDENTIFIER", "waitwatchd"),
      field("WAITWATCH_CONFIG", path),
      field("WAITWATCH_ERROR", error)};
  return e;
}

JournalEntry startedEntry(std::string_view version, std::string_view configSummary) {
  JournalEntry e;
  e.fields = {field("MESSAGE", "waitwatchd " + std::string(version) +
                                   " started: " + std::string(configSummary)),
              field("MESSAGE_ID", kMessageIdStarted), field("PRIORITY", "6"),
              field("SYSLOG_IDENTIFIER", "waitwatchd")};
  return e;
}

std::string alertLine(const Alert& a) {
  std::string line;
  switch (a.state) {
    case AlertState::Firing:
      line = "FIRING";
      break;
    case AlertState::StillFiring:
      line = "STILL FIRING";
      break;
    case AlertState::Resolved:
      line = "RESOLVED";
      break;
  }
  line.append(" ").append(severityName(a.severity)).append(" ").append(a.rule).append(": ");
  line.append(a.message);
  return line;
}

bool stderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  const std::string_view text(env);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  const auto a = std::from_chars(text.data(), text.data() + colon, dev);
  const auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), ino);
  if (a.ec != std::errc() || b.ec != std::errc()) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

struct JournalWriter::State {
  explicit State(std::size_t capacity) : queue(capacity) {}
  BoundedQueue<JournalEntry> queue;
  std::mutex mutex;  // the owner's side: counters, abandoned, done
  std::condition_variable finished;
  bool abandoned = false;  // the owner is gone: do not touch the counters any more
  bool done = false;
  Counters counters;
  SendFn send;
};

int JournalWriter::sendToJournal(const JournalEntry& entry) {
  // sd_journal_sendv() reports success when the journal socket does not exist ("fail
  // silently"); an absent journald must show in the dropped counter, so look first.
  if (::access("/run/systemd/journal/socket", F_OK) != 0) return -errno;
  std::vector<iovec> iov;
  iov.reserve(entry.fields.size());
  for (const auto& f : entry.fields) {
    iov.push_back(iovec{.iov_base = const_cast<char*>(f.data()), .iov_len = f.size()});
  }
  return sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

JournalWriter::JournalWriter(const JournalWriterOptions& options, Counters counters, SendFn send)
    : state_(std::make_shared<State>(options.capacity)) {
  state_->counters = std::move(counters);
  state_->send = send ? std::move(send) : SendFn(&JournalWriter::sendToJournal);
  thread_ = std::thread([state = state_] {
    while (std::optional<JournalEntry> entry = state->queue.pop()) {
      state->queue.done();  // the place is free while the entry is sent
      const int rc = state->send(*entry);
      std::lock_guard lock(state->mutex);
      if (state->abandoned) continue;
      if (rc >= 0) {
        if (state->counters.written) state->counters.written();
      } else if (state->counters.dropped) {
        state->counters.dropped(false);
      }
    }
    std::lock_guard lock(state->mutex);
    state->done = true;
    state->finished.notify_all();
  });
}

JournalWriter::~JournalWriter() {
  stop();
}

bool JournalWriter::submit(JournalEntry entry) {
  if (state_->queue.push(std::move(entry))) return true;
  std::lock_guard lock(state_->mutex);
  if (!state_->abandoned && state_->counters.dropped) state_->counters.dropped(true);
  return false;
}

void JournalWriter::stop(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  state_->queue.close();
  std::unique_lock lock(state_->mutex);
  if (state_->finished.wait_for(lock, grace, [&] { return state_->done; })) {
    lock.unlock();
    thread_.join();
    return;
  }
  // journald is stalled: give up on what is queued and leave the writer blocked in its send;
  // it only holds the shared state, and process exit ends it.
  state_->abandoned = true;
  lock.unlock();
  state_->queue.closeAndTake();
  thread_.detach();
}

}  // namespace waitwatch
