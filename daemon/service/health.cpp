// SPDX-License-Identifier: Apache-2.0
#include "service/health.hpp"

#include <string>

#include "core/enum_names.hpp"

namespace waitwatch {
namespace {

prometheus::Histogram::BucketBoundaries pollBuckets() {
  // 1 ms (an idle host) to 10 s (a million sockets on a slow machine).
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace

std::string_view pollErrorReasonName(PollErrorReason r) {
  static constexpr EnumNames<PollErrorReason, 2> kReasons(
      {{PollErrorReason::Collect, "collect"}, {PollErrorReason::Namespace, "namespace"}});
  return kReasons.name(r, "unknown");
}

HealthMetrics::HealthMetrics(std::string_view version)
    : registry_(std::make_shared<prometheus::Registry>()),
      pollDuration_(prometheus::BuildHistogram()
                        .Name("waitwatch_poll_duration_seconds")
                        .Help("Time one poll took: socket dump, attribution, rules, metrics.")
                        .Register(*registry_)
                        .Add({}, pollBuckets())),
      polls_(prometheus::BuildCounter()
                 .Name("waitwatch_polls_total")
                 .Help("Polls completed.")
                 .Register(*registry_)
                 .Add({})),
      overruns_(prometheus::BuildCounter()
                    .Name("waitwatch_poll_overruns_total")
                    .Help("Polls that took longer than poll_interval (the next one started late; "
                          "polls never stack).")
                    .Register(*registry_)
                    .Add({})),
      // Polls that stop, for any reason, show as this time falling behind while /metrics
      // still answers (the shipped WaitwatchPollsStalled rule).
      lastPoll_(prometheus::BuildGauge()
                    .Name("waitwatch_last_successful_poll_timestamp_seconds")
                    .Help("Unix time at which the last successful poll started.")
                    .Register(*registry_)
                    .Add({})),
      pollInterval_(prometheus::BuildGauge()
                        .Name("waitwatch_poll_interval_seconds")
                        .Help("The configured poll_interval.")
                        .Register(*registry_)
                        .Add({})),
      errorsCollect_(
          prometheus::BuildCounter()
              .Name("waitwatch_poll_errors_total")
              .Help("Poll failures by reason.")
              .Register(*registry_)
              .Add({{"reason", std::string(pollErrorReasonName(PollErrorReason::Collect))}})),
      errorsNamespace_(
          prometheus::BuildCounter()
              .Name("waitwatch_poll_errors_total")
              .Help("Poll failures by reason.")
              .Register(*registry_)
              .Add({{"reason", std::string(pollErrorReasonName(PollErrorReason::Namespace))}})),
      reloadOk_(prometheus::BuildGauge()
                    .Name("waitwatch_config_last_reload_successful")
                    .Help("1 if the last configuration load (start or SIGHUP) succeeded, else 0.")
                    .Register(*registry_)
                    .Add({})),
      reloadTime_(prometheus::BuildGauge()
                      .Name("waitwatch_config_last_reload_success_timestamp_seconds")
                      .Help("Unix time of the last successful configuration load.")
                      .Register(*registry_)
                      .Add({})),
      journalWritten_(prometheus::BuildCounter()
                          .Name("waitwatch_journal_entries_written_total")
                          .Help("Alert entries written to the journal.")
                          .Register(*registry_)
                          .Add({})),
      dropQueueFull_(prometheus::BuildCounter()
                         .Name("waitwatch_journal_entries_dropped_total")
                         .Help("Alert entries not written to the journal, by reason (queue_full: "
                               "journald too slow or stalled; send_failed: journald absent).")
                         .Register(*registry_)
                         .Add({{"reason", "queue_full"}})),
      dropSendFailed_(prometheus::BuildCounter()
                          .Name("waitwatch_journal_entries_dropped_total")
                          .Help("Alert entries not written to the journal, by reason (queue_full: "
                                "journald too slow or stalled; send_failed: journald absent).")
                          .Register(*registry_)
                          .Add({{"reason", "send_failed"}})),
      stateSaved_(prometheus::BuildCounter()
                      .Name("waitwatch_state_saves_total")
                      .Help("Saves of the state kept across restarts (socket ages, alert state), "
                            "by result (error: see the daemon's log).")
                      .Register(*registry_)
                      .Add({{"result", "ok"}})),
      stateSaveFailed_(prometheus::BuildCounter()
                           .Name("waitwatch_state_saves_total")
                           .Help("Saves of the state kept across restarts (socket ages, alert "
                                 "state), by result (error: see the daemon's log).")
                           .Register(*registry_)
                           .Add({{"result", "error"}})) {
  prometheus::BuildGauge()
      .Name("waitwatch_build_info")
      .Help("Build information: always 1, with the version as a label.")
      .Register(*registry_)
      .Add({{"version", std::string(version)}})
      .Set(1);
}

void HealthMetrics::observePoll(double seconds, bool overran, double unixTimeSeconds) {
  lastPoll_.Set(unixTimeSeconds);
  pollDuration_.Observe(seconds);
  polls_.Increment();
  if (overran) overruns_.Increment();
}

void HealthMetrics::pollError(PollErrorReason reason) {
  (reason == PollErrorReason::Collect ? errorsCollect_ : errorsNamespace_).Increment();
}

void HealthMetrics::configReloaded(bool ok, double unixTimeSeconds) {
  reloadOk_.Set(ok ? 1 : 0);
  if (ok) reloadTime_.Set(unixTimeSeconds);
}

}  // namespace waitwatch
