// SPDX-License-Identifier: Apache-2.0
#pragma once
// When a process holding CLOSE_WAIT sockets runs out of file descriptors: the growth of its
// open fds over the forecast window, as a robust slope, extrapolated to its RLIMIT_NOFILE.
//
// The slope is Theil-Sen's: the median of the slopes between every two samples of the window.
// Unlike a two-point difference or a least-squares fit, a burst of fds opened and closed again
// (a backup, a reload) moves it only if it lasts for most of the window. A forecast needs
// kMinForecastPoints samples spanning a quarter of the window, and it disappears once the
// process has not grown over the last quarter of the window: a leak that stopped is not one
// that will break the service. A process at its limit has run out: its forecast is zero, with
// or without growth. Pure: values and times in.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/duration.hpp"
#include "core/snapshot.hpp"
#include "rules/engine_state.hpp"

namespace waitwatch {

inline constexpr std::size_t kMinForecastPoints = 5;
inline constexpr Duration kForecastHorizon{365LL * 86'400'000};  // later is no forecast
inline constexpr std::size_t kMaxForecastSamples = 64;  // per process, spaced over the window
inline constexpr std::size_t kMaxForecastPairs = 4096;  // (source, destination) pairs followed

struct FdSample {
  std::int64_t ms = 0;
  std::uint64_t fds = 0;
};

// Theil-Sen: the median slope (fds per ms) over every two points with distinct times; nullopt
// with fewer than two such points. `scratch` is reused between calls.
std::optional<double> medianSlope(std::span<const FdSample> points, std::vector<double>& scratch);

class FdForecaster {
 public:
  explicit FdForecaster(Duration window) : window_(window) {}
  // A new window keeps the samples (those older than it drop out at the next update).
  void setWindow(Duration window) { window_ = window; }
  [[nodiscard]] Duration window() const { return window_; }

  // This poll's open fds of every process of `snap` that has them into its history, and the
  // process's fdForecast set where it grows toward a known limit; the same for the host's TCP
  // memory toward tcp_mem's pressure and max (snap.tcpMemory.toPressure, toMax), and for the
  // CLOSE_WAIT sockets of each client-side (source, destination) pair toward the ports of the
  // usable ephemeral range its other connections leave (TimeWaitGroup::portExhaustion). `now` must
  // not go backwards. Processes and pairs absent for a whole window are forgotten.
  void update(Snapshot& snap, TimePoint now);

  [[nodiscard]] std::size_t tracked() const { return histories_.size(); }

  // The histories, times on the steady clock, into `out` (fdHistories, tcpMemory) to keep across
  // a restart.
  void save(EngineState& out) const;
  // Takes over saved histories before the first update (later: ignored, returns 0); times after
  // `now` are taken as `now`. Returns how many processes it took.
  std::size_t restore(const EngineState& saved, TimePoint now);

 private:
  struct KeyHash {
    std::size_t operator()(const ProcessKey& k) const {
      return std::hash<std::uint64_t>()(k.startTime * 0x9e3779b97f4a7c15ULL ^
                                        static_cast<std::uint32_t>(k.pid));
    }
  };
  struct History {
    std::vector<FdSample> samples;  // oldest first, at least window / kMaxForecastSamples apart
    std::uint64_t poll = 0;         // the update that last saw it
    std::int64_t lastMs = 0;        // and when
    std::optional<FdForecast> forecast;
  };
  // Where `value` reaches `limit` at the growth of `samples` (and now) over the window.
  std::optional<FdForecast> forecast(std::span<const FdSample> samples, std::int64_t nowMs,
                                     std::uint64_t value, std::uint64_t limit);
  void updateTcpMemory(TcpMemory& m, std::int64_t nowMs, std::int64_t spacing);
  void updatePorts(Snapshot& snap, std::int64_t nowMs, std::int64_t spacing);

  Duration window_;
  std::unordered_map<ProcessKey, History, KeyHash> histories_;
  std::vector<FdSample> tcpMemory_;  // pages in use, as `samples` of a History
  struct PairKey {
    std::uint64_t netnsInode = 0;
    IpAddress source;
    Endpoint destination;
    bool operator==(const PairKey&) const = default;
  };
  struct PairHash {
    std::size_t operator()(const PairKey& k) const {
      return k.netnsInode ^ (IpAddressHash()(k.source) * 31) ^ EndpointHash()(k.destination);
    }
  };
  std::unordered_map<PairKey, History, PairHash> pairs_;  // ports in use
  std::optional<TimePoint> epoch_;
  std::uint64_t poll_ = 0;
  std::vector<FdSample> points_;
  std::vector<double> slopes_;
};

}  // namespace waitwatch
