// SPDX-License-Identifier: Apache-2.0
#pragma once
// Alerts in the journal. The poll thread only formats an entry and pushes it on a bounded queue;
// a writer thread sends it with sd_journal_sendv. A stalled or absent journald therefore never
// delays a poll: when the queue is full the entry is dropped and counted.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "rules/alert.hpp"

namespace waitwatch {

// Fixed MESSAGE_IDs (128-bit, generated once; systemd/waitwatch.catalog explains each).
inline constexpr std::string_view kMessageIdCloseWaitFiring = "5568a84ca54e47a78310a571a8cf6af4";
inline constexpr std::string_view kMessageIdCloseWaitResolved = "f3b692d2269244fca55897be7de54775";
inline constexpr std::string_view kMessageIdTimeWaitFiring = "bcc8b44724db42eda1d6eef1826c7899";
inline constexpr std::string_view kMessageIdTimeWaitResolved = "7d9c2a82df294f109bc63832833a11eb";
inline constexpr std::string_view kMessageIdConfigRejected = "03f4dbf41c11492e88f1221b5d10f8ba";
inline constexpr std::string_view kMessageIdStarted = "408f6e8098db46259acefef547ed8b61";

// One journal entry: "KEY=value" fields (values may hold any bytes, newlines included).
struct JournalEntry {
  std::vector<std::string> fields;
  // The value of the first field named `key`, or "" (for tests and the stderr echo).
  [[nodiscard]] std::string_view get(std::string_view key) const;
};

std::string_view messageIdFor(RuleType type, AlertState state);
// syslog priority: critical 2 (crit), warning 4 (warning), resolved 5 (notice).
int priorityFor(const Alert& alert);
// Pure: the journal fields of an alert transition.
JournalEntry alertEntry(const Alert& alert);
// Pure: a configuration file that was rejected (at SIGHUP).
JournalEntry configRejectedEntry(std::string_view path, std::string_view error);
JournalEntry startedEntry(std::string_view version, std::string_view configSummary);
// A readable line for a terminal: "FIRING warning close-wait-leak: nginx[1234] ... ".
std::string alertLine(const Alert& alert);

// True when fd 2 is the journal's stream (systemd sets $JOURNAL_STREAM to "dev:inode" of it):
// then alerts are not echoed on stderr, and stderr lines carry a "<N>" priority prefix.
bool stderrIsJournal();

struct JournalWriterOptions {
  std::size_t capacity = 1024;  // entries waiting; beyond, new ones are dropped and counted
};

class JournalWriter {
 public:
  // Returns 0 or a negative errno, as sd_journal_sendv does.
  using SendFn = std::function<int(const JournalEntry&)>;
  // Called from the writer thread: (written) or (dropped, queueFull=false) after a send error;
  // from submit(): (dropped, queueFull=true).
  struct Counters {
    std::function<void()> written;
    std::function<void(bool queueFull)> dropped;
  };

  JournalWriter(const JournalWriterOptions& options, Counters counters, SendFn send = {});
  ~JournalWriter();  // see stop()
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Never blocks on journald. False when the entry was dropped (queue full or stopped).
  bool submit(JournalEntry entry);
  // Sends what is queued for at most `grace`, then stops. A writer stuck in a stalled journald
  // is left behind (it holds only shared state), so shutdown never hangs.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

  // sd_journal_sendv of the entry's fields.
  static int sendToJournal(const JournalEntry& entry);

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace waitwatch
