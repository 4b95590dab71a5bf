// SPDX-License-Identifier: Apache-2.0
#pragma once
// The state file on disk (format: state/state_file.hpp): what waitwatchd keeps across a
// restart, so that CLOSE_WAIT ages go on, a firing alert is not announced twice, and forecasts
// keep their history. It lives in state.directory, else in $STATE_DIRECTORY (systemd sets it
// from the unit's StateDirectory=; set it by hand to keep state there); without either the
// daemon keeps none. Written atomically (a temporary file, fsync, rename) on a schedule and at
// a clean stop. A file that is missing, damaged, foreign, or from another boot (the times are
// on the boot's steady clock) is reported and not used; it never stops the daemon.
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/duration.hpp"
#include "core/result.hpp"
#include "rules/engine.hpp"
#include "rules/fd_forecast.hpp"
#include "state/state_file.hpp"

namespace waitwatch {

inline constexpr const char* kStateFileName = "waitwatchd.state";
// A million CLOSE_WAIT sockets take 16 MB; a file past this (four million) is not read: its
// restore would need several times its size in memory.
inline constexpr std::size_t kMaxStateFileBytes = std::size_t{64} << 20;

// The directory to keep state in, and where that came from ("state.directory",
// "$STATE_DIRECTORY"); nullopt when neither names one. `envValue` is $STATE_DIRECTORY (may be
// null; systemd separates several directories with ':', the first is ours).
struct StateLocation {
  std::string directory;
  std::string origin;
  [[nodiscard]] std::string file() const { return directory + "/" + kStateFileName; }
};
std::optional<StateLocation> stateLocation(const std::string& configured, const char* envValue);

// This boot's id (/proc/sys/kernel/random/boot_id).
Result<std::array<std::uint8_t, 16>> currentBootId();

// What a load found: the state (nullopt: no file yet) and, to log, its age.
struct LoadedState {
  std::optional<state::SavedState> state;
  Duration age{0};
};
// Reads `path`. Errors say why the file is not used; the caller logs them and goes on.
Result<LoadedState> loadState(const std::string& path, const std::array<std::uint8_t, 16>& bootId,
                              TimePoint now);

// Writes the engine's and forecaster's state to `path`, replacing the file atomically.
Result<void> saveState(const std::string& path, const std::array<std::uint8_t, 16>& bootId,
                       const Engine& engine, const FdForecaster& forecaster, TimePoint now,
                       std::int64_t unixMs);

}  // namespace waitwatch
