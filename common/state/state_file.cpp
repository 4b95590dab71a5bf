// SPDX-License-Identifier: Apache-2.0
#include "state/state_file.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "state/engine_state_json.hpp"

namespace waitwatch::state {
namespace {

constexpr std::string_view kMagic = "WAITWATCH-STATE\n";
constexpr std::size_t kHeaderSize = 16 + 8 + 16 + 16;
constexpr std::size_t kRecordHeaderSize = 16;
constexpr std::size_t kAgeSize = 16;
constexpr std::uint32_t kAges = 1, kEngine = 2, kEnd = 3;
constexpr std::size_t kBuffer = 64 * 1024;

void putLe(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t getLe(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
  return v;
}

// Buffers the bytes for the sink and keeps the running CRC.
class Out {
 public:
  explicit Out(StateSink sink) : sink_(sink) { buf_.reserve(kBuffer); }
  std::string& buf() { return buf_; }
  bool flushIfFull() { return buf_.size() < kBuffer - 64 || flush(); }
  bool flush() {
    crc_ =
        ::crc32(crc_, reinterpret_cast<const Bytef*>(buf_.data()), static_cast<uInt>(buf_.size()));
    const bool ok = buf_.empty() || sink_(buf_);
    buf_.clear();
    return ok;
  }
  void record(std::uint32_t kind, std::uint64_t size) {
    putLe(buf_, kind, 4);
    putLe(buf_, 0, 4);
    putLe(buf_, size, 8);
  }
  [[nodiscard]] std::uint32_t crc() const { return static_cast<std::uint32_t>(crc_); }

 private:
  StateSink sink_;
  std::string buf_;
  uLong crc_ = ::crc32(0, nullptr, 0);
};

}  // namespace

std::optional<std::array<std::uint8_t, 16>> parseBootId(std::string_view text) {
  std::array<std::uint8_t, 16> out{};
  std::size_t n = 0;
  for (char c : text) {
    if (c == '-' || c == '\n') continue;
    int v = 0;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else
      return std::nullopt;
    if (n == 32) return std::nullopt;
    out[n / 2] = static_cast<std::uint8_t>(out[n / 2] << 4 | v);
    ++n;
  }
  if (n != 32) return std::nullopt;
  return out;
}

Result<void> writeState(const StateHeader& header, std::size_t ageCount, AgeSource forEachAge,
                        const EngineState& engine, StateSink sink) {
  Out out(sink);
  std::string& b = out.buf();
  b.append(kMagic);
  putLe(b, kStateVersion, 4);
  putLe(b, 0, 4);
  b.append(reinterpret_cast<const char*>(header.bootId.data()), header.bootId.size());
  putLe(b, static_cast<std::uint64_t>(header.savedSteadyMs), 8);
  putLe(b, static_cast<std::uint64_t>(header.savedUnixMs), 8);

  out.record(kAges, std::uint64_t{ageCount} * kAgeSize);
  std::size_t written = 0;
  bool ok = true;
  forEachAge([&](const SavedAge& a) {
    if (!ok || written == ageCount) {
      ++written;
      return;
    }
    putLe(b, a.cookie, 8);
    putLe(b, static_cast<std::uint64_t>(a.firstSeenMs) << 1 | (a.lowerBound ? 1u : 0u), 8);
    ++written;
    ok = out.flushIfFull();
  });
  if (!ok) return Error{EIO, "the state could not be written"};
  if (written != ageCount) {
    return Error{EINVAL, "the state has " + std::to_string(written) + " socket ages, not " +
                             std::to_string(ageCount)};
  }

  const std::string text = engineStateToJson(engine).dump();
  out.record(kEngine, text.size());
  b.append(text);
  out.record(kEnd, 4);
  if (!out.flush()) return Error{EIO, "the state could not be written"};
  std::string crc;
  putLe(crc, out.crc(), 4);
  if (!sink(crc)) return Error{EIO, "the state could not be written"};
  return {};
}

Result<SavedState> readState(std::string_view in) {
  const auto bad = [](std::string what) { return Error{EBADMSG, std::move(what)}; };
  if (in.size() < kHeaderSize || in.substr(0, kMagic.size()) != kMagic) {
    return bad("not a waitwatch state file (it does not begin with \"WAITWATCH-STATE\")");
  }
  const auto version = static_cast<std::uint32_t>(getLe(in, 16, 4));
  if (version != kStateVersion) {
    return bad("version " + std::to_string(version) + ", this waitwatchd reads version " +
               std::to_string(kStateVersion));
  }
  SavedState out;
  std::memcpy(out.header.bootId.data(), in.data() + 24, 16);
  out.header.savedSteadyMs = static_cast<std::int64_t>(getLe(in, 40, 8));
  out.header.savedUnixMs = static_cast<std::int64_t>(getLe(in, 48, 8));
  if (out.header.savedSteadyMs < 0) return bad("the time it was saved is negative");

  bool sawAges = false, sawEngine = false;
  std::size_t at = kHeaderSize;
  for (;;) {
    if (in.size() - at < kRecordHeaderSize) {
      return bad("truncated: it ends at byte " + std::to_string(in.size()) +
                 " without its end record");
    }
    const auto kind = static_cast<std::uint32_t>(getLe(in, at, 4));
    const std::uint64_t size = getLe(in, at + 8, 8);
    const std::size_t body = at + kRecordHeaderSize;
    if (size > in.size() - body) {
      return bad("truncated: the record at byte " + std::to_string(at) + " says " +
                 std::to_string(size) + " bytes, " + std::to_string(in.size() - body) +
                 " are left");
    }
    const std::string_view payload = in.substr(body, size);
    const std::string where = "the record at byte " + std::to_string(at);
    if (kind == kEnd) {
      if (size != 4) return bad(where + " (end) has " + std::to_string(size) + " bytes, not 4");
      const auto stored = static_cast<std::uint32_t>(getLe(in, body, 4));
      const auto crc = static_cast<std::uint32_t>(::crc32(::crc32(0, nullptr, 0),
                                                          reinterpret_cast<const Bytef*>(in.data()),
                                                          static_cast<uInt>(body)));
      if (stored != crc) return bad("its checksum does not match: the file is damaged");
      if (body + 4 != in.size()) return bad("bytes follow its end record");
      break;
    }
    if (kind == kAges) {
      if (sawAges) return bad(where + ": socket ages a second time");
      if (size % kAgeSize != 0) {
        return bad(where + ": " + std::to_string(size) +
                   " bytes of socket ages, not a multiple of 16");
      }
      sawAges = true;
      out.ages.reserve(size / kAgeSize);
      for (std::size_t i = 0; i < size; i += kAgeSize) {
        const std::uint64_t v = getLe(payload, i + 8, 8);
        out.ages.push_back(
            SavedAge{getLe(payload, i, 8), static_cast<std::int64_t>(v >> 1), (v & 1u) != 0});
      }
    } else if (kind == kEngine) {
      if (sawEngine) return bad(where + ": the rules' state a second time");
      sawEngine = true;
      const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded()) return bad(where + ": the rules' state is not JSON");
      auto engine = engineStateFromJson(j);
      if (!engine) return engine.error().wrap(where);
      out.engine = std::move(*engine);
    }
    at = body + size;
  }
  return out;
}

}  // namespace waitwatch::state
