// SPDX-License-Identifier: Apache-2.0
#pragma once
// The daemon's own health metrics: poll timing and errors, configuration reloads, the alert
// log's queue, the build. Plain prometheus-cpp metrics (atomic updates from the poll and writer
// threads, read by scrapes).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string_view>

namespace waitwatch {

// Why a poll failed (the label of waitwatch_poll_errors_total).
enum class PollErrorReason : std::uint8_t {
  Collect,    // the socket dump or attribution failed: no snapshot this poll
  Namespace,  // one namespace could not be polled (the poll went on without it)
};
std::string_view pollErrorReasonName(PollErrorReason r);  // "collect", "namespace"

class HealthMetrics {
 public:
  explicit HealthMetrics(std::string_view version);

  [[nodiscard]] std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // A poll that published a snapshot: how long it took, and when it started (Unix time).
  void observePoll(double seconds, bool overran, double unixTimeSeconds);
  void pollInterval(double seconds) { pollInterval_.Set(seconds); }
  void pollError(PollErrorReason reason);
  void configReloaded(bool ok, double unixTimeSeconds);
  void journalWritten() { journalWritten_.Increment(); }
  void stateSaved(bool ok) { (ok ? stateSaved_ : stateSaveFailed_).Increment(); }
  void journalDropped(bool queueFull) {
    (queueFull ? dropQueueFull_ : dropSendFailed_).Increment();
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram& pollDuration_;
  prometheus::Counter& polls_;
  prometheus::Counter& overruns_;
  prometheus::Gauge& lastPoll_;
  prometheus::Gauge& pollInterval_;
  prometheus::Counter& errorsCollect_;
  prometheus::Counter& errorsNamespace_;
  prometheus::Gauge& reloadOk_;
  prometheus::Gauge& reloadTime_;
  prometheus::Counter& journalWritten_;
  prometheus::Counter& dropQueueFull_;
  prometheus::Counter& dropSendFailed_;
  prometheus::Counter& stateSaved_;
  prometheus::Counter& stateSaveFailed_;
};

}  // namespace waitwatch
