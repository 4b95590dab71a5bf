// SPDX-License-Identifier: Apache-2.0
#include "rules/engine.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "rules/alert_machine.hpp"
#include "rules/cookie_ages.hpp"
#include "rules/messages.hpp"
#include "rules/rule_evaluator.hpp"

namespace waitwatch {
namespace {

// How far ahead the cookie table is prefetched: its lookups otherwise wait on memory one by one.
constexpr std::size_t kAgesLookahead = 8;
// At most this many growth samples of a group are restored (a rule keeps fewer).
constexpr std::size_t kMaxRestoredSamples = 64;

std::array<std::unique_ptr<RuleEvaluator>, kRuleTypeCount> makeEvaluators() {
  std::array<std::unique_ptr<RuleEvaluator>, kRuleTypeCount> out;
  for (std::size_t t = 0; t < kRuleTypeCount; ++t)
    out[t] = ruleTypes()[t]->makeEvaluator();
  return out;
}

}  // namespace

// Indexed by RuleType: a new rule type adds its line here.
const std::array<const RuleTypeDefinition*, kRuleTypeCount>& ruleTypes() {
  static_assert(static_cast<std::size_t>(RuleType::CloseWait) == 0 &&
                static_cast<std::size_t>(RuleType::TimeWait) == 1);
  static const std::array<const RuleTypeDefinition*, kRuleTypeCount> types = {&closeWaitRuleType(),
                                                                              &timeWaitRuleType()};
  return types;
}

const EphemeralRange& defaultEphemeralRange() {
  static const EphemeralRange range;
  return range;
}

struct Engine::Impl {
  Config config;
  std::vector<RuleState> rules;
  std::vector<Alert> dropped;

  CookieAges ages;
  std::optional<TimePoint> epoch;  // the first poll (or earliest restored time): ms scale origin
  std::int64_t lastMs = 0;
  bool polled = false;  // sockets of the first poll were there before we looked: "at least"
  AlertMachine machine;
  std::array<std::unique_ptr<RuleEvaluator>, kRuleTypeCount> evaluators = makeEvaluators();
  std::array<std::vector<RuleState*>, kRuleTypeCount> byType;  // per poll
  std::vector<RuleEvaluator*> socketReaders;                   // per poll

  explicit Impl(const Config& c) { setRules(c); }

  void setRules(const Config& c) {
    std::vector<RuleState> next;
    next.reserve(c.rules.size());
    std::vector<bool> taken(rules.size(), false);
    for (const Rule& r : c.rules) {
      RuleState rs{r, {}};
      for (std::size_t i = 0; i < rules.size(); ++i) {
        if (!taken[i] && rules[i].rule.name == r.name && rules[i].rule.type == r.type) {
          rs.groups = std::move(rules[i].groups);
          taken[i] = true;
          break;
        }
      }
      next.push_back(std::move(rs));
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
      if (taken[i]) continue;
      for (auto& [key, g] : rules[i].groups) {
        if (!g.firing || !g.alert) continue;
        Alert a = *g.alert;
        a.reasons = g.firedReasons;
        a.since = g.since;
        a.firedAt = g.firedAt;
        if (a.type == RuleType::CloseWait) a.closeWait.peak = g.peak;
        a.at = epoch ? fromMs(lastMs) : TimePoint{};
        // The group keeps its latest values, not a text: say what the alert read as it fired.
        a.state = AlertState::Firing;
        const std::string was = alertMessage(a, rules[i].rule);
        a.state = AlertState::Resolved;
        a.message = "resolved: rule " + rules[i].rule.name +
                    " was removed from the configuration (it was: " + was + ")";
        dropped.push_back(std::move(a));
      }
    }
    rules = std::move(next);
    config = c;
    machine.reminderInterval = c.alerts.reminderInterval;
  }

  [[nodiscard]] std::int64_t toMs(TimePoint t) const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - *epoch).count();
  }
  [[nodiscard]] TimePoint fromMs(std::int64_t ms) const {
    return *epoch + std::chrono::milliseconds(ms);
  }

  std::vector<Alert> evaluate(const Snapshot& snap, TimePoint now) {
    ++machine.generation;
    const bool firstPoll = !polled;
    polled = true;
    if (!epoch) epoch = now;
    const std::int64_t nowMs = std::max(lastMs, toMs(now));
    lastMs = nowMs;
    now = fromMs(nowMs);

    for (auto& list : byType)
      list.clear();
    for (RuleState& rs : rules)
      byType[static_cast<std::size_t>(rs.rule.type)].push_back(&rs);
    socketReaders.clear();
    for (std::size_t t = 0; t < kRuleTypeCount; ++t) {
      evaluators[t]->begin(snap, byType[t], config);
      if (evaluators[t]->wantsCloseWaitSockets()) socketReaders.push_back(evaluators[t].get());
    }

    // One pass over the sockets: age each by cookie and feed it to the rules that read them.
    const std::vector<CloseWaitSocket>& sockets = snap.closeWait;
    ages.beginPoll(sockets.size());
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (i + kAgesLookahead < sockets.size()) ages.prefetch(sockets[i + kAgesLookahead].cookie);
      const CookieAges::Entry e = ages.touch(sockets[i].cookie, nowMs, firstPoll);
      for (RuleEvaluator* r : socketReaders)
        r->addCloseWaitSocket(snap, i, e, nowMs);
    }
    ages.endPoll();

    // Transitions in rule order.
    std::vector<Alert> out;
    std::array<std::size_t, kRuleTypeCount> index{};
    for (RuleState& rs : rules) {
      const auto t = static_cast<std::size_t>(rs.rule.type);
      evaluators[t]->finish(index[t]++, snap, now, nowMs, machine, out);
    }
    return out;
  }

  std::vector<SavedRule> saveRules() const {
    std::vector<SavedRule> out;
    for (const RuleState& rs : rules) {
      SavedRule r{rs.rule.name, rs.rule.type, {}};
      for (const auto& [key, g] : rs.groups) {
        SavedGroup s;
        s.key = key;
        if (g.pendingSince) s.pendingSinceMs = steadyMs(*g.pendingSince);
        if (g.falseSince) s.falseSinceMs = steadyMs(*g.falseSince);
        s.firing = g.firing;
        s.sinceMs = steadyMs(g.since);
        s.firedAtMs = steadyMs(g.firedAt);
        s.lastNotifiedMs = steadyMs(g.lastNotified);
        s.peak = g.peak;
        s.firedReasons = g.firedReasons;
        for (const Sample& h : g.history)
          s.history.push_back(SavedSample{steadyMs(fromMs(h.ms)), h.count});
        if (g.alert) s.alert = *g.alert;
        r.groups.push_back(std::move(s));
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  RestoreSummary restore(std::span<const SavedRule> saved, std::span<const SavedAge> saves,
                         TimePoint now) {
    if (polled) return {};
    const std::int64_t nowSteady = steadyMs(now);
    const auto clamp = [&](std::int64_t ms) { return std::clamp<std::int64_t>(ms, 0, nowSteady); };
    // The scale's origin: the earliest time restored, so every time on it is >= 0.
    std::int64_t origin = nowSteady;
    const auto lower = [&](std::int64_t ms) { origin = std::min(origin, clamp(ms)); };
    for (const SavedAge& a : saves)
      lower(a.firstSeenMs);
    for (const SavedRule& r : saved) {
      for (const SavedGroup& g : r.groups) {
        for (const SavedSample& h : g.history)
          lower(h.ms);
      }
    }
    epoch = TimePoint(std::chrono::milliseconds(origin));
    lastMs = toMs(now);

    RestoreSummary summary;
    ages.beginPoll(saves.size());
    for (const SavedAge& a : saves)
      ages.set(a.cookie, CookieAges::Entry{clamp(a.firstSeenMs) - origin, a.lowerBound});
    ages.endPoll();
    summary.ages = ages.size();

    const auto at = [&](std::int64_t ms) {
      return TimePoint(std::chrono::milliseconds(clamp(ms)));
    };
    for (const SavedRule& r : saved) {
      RuleState* into = nullptr;
      for (RuleState& rs : rules) {
        if (rs.rule.name == r.name && rs.rule.type == r.type) into = &rs;
      }
      for (const SavedGroup& s : r.groups) {
        if (into == nullptr) {
          if (!s.firing || !s.alert) continue;
          // The rule went from the configuration while the daemon was stopped.
          Alert a = *s.alert;
          a.rule = r.name;
          a.type = r.type;
          a.key = s.key;
          a.state = AlertState::Resolved;
          a.reasons = s.firedReasons;
          a.since = at(s.sinceMs);
          a.firedAt = at(s.firedAtMs);
          a.at = now;
          if (a.type == RuleType::CloseWait) a.closeWait.peak = s.peak;
          a.message = "resolved: rule " + r.name + " is no longer in the configuration";
          dropped.push_back(std::move(a));
          ++summary.dropped;
          continue;
        }
        GroupState g;
        if (s.pendingSinceMs) g.pendingSince = at(*s.pendingSinceMs);
        if (s.falseSinceMs) g.falseSince = at(*s.falseSinceMs);
        g.firing = s.firing && s.alert.has_value();
        g.since = at(s.sinceMs);
        g.firedAt = at(s.firedAtMs);
        g.lastNotified = at(s.lastNotifiedMs);
        g.peak = s.peak;
        g.firedReasons = s.firedReasons;
        // Oldest first and bounded, whatever the file says.
        for (const SavedSample& h : s.history) {
          if (g.history.size() == kMaxRestoredSamples) break;
          const std::int64_t ms = clamp(h.ms) - origin;
          if (g.history.empty() || ms >= g.history.back().ms)
            g.history.push_back(Sample{ms, h.value});
        }
        if (s.alert) {
          g.alert = std::make_unique<Alert>(*s.alert);
          // The group's identity is the rule's, whatever the file said.
          g.alert->rule = r.name;
          g.alert->type = r.type;
          g.alert->severity = into->rule.severity;
          g.alert->key = s.key;
        } else {
          g.pendingSince.reset();  // nothing to report if it fired
        }
        summary.firing += g.firing ? 1 : 0;
        ++summary.groups;
        into->groups.insert_or_assign(s.key, std::move(g));
      }
    }
    return summary;
  }

  static std::int64_t steadyMs(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  std::vector<Alert> firing() const {
    std::vector<Alert> out;
    for (const RuleState& rs : rules) {
      for (const auto& [key, g] : rs.groups) {
        if (!g.firing || !g.alert) continue;
        machine.emit(rs, g, AlertState::Firing, fromMs(lastMs), out);
      }
    }
    return out;
  }
};

Engine::Engine(const Config& config) : impl_(std::make_unique<Impl>(config)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

std::vector<Alert> Engine::evaluate(const Snapshot& snapshot, TimePoint now) {
  return impl_->evaluate(snapshot, now);
}

void Engine::reconfigure(const Config& config) {
  impl_->setRules(config);
}

std::vector<Alert> Engine::takeDroppedOnReconfigure() {
  return std::exchange(impl_->dropped, {});
}

std::vector<Alert> Engine::firing() const {
  return impl_->firing();
}

std::vector<SavedRule> Engine::saveRules() const {
  return impl_->saveRules();
}

void Engine::forEachAge(FunctionRef<void(const SavedAge&)> f) const {
  if (!impl_->epoch) return;
  const std::int64_t origin = Impl::steadyMs(*impl_->epoch);
  impl_->ages.forEach([&](std::uint64_t cookie, const CookieAges::Entry& e) {
    f(SavedAge{cookie, origin + e.firstSeenMs, e.lowerBound});
  });
}

RestoreSummary Engine::restore(std::span<const SavedRule> rules, std::span<const SavedAge> ages,
                               TimePoint now) {
  return impl_->restore(rules, ages, now);
}

std::optional<SocketAge> Engine::closeWaitAge(std::uint64_t cookie, TimePoint now) const {
  if (!impl_->epoch) return std::nullopt;
  const auto e = impl_->ages.find(cookie);
  if (!e) return std::nullopt;
  const std::int64_t age = std::max<std::int64_t>(0, impl_->toMs(now) - e->firstSeenMs);
  return SocketAge{Duration(age), e->lowerBound};
}

std::vector<SocketAge> Engine::oldestCloseWaitByProcess(const Snapshot& snapshot,
                                                        TimePoint now) const {
  std::vector<SocketAge> out(snapshot.processes.size());
  if (!impl_->epoch) return out;
  const std::int64_t nowMs = impl_->toMs(now);
  const std::size_t nproc = snapshot.processes.size();
  const std::vector<CloseWaitSocket>& sockets = snapshot.closeWait;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    const CloseWaitSocket& s = sockets[i];
    if (i + kAgesLookahead < sockets.size()) {
      impl_->ages.prefetch(sockets[i + kAgesLookahead].cookie);
    }
    const std::optional<CookieAges::Entry> e = impl_->ages.find(s.cookie);
    if (!e) continue;
    const SocketAge age{Duration(std::max<std::int64_t>(0, nowMs - e->firstSeenMs)), e->lowerBound};
    for (const std::uint32_t p : snapshot.owners(s.ownerBegin, s.ownerCount)) {
      if (p >= nproc) continue;
      if (age.age > out[p].age || (age.age == out[p].age && age.lowerBound)) out[p] = age;
    }
  }
  return out;
}

std::size_t Engine::trackedSockets() const {
  return impl_->ages.size();
}

std::size_t Engine::trackedBytes() const {
  return impl_->ages.memoryBytes();
}

}  // namespace waitwatch
