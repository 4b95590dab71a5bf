// SPDX-License-Identifier: Apache-2.0
#pragma once
// waitwatchd: the poll loop and its outputs. One thread polls (timerfd + signalfd in one
// poll()); the HTTP server and the journal writer run beside it and only read what a poll
// published; sd_notify messages go out from a thread of their own (service/notifier.hpp).
// Before any of these threads starts, the daemon drops the capabilities its configuration does
// not need (service/privileges.hpp).
//
// Start-up and shutdown are plain lists of steps (see Daemon::run): each start-up step either
// succeeds or ends the start-up with a one-line error, and the teardown of every step that ran
// always runs, in reverse order.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/snapshot.hpp"
#include "rules/config.hpp"
#include "rules/engine.hpp"
#include "service/http_server.hpp"
#include "service/journal.hpp"
#include "service/options.hpp"

namespace waitwatch {

// Where snapshots come from (the sampler and attribution adapters, behind one call).
class SnapshotSource {
 public:
  // What went partly wrong in the last collect(): the poll went on without it.
  struct Problems {
    std::vector<std::string> namespaceErrors;  // namespaces left out of the poll
    std::vector<std::string> warnings;         // e.g. sockets that could not be attributed
    std::vector<std::string> notes;            // facts worth one info line, e.g. a mode
  };
  virtual ~SnapshotSource() = default;
  virtual Result<Snapshot> collect(TimePoint now, Duration pollInterval) = 0;
  virtual Problems takeProblems() { return {}; }
};
// Builds the source a configuration asks for (host or all namespaces).
using SnapshotSourceFactory = std::function<Result<std::unique_ptr<SnapshotSource>>(const Config&)>;

struct DaemonOptions {
  DaemonArgs args;
  std::string defaultConfigPath{kDefaultConfigPath};
  SnapshotSourceFactory sourceFactory;
  HttpServerOptions http;
  JournalWriterOptions journal;
};

// Runs the daemon until SIGTERM or SIGINT. Returns the process exit status: 0 after a clean
// stop, 1 when start-up failed (the reason was printed on stderr as one line).
int runDaemon(const DaemonOptions& options);

}  // namespace waitwatch
