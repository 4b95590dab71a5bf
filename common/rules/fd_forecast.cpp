// SPDX-License-Identifier: Apache-2.0
#include "rules/fd_forecast.hpp"

#include <algorithm>
#include <cmath>

namespace waitwatch {

std::optional<double> medianSlope(std::span<const FdSample> points, std::vector<double>& scratch) {
  scratch.clear();
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (std::size_t j = i + 1; j < points.size(); ++j) {
      const std::int64_t dt = points[j].ms - points[i].ms;
      if (dt == 0) continue;
      const double df = static_cast<double>(points[j].fds) - static_cast<double>(points[i].fds);
      scratch.push_back(df / static_cast<double>(dt));
    }
  }
  if (scratch.empty()) return std::nullopt;
  const auto mid = scratch.begin() + static_cast<std::ptrdiff_t>(scratch.size() / 2);
  std::nth_element(scratch.begin(), mid, scratch.end());
  if (scratch.size() % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(scratch.begin(), mid);
  return (lower + upper) / 2.0;
}

std::optional<FdForecast> FdForecaster::forecast(std::span<const FdSample> samples,
                                                 std::int64_t nowMs, std::uint64_t fds,
                                                 std::uint64_t limit) {
  const std::int64_t windowMs = window_.count();
  points_.clear();
  for (const FdSample& s : samples) {
    if (s.ms >= nowMs - windowMs && s.ms < nowMs) points_.push_back(s);
  }
  points_.push_back(FdSample{nowMs, fds});
  if (points_.size() < kMinForecastPoints || nowMs - points_.front().ms < windowMs / 4) {
    return std::nullopt;
  }
  // Still growing: more open now than a quarter of the window ago.
  const FdSample* quarterAgo = nullptr;
  for (const FdSample& s : points_) {
    if (s.ms <= nowMs - windowMs / 4) quarterAgo = &s;
  }
  if (quarterAgo == nullptr || fds <= quarterAgo->fds) return std::nullopt;
  const auto slope = medianSlope(points_, slopes_);
  if (!slope || *slope <= 0.0) return std::nullopt;
  FdForecast f;
  f.perMinute = *slope * 60'000.0;
  if (fds < limit) {
    const double ms = static_cast<double>(limit - fds) / *slope;
    // Beyond a year a forecast says nothing (and a slow leak toward a limit of 2^30 would be
    // thousands of years): no forecast.
    if (!(ms <= static_cast<double>(kForecastHorizon.count()))) return std::nullopt;
    f.exhaustion = Duration(static_cast<std::int64_t>(ms));
  }
  return f;
}

void FdForecaster::update(Snapshot& snap, TimePoint now) {
  if (!epoch_) epoch_ = now;
  const std::int64_t nowMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - *epoch_).count();
  const std::int64_t windowMs = window_.count();
  const std::int64_t spacing =
      std::max<std::int64_t>(1, windowMs / static_cast<std::int64_t>(kMaxForecastSamples));
  ++poll_;
  for (ProcessEntry& p : snap.processes) {
    p.fdForecast.reset();
    if (p.openFds == 0) continue;
    History& h = histories_[p.info.key];
    if (h.poll != poll_) {  // once per process, which has an entry per namespace it uses
      h.poll = poll_;
      h.lastMs = nowMs;
      // Forgotten samples first: the window is what the forecast speaks for.
      const auto stale = std::find_if(h.samples.begin(), h.samples.end(),
                                      [&](const FdSample& s) { return s.ms >= nowMs - windowMs; });
      h.samples.erase(h.samples.begin(), stale);
      h.forecast = p.maxFds > 0 ? forecast(h.samples, nowMs, p.openFds, p.maxFds) : std::nullopt;
      // At the limit it has run out, growing or not (it cannot grow any more).
      if (!h.forecast && p.maxFds > 0 && p.openFds >= p.maxFds) h.forecast = FdForecast{};
      if (h.samples.empty() || nowMs - h.samples.back().ms >= spacing) {
        if (h.samples.size() == kMaxForecastSamples) h.samples.erase(h.samples.begin());
        h.samples.push_back(FdSample{nowMs, p.openFds});
      }
    }
    p.fdForecast = h.forecast;
  }
  updateTcpMemory(snap.tcpMemory, nowMs, spacing);
  updatePorts(snap, nowMs, spacing);
  // A process missing from a poll or two (an unreadable /proc read, its CLOSE_WAIT sockets
  // briefly gone) keeps its history for a window; its samples age out meanwhile.
  std::erase_if(histories_, [&](const auto& kv) { return nowMs - kv.second.lastMs > windowMs; });
}

void FdForecaster::updateTcpMemory(TcpMemory& m, std::int64_t nowMs, std::int64_t spacing) {
  m.toPressure.reset();
  m.toMax.reset();
  if (!m.valid) return;
  const std::int64_t windowMs = window_.count();
  std::erase_if(tcpMemory_, [&](const FdSample& s) { return s.ms < nowMs - windowMs; });
  for (auto [limit, into] : {std::pair{m.pressure, &m.toPressure}, std::pair{m.max, &m.toMax}}) {
    if (limit == 0) continue;  // unknown
    *into = forecast(tcpMemory_, nowMs, m.pages, limit);
    // Past the threshold it is there now (under pressure, or failing), growing or not.
    if (!*into && m.pages >= limit) *into = FdForecast{};
  }
  if (tcpMemory_.empty() || nowMs - tcpMemory_.back().ms >= spacing) {
    if (tcpMemory_.size() == kMaxForecastSamples) tcpMemory_.erase(tcpMemory_.begin());
    tcpMemory_.push_back(FdSample{nowMs, m.pages});
  }
}

void FdForecaster::updatePorts(Snapshot& snap, std::int64_t nowMs, std::int64_t spacing) {
  const std::int64_t windowMs = window_.count();
  for (TimeWaitGroup& g : snap.timeWait) {
    g.portExhaustion.reset();
    if (g.serverSide || g.closeWait == 0 || g.netns >= snap.namespaces.size()) continue;
    const NetnsEntry& ns = snap.namespaces[g.netns];
    const std::uint32_t usable = ns.ephemeral.usableCount();
    if (usable == 0) continue;
    const PairKey key{ns.ref.inode, g.source, g.destination};
    auto it = pairs_.find(key);
    if (it == pairs_.end()) {
      if (pairs_.size() >= kMaxForecastPairs) continue;
      it = pairs_.emplace(key, History{}).first;
    }
    History& h = it->second;
    if (h.poll == poll_) continue;
    h.poll = poll_;
    h.lastMs = nowMs;
    std::erase_if(h.samples, [&](const FdSample& s) { return s.ms < nowMs - windowMs; });
    // The leak's growth, against what the pair's other connections leave of the range: a
    // traffic ramp on a pair that holds a few CLOSE_WAIT sockets is not a leak.
    const std::uint64_t others = std::uint64_t{g.timeWait} + g.live - g.closeWait;
    const std::uint64_t room = others < usable ? usable - others : 0;
    g.portExhaustion = room > 0 ? forecast(h.samples, nowMs, g.closeWait, room) : std::nullopt;
    if (!g.portExhaustion && g.closeWait >= room) g.portExhaustion = FdForecast{};
    if (h.samples.empty() || nowMs - h.samples.back().ms >= spacing) {
      if (h.samples.size() == kMaxForecastSamples) h.samples.erase(h.samples.begin());
      h.samples.push_back(FdSample{nowMs, g.closeWait});
    }
  }
  std::erase_if(pairs_, [&](const auto& kv) { return nowMs - kv.second.lastMs > windowMs; });
}

void FdForecaster::save(EngineState& state) const {
  std::vector<SavedFdHistory>& out = state.fdHistories;
  out.clear();
  state.tcpMemory.clear();
  if (!epoch_) return;
  const std::int64_t origin =
      std::chrono::duration_cast<std::chrono::milliseconds>(epoch_->time_since_epoch()).count();
  for (const auto& [key, h] : histories_) {
    SavedFdHistory s{key, {}};
    for (const FdSample& f : h.samples)
      s.samples.push_back(SavedSample{origin + f.ms, f.fds});
    out.push_back(std::move(s));
  }
  // Deterministic files: the same state writes the same bytes.
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.process < b.process; });
  for (const FdSample& f : tcpMemory_)
    state.tcpMemory.push_back(SavedSample{origin + f.ms, f.fds});
}

std::size_t FdForecaster::restore(const EngineState& saved, TimePoint now) {
  if (poll_ != 0) return 0;
  const std::int64_t nowMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const auto clamp = [&](std::int64_t ms) { return std::clamp<std::int64_t>(ms, 0, nowMs); };
  std::int64_t origin = nowMs;
  for (const SavedFdHistory& s : saved.fdHistories) {
    for (const SavedSample& f : s.samples)
      origin = std::min(origin, clamp(f.ms));
  }
  for (const SavedSample& f : saved.tcpMemory)
    origin = std::min(origin, clamp(f.ms));
  epoch_ = TimePoint(std::chrono::milliseconds(origin));
  // Oldest first and at most kMaxForecastSamples, whatever the file says.
  const auto take = [&](std::span<const SavedSample> from, std::vector<FdSample>& into) {
    for (const SavedSample& f : from) {
      if (into.size() == kMaxForecastSamples) break;
      const std::int64_t ms = clamp(f.ms) - origin;
      if (!into.empty() && ms < into.back().ms) continue;
      into.push_back(FdSample{ms, f.value});
    }
  };
  for (const SavedFdHistory& s : saved.fdHistories) {
    History h;
    take(s.samples, h.samples);
    if (h.samples.empty()) continue;
    h.lastMs = h.samples.back().ms;
    histories_[s.process] = std::move(h);
  }
  tcpMemory_.clear();
  take(saved.tcpMemory, tcpMemory_);
  return histories_.size();
}

}  // namespace waitwatch
