// SPDX-License-Identifier: Apache-2.0
#pragma once
// The state file waitwatchd keeps across restarts (rules/engine_state.hpp), as bytes. Pure: the
// writer hands its bytes to a sink, the reader takes them as a value.
//
// Version 1, all integers little-endian:
//   "WAITWATCH-STATE\n"                  16 bytes of magic
//   u32 version, u32 zero
//   u8[16] boot id                       the boot whose steady clock the times are on
//   i64 saved_steady_ms, i64 saved_unix_ms
//   records: u32 kind, u32 zero, u64 size, then `size` bytes:
//     kind 1  socket ages: per socket u64 cookie, u64 first_seen_steady_ms << 1 | lower_bound
//     kind 2  the rules' and forecasts' state, JSON (state/engine_state_json.hpp)
//     kind 3  end: u32 CRC-32 (zlib's) of every byte before it (the end record's own 16-byte
//             header included); nothing may follow
// A reader skips kinds it does not know; a change it could not read bumps the version.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "rules/engine_state.hpp"

namespace waitwatch::state {

inline constexpr std::uint32_t kStateVersion = 1;

struct StateHeader {
  std::array<std::uint8_t, 16> bootId{};
  std::int64_t savedSteadyMs = 0;
  std::int64_t savedUnixMs = 0;
  bool operator==(const StateHeader&) const = default;
};

struct SavedState {
  StateHeader header;
  std::vector<SavedAge> ages;
  EngineState engine;
};

// "0123456789abcdef0123456789abcdef" or the uuid form of /proc/sys/kernel/random/boot_id.
std::optional<std::array<std::uint8_t, 16>> parseBootId(std::string_view text);

// Writes a state to `sink` (which returns false when it could not take the bytes: the write
// stops). `ageCount` is how many ages `forEachAge` yields.
using StateSink = FunctionRef<bool(std::string_view bytes)>;
using AgeSource = FunctionRef<void(FunctionRef<void(const SavedAge&)> yield)>;
Result<void> writeState(const StateHeader& header, std::size_t ageCount, AgeSource forEachAge,
                        const EngineState& engine, StateSink sink);

// Reads a whole file. Errors say what is wrong and at which byte ("truncated: the record at
// byte 48 says 1600 bytes, 12 are left"); nothing of a file with an error is used.
Result<SavedState> readState(std::string_view bytes);

}  // namespace waitwatch::state
