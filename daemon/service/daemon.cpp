// SPDX-License-Identifier: Apache-2.0
#include "service/daemon.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "bpf/pins.hpp"
#include "rules/fd_forecast.hpp"
#include "service/api.hpp"
#include "service/basic_auth.hpp"
#include "service/decisions.hpp"
#include "service/exporter.hpp"
#include "service/health.hpp"
#include "service/notifier.hpp"
#include "service/privileges.hpp"
#include "service/process_metrics.hpp"
#include "service/state_store.hpp"
#include "sys/clock.hpp"
#include "waitwatch_version.hpp"

namespace waitwatch {
namespace {

// waitwatch_time_wait_closed_total: a closer group quiet this long is forgotten (a TIME_WAIT
// storm's closer is never that quiet), and no more groups are kept than this.
constexpr Duration kForgetClosersAfter = std::chrono::minutes(15);
constexpr std::size_t kMaxCloserGroups = 4096;

std::uint64_t monotonicUsec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

double toSeconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Lines for an operator on stderr. Under systemd, stderr is the journal: each line then starts
// with a "<N>" syslog priority (sd-daemon(3)) instead of the program name.
class Logger {
 public:
  Logger() : journal_(waitwatch::stderrIsJournal()) {}
  [[nodiscard]] bool stderrIsJournal() const { return journal_; }
  void log(int priority, std::string_view text) const {
    std::string line = journal_ ? "<" + std::to_string(priority) + ">" : "waitwatchd: ";
    line.append(text).append("\n");
    // One write per line so that concurrent lines do not interleave.
    [[maybe_unused]] const auto n = ::write(2, line.data(), line.size());
  }

 private:
  bool journal_;
};

class Daemon {
 public:
  explicit Daemon(const DaemonOptions& options) : options_(options) {}
  int run();

 private:
  // Start-up steps, in order. Each returns an error that ends the start-up.
  Result<void> blockSignals();
  Result<void> loadInitialConfig();
  Result<void> bindListen();
  Result<void> openSource();
  Result<void> dropCapabilities();
  Result<void> startNotifier();
  Result<void> startSignalThread();
  Result<void> startJournal();
  Result<void> startHttp();
  Result<void> armTimer(Duration interval);

  void loop();
  void watchSignals();  // the signal thread
  void wake();
  void finishLoop();
  void pollOnce();
  void reload();
  void emit(const Alert& alert);
  void restoreState();
  void saveState(TimePoint now, std::int64_t unixMs);
  void reportProblems(const SnapshotSource::Problems& problems);
  void pingWatchdog(bool force);

  const DaemonOptions& options_;
  Logger logger_;
  ConfigSource configSource_;
  ServiceConfig config_;
  std::unique_ptr<Engine> engine_;
  FdForecaster fdForecaster_{Duration(0)};
  std::unique_ptr<SnapshotSource> source_;
  std::shared_ptr<HealthMetrics> health_ = std::make_shared<HealthMetrics>(kVersion);
  std::shared_ptr<PollMetrics> pollMetrics_ = std::make_shared<PollMetrics>();
  std::shared_ptr<ProcessMetrics> processMetrics_ = std::make_shared<ProcessMetrics>();
  std::unique_ptr<JournalWriter> journal_;
  std::unique_ptr<HttpServer> http_;
  // web.*: users are swapped on reload. The TLS credentials are read with the configuration; a
  // reload may renew the certificate and key, while TLS on or off and min_version need a restart.
  std::shared_ptr<BasicAuth> auth_ = std::make_shared<BasicAuth>();
  std::optional<TlsCredentials> servedTls_;
  std::unique_ptr<Notifier> notifier_;  // sd_notify, off the poll loop (see notifier.hpp)
  CapabilitySet droppedAtStart_ = 0;    // what a reload cannot get back
  UniqueFd listener_;
  UniqueFd signalFd_;
  UniqueFd wakeFd_;  // the signal thread wakes the poll loop through it
  UniqueFd quitFd_;  // tells the signal thread to end
  std::thread signalThread_;
  std::atomic<bool> stopRequested_{false};
  std::atomic<bool> reloadRequested_{false};
  std::mutex loopMutex_;
  std::condition_variable loopFinished_;
  bool loopDone_ = false;
  UniqueFd timerFd_;
  sigset_t blocked_{};
  bool ready_ = false;
  bool overrunLogged_ = false;
  std::uint64_t polls_ = 0;
  std::string lastPollError_;
  std::set<std::string> warned_;  // warnings already logged (each is logged once)
  std::unordered_map<std::uint64_t, std::uint64_t> timeWaitCreated_;  // by netns inode
  std::map<CloserGroup, ClosedTotal> closedTotals_;
  std::uint64_t watchdogUsec_ = 0;
  WatchdogGate watchdog_;
  std::uint64_t lastPollEndUsec_ = 0;  // monotonic; the loop's start before the first poll
  std::optional<std::array<std::uint8_t, 16>> bootId_;  // unset: no state is kept
  std::optional<StateLocation> stateWhere_;  // from the configuration and $STATE_DIRECTORY
  std::optional<TimePoint> lastSave_;
  std::string lastSaveError_;
};

int Daemon::run() {
  struct Step {
    const char* name;  // what the step does, for a reader of this list
    std::function<Result<void>()> start;
  };
  // Everything that can fail for a reason an operator must fix happens before anything is
  // announced: a bad config or a taken address exits with one line and nothing half-started.
  const Step steps[] = {
      {"block signals", [this] { return blockSignals(); }},
      {"load configuration", [this] { return loadInitialConfig(); }},
      {"bind the listen address", [this] { return bindListen(); }},
      {"open the socket source", [this] { return openSource(); }},
      // After the steps an operator must fix, and it never fails: a state file that cannot be
      // used is reported and the daemon starts afresh.
      {"restore the state saved by the previous run",
       [this] {
         restoreState();
         return Result<void>{};
       }},
      // Before any thread starts: capabilities are per thread, and threads copy them.
      {"drop the capabilities the configuration does not need",
       [this] { return dropCapabilities(); }},
      {"start the notifier", [this] { return startNotifier(); }},
      {"start the signal thread", [this] { return startSignalThread(); }},
      {"start the journal writer", [this] { return startJournal(); }},
      {"start the HTTP server", [this] { return startHttp(); }},
      {"arm the poll timer", [this] { return armTimer(config_.pollInterval); }},
  };
  int status = 0;
  for (const auto& step : steps) {
    if (auto r = step.start(); !r) {
      logger_.log(3, r.error().message);
      status = 1;
      break;
    }
  }
  if (status == 0) {
    int usecEnv = sd_watchdog_enabled(0, &watchdogUsec_);
    if (usecEnv <= 0) watchdogUsec_ = 0;
    logger_.log(6, "running on " + configSource_.describe() + " (" + config_.summary() +
                       "); metrics on " + (servedTls_ ? "https://" : "http://") + config_.listen +
                       "/metrics");
    journal_->submit(startedEntry(kVersion, config_.summary()));
    // Alerts of rules removed while the daemon was stopped: resolved once, now.
    for (const Alert& a : engine_->takeDroppedOnReconfigure())
      emit(a);
    lastPollEndUsec_ = monotonicUsec();
    loop();
  }
  finishLoop();
  // After finishLoop: the signal thread no longer counts down to an exit without teardown.
  if (status == 0 && polls_ > 0) saveState(Clock::now(), realtimeMs());
  // Best effort, bounded: a manager that never reads its socket does not hold up the stop.
  if (status == 0) notifier_->stop("STOPPING=1\nSTATUS=stopping", std::chrono::milliseconds(200));
  // Teardown, reverse order of start-up; each part copes with not having been started.
  http_.reset();  // stops accepting and waits for its threads
  if (journal_) journal_->stop();
  journal_.reset();
  source_.reset();
  if (signalThread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(quitFd_.get(), &one, sizeof one);
    signalThread_.join();
  }
  notifier_.reset();  // after the signal thread, which may use it for a last word
  if (status == 0) logger_.log(6, "stopped");
  return status;
}

Result<void> Daemon::blockSignals() {
  // Blocked before any thread starts, so every thread inherits the mask and the signals are
  // only ever read from the signalfd (by the signal thread): no work in signal handlers.
  sigemptyset(&blocked_);
  sigaddset(&blocked_, SIGTERM);
  sigaddset(&blocked_, SIGINT);
  sigaddset(&blocked_, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &blocked_, nullptr) != 0) {
    return Error{errno, "cannot block signals"};
  }
  ::signal(SIGPIPE, SIG_IGN);
  signalFd_.reset(::signalfd(-1, &blocked_, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signalFd_) return osError(errno, "signalfd");
  wakeFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  quitFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeFd_ || !quitFd_) return osError(errno, "eventfd");
  return {};
}

Result<void> Daemon::startSignalThread() {
  // Signals are read on a thread of their own so that a SIGTERM is seen even in the middle of
  // a long poll (see watchSignals); the poll loop still does all the work. A signal that came
  // during the start-up waits, blocked, in the signalfd until then.
  signalThread_ = std::thread([this] { watchSignals(); });
  return {};
}

Result<void> Daemon::dropCapabilities() {
  // Root by hand keeps uid 0 (with only these capabilities); a user of its own is the unit's
  // job (User=waitwatch).
  auto drop = dropPrivileges(neededCapabilities(config_.namespaces));
  if (!drop) return drop.error().wrap("cannot drop capabilities");
  droppedAtStart_ = drop->dropped;
  logger_.log(6, drop->summary());
  return {};
}

Result<void> Daemon::startNotifier() {
  notifier_ = std::make_unique<Notifier>();
  if (!notifier_->problem().empty()) logger_.log(4, notifier_->problem());
  return {};
}

Result<void> Daemon::loadInitialConfig() {
  configSource_ = chooseConfigSource(options_.args, options_.defaultConfigPath);
  auto config = loadConfig(configSource_, options_.args, &servedTls_);
  if (!config) return config.error();
  config_ = std::move(*config);
  engine_ = std::make_unique<Engine>(config_);
  fdForecaster_.setWindow(config_.forecast.window);
  health_->configReloaded(true, static_cast<double>(realtimeMs()) / 1000.0);
  health_->pollInterval(static_cast<double>(config_.pollInterval.count()) / 1000.0);
  return {};
}

Result<void> Daemon::bindListen() {
  const auto address = parseListenAddress(config_.listen);
  if (!address) return Error{EINVAL, "listen: \"" + config_.listen + "\" is not ADDR:PORT"};
  auto fd = bindListener(*address);
  if (!fd) return fd.error();
  listener_ = std::move(*fd);
  // Port 0 asks the kernel for a free port (tests): report the one we got.
  if (address->port == 0) {
    if (auto bound = localEndpoint(listener_.get()); bound) config_.listen = bound->toString();
  }
  return {};
}

Result<void> Daemon::openSource() {
  if (!options_.sourceFactory) return Error{0, "no socket source configured"};
  auto source = options_.sourceFactory(config_);
  if (!source) return source.error();
  source_ = std::move(*source);
  return {};
}

Result<void> Daemon::startJournal() {
  auto health = health_;  // the writer may outlive us if journald hangs: share ownership
  journal_ = std::make_unique<JournalWriter>(
      options_.journal,
      JournalWriter::Counters{
          .written = [health] { health->journalWritten(); },
          .dropped = [health](bool queueFull) { health->journalDropped(queueFull); }});
  return {};
}

Result<void> Daemon::startHttp() {
  auto api = std::make_shared<DaemonApi>(
      pollMetrics_, std::vector<std::shared_ptr<const prometheus::Collectable>>{
                        pollMetrics_, health_->registry(), processMetrics_});
  auth_->setUsers(config_.web.basicAuthUsers);
  HttpServerOptions http = options_.http;
  http.tls = servedTls_;
  http.auth = auth_;
  auto server = HttpServer::start(
      std::move(listener_), [api](const HttpRequest& r) { return api->handle(r); }, http);
  if (!server) return server.error();
  http_ = std::move(*server);
  return {};
}

Result<void> Daemon::armTimer(Duration interval) {
  if (!timerFd_) {
    timerFd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timerFd_) return osError(errno, "timerfd");
  }
  const auto ms = interval.count();
  itimerspec spec{};
  spec.it_interval.tv_sec = static_cast<time_t>(ms / 1000);
  spec.it_interval.tv_nsec = static_cast<long>((ms % 1000) * 1'000'000);
  if (polls_ == 0) {
    spec.it_value.tv_nsec = 1;  // the first poll right away
  } else {
    spec.it_value = spec.it_interval;
  }
  if (::timerfd_settime(timerFd_.get(), 0, &spec, nullptr) != 0) {
    return osError(errno, "timerfd_settime");
  }
  return {};
}

void Daemon::loop() {
  while (!stopRequested_) {
    pollfd fds[2] = {{wakeFd_.get(), POLLIN, 0}, {timerFd_.get(), POLLIN, 0}};
    // With a watchdog, wake at least four times per watchdog period to ping it.
    const int timeout = watchdogUsec_ > 0 ? static_cast<int>(watchdogUsec_ / 4000) : -1;
    const int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      logger_.log(2, osError(errno, "poll").message);
      return;
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto r = ::read(wakeFd_.get(), &count, sizeof count);
    }
    // Signals first: a SIGTERM that arrives with a due timer stops without one more poll.
    if (stopRequested_) break;
    if (reloadRequested_.exchange(false)) reload();
    if (n > 0 && (fds[1].revents & POLLIN)) {
      std::uint64_t expirations = 0;
      // Several expirations mean the last poll overran: one poll now, never a backlog.
      if (::read(timerFd_.get(), &expirations, sizeof expirations) > 0) pollOnce();
    }
    pingWatchdog(false);
  }
}

void Daemon::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wakeFd_.get(), &one, sizeof one);
}

void Daemon::finishLoop() {
  {
    std::lock_guard lock(loopMutex_);
    loopDone_ = true;
  }
  loopFinished_.notify_all();
}

void Daemon::watchSignals() {
  for (;;) {
    pollfd fds[2] = {{signalFd_.get(), POLLIN, 0}, {quitFd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    signalfd_siginfo info{};
    while (::read(signalFd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (info.ssi_signo == SIGHUP) {
        reloadRequested_ = true;
        wake();
        continue;
      }
      const char* name = info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
      logger_.log(6, std::string("received ") + name + ", stopping");
      stopRequested_ = true;
      wake();
      // The loop stops at once unless it is inside a poll, which cannot be interrupted. A
      // stop must not wait for a poll of a million sockets: past the deadline the process
      // ends here, without the teardown (the kernel closes every fd; nothing is on disk).
      std::unique_lock lock(loopMutex_);
      if (!loopFinished_.wait_for(lock, std::chrono::milliseconds(800),
                                  [this] { return loopDone_; })) {
        notifier_->sendNow("STOPPING=1\nSTATUS=stopping during a poll");
        logger_.log(4, std::string("a poll was still running 0.8s after ") + name +
                           ": stopped without waiting for it");
        // The one thing the kernel would keep: the programs pinned for the command line.
        bpf::removePinsOfThisProcess();
        ::_exit(0);
      }
      return;
    }
  }
}

void Daemon::pollOnce() {
  const auto start = Clock::now();
  const std::int64_t wall = realtimeMs();
  auto collected = source_->collect(start, config_.pollInterval);
  // A failed poll still shows a loop that polls (waitwatch_poll_errors_total says it failed).
  lastPollEndUsec_ = monotonicUsec();
  if (!collected) {
    health_->pollError(PollErrorReason::Collect);
    const std::string& message = collected.error().message;
    if (message != lastPollError_) {  // once per distinct error, not once per poll
      logger_.log(3, "poll failed: " + message);
      lastPollError_ = message;
    }
    notifier_->status("poll failed: " + message);
    return;
  }
  if (!lastPollError_.empty()) {
    logger_.log(5, "polls succeed again");
    lastPollError_.clear();
  }
  reportProblems(source_->takeProblems());
  Snapshot& current = *collected;
  current.time = start;
  current.pollInterval = config_.pollInterval;

  fdForecaster_.update(current, start);
  bool transitions = false;  // a Firing or Resolved: saved at once, not announced again
  for (const Alert& a : engine_->evaluate(current, start)) {
    emit(a);
    transitions = transitions || a.state != AlertState::StillFiring;
  }

  auto view = std::make_shared<PollView>();
  view->processOldestCloseWait = engine_->oldestCloseWaitByProcess(current, start);
  // The per-socket records have served the engine; readers of the published view (scrapes,
  // the API) never use them. Freed now, they are not kept alive beside the ones the next poll
  // builds: at 500,000 CLOSE_WAIT sockets that second copy alone was ~40 MB (bench/).
  std::vector<CloseWaitSocket>().swap(current.closeWait);
  std::vector<std::uint32_t>().swap(current.ownerLinks);
  std::vector<IpAddress>().swap(current.addresses);  // what the records' indices pointed at
  auto snapshot = std::make_shared<const Snapshot>(std::move(current));
  view->snapshot = snapshot;
  view->firing = engine_->firing();
  addTimeWaitClosed(closedTotals_, *snapshot, config_.metrics.includePid, start,
                    kForgetClosersAfter, kMaxCloserGroups);
  for (const auto& [group, closed] : closedTotals_)
    view->timeWaitClosedTotal.emplace(group, closed.total);
  TimeWaitCreatedTotals created = addTimeWaitCreated(timeWaitCreated_, snapshot->namespaces);
  view->timeWaitCreatedTotal = std::move(created.totals);
  timeWaitCreated_ = std::move(created.byInode);
  view->pollCount = ++polls_;
  view->unixTimeMs = wall;
  view->pollDuration = std::chrono::duration_cast<Duration>(Clock::now() - start);
  const std::size_t firing = view->firing.size();
  pollMetrics_->publish(std::move(view), config_.metrics);

  const auto elapsed = Clock::now() - start;
  const bool overran = elapsed > config_.pollInterval;
  health_->observePoll(toSeconds(elapsed), overran, static_cast<double>(wall) / 1000.0);
  if (overran && !overrunLogged_) {
    overrunLogged_ = true;
    logger_.log(4, "a poll took " + humanDuration(std::chrono::duration_cast<Duration>(elapsed)) +
                       ", longer than poll_interval " + formatDuration(config_.pollInterval) +
                       ": polls run back to back, never stacked (waitwatch_poll_overruns_total "
                       "counts them)");
  }

  // A restart after a stop that could not wait for its poll (see watchSignals) must not
  // announce an alert twice: a poll that fired or resolved one saves at once.
  if (transitions || !lastSave_ || Clock::now() - *lastSave_ >= config_.state.saveInterval) {
    saveState(Clock::now(), realtimeMs());
  }

  const std::string status = statusLine(*snapshot, firing);
  if (!ready_) {
    ready_ = true;
    notifier_->event("READY=1\nSTATUS=" + status);
  } else {
    notifier_->status(status);
  }
}

void Daemon::reload() {
  notifier_->event("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicUsec()) +
                   "\nSTATUS=reloading the configuration");
  const ConfigSource source = chooseConfigSource(options_.args, options_.defaultConfigPath);
  std::optional<TlsCredentials> tls;
  auto loaded = loadConfig(source, options_.args, &tls);
  ReloadPlan plan = planReload(config_, std::move(loaded), droppedAtStart_,
                               http_ ? servedTls_ : std::nullopt, tls);
  std::unique_ptr<SnapshotSource> newSource;
  if (!plan.rejected && plan.newSource) {
    auto made = options_.sourceFactory(plan.config);
    if (made) {
      newSource = std::move(*made);
    } else {
      plan.rejected = made.error();
    }
  }
  if (plan.rejected) {
    // The new file is rejected as a whole; nothing of it was applied.
    const std::string& error = plan.rejected->message;
    logger_.log(3, "configuration " + source.describe() +
                       " rejected, still running on the previous one: " + error);
    journal_->submit(configRejectedEntry(source.describe(), error));
    health_->configReloaded(false, 0);
    notifier_->event("READY=1\nSTATUS=configuration reloaded");
    return;
  }
  for (const auto& [priority, line] : plan.logs)
    logger_.log(priority, line);
  if (plan.tls == ReloadPlan::Tls::Renew) {
    if (auto renewed = http_->reloadCertificate(*tls)) {
      servedTls_ = std::move(tls);
      logger_.log(
          6, "serving the certificate of " + plan.config.web.tls->certFile + " to new connections");
    } else {
      logger_.log(3, "cannot serve the renewed certificate (" + renewed.error().message +
                         "); still serving the previous one");
      plan.config.web.tls = config_.web.tls;
    }
  }
  // Users apply now.
  auth_->setUsers(plan.config.web.basicAuthUsers);
  if (newSource) source_ = std::move(newSource);
  // Closer groups are keyed with or without their pid: start over when that changes, or two
  // series with the same labels would be exported.
  if (plan.config.metrics.includePid != config_.metrics.includePid) closedTotals_.clear();
  engine_->reconfigure(plan.config);
  fdForecaster_.setWindow(plan.config.forecast.window);
  for (const Alert& a : engine_->takeDroppedOnReconfigure())
    emit(a);
  config_ = std::move(plan.config);
  stateWhere_ = stateLocation(config_.state.directory, std::getenv("STATE_DIRECTORY"));
  configSource_ = source;
  if (plan.intervalChanged) {
    if (auto r = armTimer(config_.pollInterval); !r) logger_.log(3, r.error().message);
    // The next poll is a whole new interval away: the watchdog's grace counts from now.
    lastPollEndUsec_ = monotonicUsec();
  }
  health_->configReloaded(true, static_cast<double>(realtimeMs()) / 1000.0);
  health_->pollInterval(static_cast<double>(config_.pollInterval.count()) / 1000.0);
  logger_.log(6, "configuration reloaded from " + source.describe() + ": " + config_.summary());
  notifier_->event("READY=1\nSTATUS=configuration reloaded");
}

void Daemon::restoreState() {
  // Read whether or not a directory is set now: a reload may set one.
  auto boot = currentBootId();
  if (!boot) {
    logger_.log(4, "state: not kept across restarts: " + boot.error().message);
    return;
  }
  bootId_ = *boot;
  stateWhere_ = stateLocation(config_.state.directory, std::getenv("STATE_DIRECTORY"));
  const auto& where = stateWhere_;
  if (!where) {
    logger_.log(6,
                "state: not kept across restarts (set state.directory, or $STATE_DIRECTORY as "
                "systemd's StateDirectory= does): CLOSE_WAIT ages start at the first poll");
    return;
  }
  const std::string file = where->file();
  const TimePoint now = Clock::now();
  auto loaded = loadState(file, *bootId_, now);
  if (!loaded) {
    logger_.log(4, "state: " + file + ": " + loaded.error().message +
                       "; starting without it (it is replaced at the next save)");
    return;
  }
  if (!loaded->state) {
    logger_.log(6, "state: kept in " + file + " (from " + where->origin + "); none saved yet");
    return;
  }
  state::SavedState& saved = *loaded->state;
  const RestoreSummary r = engine_->restore(saved.engine.rules, saved.ages, now);
  const std::size_t fds = fdForecaster_.restore(saved.engine, now);
  logger_.log(
      6, "state: restored from " + file + ", saved " + humanDuration(loaded->age) + " ago: " +
             std::to_string(r.ages) + " CLOSE_WAIT socket ages, " + std::to_string(r.groups) +
             (r.groups == 1 ? " alert group (" : " alert groups (") + std::to_string(r.firing) +
             " firing), fd histories of " + std::to_string(fds) + " processes" +
             (r.dropped > 0 ? "; " + std::to_string(r.dropped) +
                                  " firing alerts of rules no longer configured resolve"
                            : ""));
}

void Daemon::saveState(TimePoint now, std::int64_t unixMs) {
  lastSave_ = now;
  if (!bootId_) return;
  const auto& where = stateWhere_;
  if (!where) return;
  auto saved = waitwatch::saveState(where->file(), *bootId_, *engine_, fdForecaster_, now, unixMs);
  health_->stateSaved(saved.ok());
  if (!saved) {
    // Once per distinct error, and once when it works again.
    if (saved.error().message != lastSaveError_) {
      lastSaveError_ = saved.error().message;
      logger_.log(4, "state: cannot save: " + lastSaveError_);
    }
    return;
  }
  if (!lastSaveError_.empty()) {
    logger_.log(5, "state: saved again to " + where->file());
    lastSaveError_.clear();
  }
}

void Daemon::reportProblems(const SnapshotSource::Problems& problems) {
  for (const auto& e : problems.namespaceErrors) {
    health_->pollError(PollErrorReason::Namespace);
    if (warned_.size() < 1000 && warned_.insert(e).second) logger_.log(4, e);
  }
  for (const auto& w : problems.warnings) {
    if (warned_.size() < 1000 && warned_.insert(w).second) logger_.log(4, w);
  }
  for (const auto& n : problems.notes) {
    if (warned_.size() < 1000 && warned_.insert(n).second) logger_.log(6, n);
  }
}

void Daemon::emit(const Alert& alert) {
  journal_->submit(alertEntry(alert));
  // Run by hand, the alert also shows on the terminal; under systemd the journal has it.
  if (!logger_.stderrIsJournal()) {
    logger_.log(alert.state == AlertState::Resolved ? 5 : 4, alertLine(alert));
  }
}

void Daemon::pingWatchdog(bool force) {
  if (watchdogUsec_ == 0) return;
  const std::uint64_t now = monotonicUsec();
  switch (watchdog_.step(now, watchdogUsec_, lastPollEndUsec_, config_.pollInterval, force)) {
    case WatchdogGate::Action::Ping:
      notifier_->watchdog();
      break;
    case WatchdogGate::Action::StartWithholding:
      logger_.log(3, "no poll for " + humanDuration(Duration((now - lastPollEndUsec_) / 1000)) +
                         " (poll_interval " + formatDuration(config_.pollInterval) +
                         "): the watchdog is no longer told all is well");
      break;
    case WatchdogGate::Action::Nothing:
      break;
  }
}

}  // namespace

int runDaemon(const DaemonOptions& options) {
  Daemon daemon(options);
  return daemon.run();
}

}  // namespace waitwatch
