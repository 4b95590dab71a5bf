// SPDX-License-Identifier: Apache-2.0
#include "service/state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sys/file.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {
namespace {

std::int64_t steadyMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<StateLocation> stateLocation(const std::string& configured, const char* envValue) {
  if (!configured.empty()) return StateLocation{configured, "state.directory"};
  if (envValue == nullptr || *envValue == '\0') return std::nullopt;
  std::string dir(envValue);
  dir = dir.substr(0, dir.find(':'));
  if (!dir.starts_with('/')) return std::nullopt;
  return StateLocation{dir, "$STATE_DIRECTORY"};
}

Result<std::array<std::uint8_t, 16>> currentBootId() {
  constexpr const char* kPath = "/proc/sys/kernel/random/boot_id";
  auto text = readFile(kPath, 128);
  if (!text) return text.error();
  const auto id = state::parseBootId(*text);
  if (!id) return Error{EINVAL, std::string(kPath) + ": not a boot id"};
  return *id;
}

Result<LoadedState> loadState(const std::string& path, const std::array<std::uint8_t, 16>& bootId,
                              TimePoint now) {
  auto bytes = readRegularFile(path, kMaxStateFileBytes + 1);
  if (!bytes) {
    if (bytes.error().errnum == ENOENT) return LoadedState{};
    return bytes.error();
  }
  if (bytes->size() > kMaxStateFileBytes) {
    return Error{EFBIG, "larger than " + std::to_string(kMaxStateFileBytes >> 20) +
                            " MiB: not a state file this daemon wrote"};
  }
  auto saved = state::readState(*bytes);
  if (!saved) return saved.error();
  if (saved->header.bootId != bootId) {
    return Error{ESTALE, "saved before the last reboot: sockets and times of another boot"};
  }
  const std::int64_t nowMs = steadyMs(now);
  if (saved->header.savedSteadyMs > nowMs) {
    return Error{EINVAL, "saved at a time this boot has not reached yet"};
  }
  LoadedState out;
  out.age = Duration(nowMs - saved->header.savedSteadyMs);
  out.state = std::move(*saved);
  return out;
}

Result<void> saveState(const std::string& path, const std::array<std::uint8_t, 16>& bootId,
                       const Engine& engine, const FdForecaster& forecaster, TimePoint now,
                       std::int64_t unixMs) {
  const std::string tmp = path + ".tmp";
  // A fresh file every time: whatever is at that name (a leftover of a run as another user, a
  // link planted there) is removed, never written through.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return osError(errno, tmp);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return osError(errno, tmp);
  const state::StateHeader header{bootId, steadyMs(now), unixMs};
  EngineState es{engine.saveRules(), {}, {}};
  forecaster.save(es);
  int err = 0;
  auto written = state::writeState(
      header, engine.trackedSockets(), [&](auto yield) { engine.forEachAge(yield); }, es,
      [&](std::string_view bytes) {
        if (writeAll(fd.get(), bytes)) return true;
        err = errno;
        return false;
      });
  if (!written) {
    ::unlink(tmp.c_str());
    return err != 0 ? osError(err, tmp) : written.error().wrap(tmp);
  }
  // Durable before it replaces the old file: a crash leaves one or the other, whole.
  if (::fsync(fd.get()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return osError(err, tmp);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return osError(err, "rename to " + path);
  }
  const std::string dir = path.substr(0, path.rfind('/') + 1);
  if (UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d) ::fsync(d.get());
  return {};
}

}  // namespace waitwatch
