// SPDX-License-Identifier: Apache-2.0
// Fuzz entries for the state file waitwatchd keeps across restarts.
#include <zlib.h>

#include <string>
#include <string_view>

#include "fuzz_entries.hpp"
#include "rules/engine.hpp"
#include "rules/fd_forecast.hpp"
#include "state/state_file.hpp"

namespace waitwatch::fuzz {
namespace {

// What must hold for one input that readState accepted or refused.
const char* check(std::string_view bytes) {
  auto read = state::readState(bytes);
  if (!read) {
    const std::string& m = read.error().message;
    if (m.empty() || m.size() > 4096) return "an error without a message, or a huge one";
    for (unsigned char c : m) {
      if (c < 0x20 || c == 0x7f) return "an error with a control character";
    }
    return nullptr;
  }
  // What reads writes back as a file that reads as the same state.
  std::string again;
  auto written = state::writeState(
      read->header, read->ages.size(),
      [&](auto yield) {
        for (const SavedAge& a : read->ages)
          yield(a);
      },
      read->engine,
      [&](std::string_view b) {
        again.append(b);
        return true;
      });
  if (!written) return "a state that reads does not write";
  auto back = state::readState(again);
  if (!back) return "a state written from a read one does not read back";
  if (back->header != read->header || back->engine != read->engine) {
    return "a state does not read back as itself";
  }
  // Ages are written as 63 bits and a flag: equal where they fit.
  if (back->ages.size() != read->ages.size()) return "ages lost on the way back";
  // A restore of anything that reads, then polls, must hold together (times clamped).
  Config config = defaultConfig();
  Engine engine(config);
  const TimePoint now = TimePoint{} + std::chrono::hours(24);
  engine.restore(read->engine.rules, read->ages, now);
  FdForecaster forecaster(Duration(600'000));
  forecaster.restore(read->engine, now);
  Snapshot empty;
  (void)engine.evaluate(empty, now + std::chrono::seconds(5));
  forecaster.update(empty, now + std::chrono::seconds(5));
  (void)engine.takeDroppedOnReconfigure();
  if (engine.trackedSockets() != 0) return "ages of sockets no poll saw were kept";
  return nullptr;
}

}  // namespace

const char* stateFile(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (const char* broken = check(bytes)) return broken;
  // The CRC would stop almost every mutation at the door: the same bytes with it made right
  // reach the records and the JSON.
  if (size < 4) return nullptr;
  std::string fixed(bytes);
  const auto crc = static_cast<std::uint32_t>(::crc32(::crc32(0, nullptr, 0),
                                                      reinterpret_cast<const Bytef*>(fixed.data()),
                                                      static_cast<uInt>(size - 4)));
  for (int i = 0; i < 4; ++i)
    fixed[size - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return check(fixed);
}

}  // namespace waitwatch::fuzz
