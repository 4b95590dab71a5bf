// SPDX-License-Identifier: Apache-2.0
// Fuzz entries over the pure text parsers: /proc/<pid> files (common/proc) and the duration,
// address and CIDR parsers of common/core.
#include <array>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/duration.hpp"
#include "fuzz_check.hpp"
#include "fuzz_entries.hpp"
#include "proc/cgroup.hpp"
#include "proc/proc_text.hpp"

namespace waitwatch::fuzz {
namespace {

bool isContainerId(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool isPodUid(std::string_view s) {
  if (s.size() < 8 || s.size() > 64) return false;
  for (char c : s) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
    if (!ok) return false;
  }
  return true;
}

const char* checkContainer(const ContainerInfo& c) {
  static constexpr std::array<std::string_view, 5> kRuntimes = {"docker", "podman", "containerd",
                                                                "cri-o", "kubernetes"};
  if (c.runtime.empty()) {
    if (!c.id.empty() || !c.pod.empty()) return "container id or pod without a runtime";
    return nullptr;
  }
  bool known = false;
  for (auto r : kRuntimes)
    known = known || c.runtime == r;
  if (!known) return "unknown container runtime";
  if (!c.id.empty() && !isContainerId(c.id)) return "container id is not 64 hex digits";
  if (!c.pod.empty() && !isPodUid(c.pod)) return "pod uid is not hex and dashes";
  if (c.runtime != "kubernetes" && c.id.empty()) return "container without an id";
  if (c.runtime == "kubernetes" && c.id.empty() && c.pod.empty()) {
    return "kubernetes container without pod or id";
  }
  return nullptr;
}

const char* checkUnit(std::string_view unit) {
  if (unit.size() > 256) return "unit longer than 256 bytes";
  if (!isPrintableUtf8(unit)) return "unit not printable";
  return nullptr;
}

const char* stat(std::string_view text) {
  auto st = parseProcStat(text);
  if (!st) {
    if (!startsWith(st.error().message, "stat: ")) return "stat error does not say 'stat: '";
    if (!isOneLine(st.error().message)) return "stat error is not one printable line";
    return nullptr;
  }
  if (st->pid <= 0) return "stat: pid not positive";
  if (st->ppid < 0) return "stat: negative ppid";
  if (st->comm.size() > kMaxCommBytes) return "stat: comm longer than kMaxCommBytes";
  if (!isPrintableUtf8(st->comm)) return "stat: comm not printable";
  if (static_cast<unsigned char>(st->state) < 0x20) return "stat: control character as state";
  return nullptr;
}

const char* status(std::string_view text) {
  auto s = parseProcStatus(text);
  if (!s) {
    if (!startsWith(s.error().message, "status: ")) return "status error does not say 'status: '";
    if (!isOneLine(s.error().message)) return "status error is not one printable line";
    return nullptr;
  }
  if (text.find("Uid:") == std::string_view::npos) return "status parsed without a Uid line";
  return nullptr;
}

const char* limits(std::string_view text) {
  auto l = parseMaxOpenFiles(text);
  if (!l) {
    if (!startsWith(l.error().message, "limits: ")) return "limits error does not say 'limits: '";
    if (!isOneLine(l.error().message)) return "limits error is not one printable line";
    return nullptr;
  }
  if (text.find("Max open files ") == std::string_view::npos) {
    return "limits parsed without a \"Max open files\" line";
  }
  // A number read is one written in the text.
  if (*l && text.find(std::to_string(**l)) == std::string_view::npos) {
    return "limits: a soft limit that is not in the text";
  }
  return nullptr;
}

const char* cmdline(std::string_view raw) {
  for (std::size_t max : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{5},
                          std::size_t{6}, std::size_t{7}, std::size_t{16}, kMaxCmdlineBytes}) {
    const std::string out = formatCmdline(raw, max);
    if (out.size() > max) return "cmdline longer than its bound";
    if (!isPrintableUtf8(out)) return "cmdline not printable";
    // Nothing is lost when the whole text fits: as many bytes as in, or fewer (NULs at the
    // end are dropped), never more.
    if (out.size() > raw.size()) return "cmdline grew";
  }
  return nullptr;
}

const char* cgroup(std::string_view text) {
  auto c = parseCgroupFile(text);
  if (!c) {
    if (!startsWith(c.error().message, "cgroup: ")) return "cgroup error does not say 'cgroup: '";
    if (!isOneLine(c.error().message)) return "cgroup error is not one printable line";
  } else {
    if (c->path.size() > kMaxCgroupPathBytes) return "cgroup path longer than its bound";
    if (!isPrintableUtf8(c->path)) return "cgroup path not printable";
    if (const char* e = checkUnit(c->unit)) return e;
    if (const char* e = checkContainer(c->container)) return e;
  }
  // The path alone, as the resolver also uses it.
  if (const char* e = checkUnit(unitFromCgroupPath(text))) return e;
  return checkContainer(containerFromCgroupPath(text));
}

const char* socketLink(std::string_view text) {
  const auto inode = parseSocketLink(text);
  if (!inode) return nullptr;
  if (*inode == 0) return "socket link inode 0";
  if (text != "socket:[" + std::to_string(*inode) + "]") {
    return "socket link parsed from something else than socket:[N]";
  }
  return nullptr;
}

}  // namespace

const char* procTexts(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const char* e = stat(text)) return e;
  if (const char* e = status(text)) return e;
  if (const char* e = limits(text)) return e;
  if (const char* e = cmdline(text)) return e;
  if (const char* e = cgroup(text)) return e;
  if (const char* e = socketLink(text)) return e;
  for (std::size_t max : {std::size_t{0}, std::size_t{2}, std::size_t{64}}) {
    std::string out = "x";
    const bool complete = appendPrintable(out, text, max + 1);
    if (out.size() > max + 1) return "appendPrintable past its bound";
    if (!isPrintableUtf8(out)) return "appendPrintable output not printable";
    if (complete && out.size() - 1 > text.size() * 1) return "appendPrintable grew the text";
  }
  return nullptr;
}

const char* coreText(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto d = parseDuration(text)) {
    if (d->count() < 0) return "negative duration";
    const std::string canonical = formatDuration(*d);
    const auto again = parseDuration(canonical);
    if (!again || *again != *d) return "formatDuration does not read back";
    if (!isPrintableUtf8(humanDuration(*d))) return "humanDuration not printable";
  }
  // Durations as the engine prints them, for any value (including negative ones).
  if (size >= 8) {
    std::int64_t ms = 0;
    for (std::size_t i = 0; i < 8; ++i)
      ms = static_cast<std::int64_t>(static_cast<std::uint64_t>(ms) << 8 | data[i]);
    if (ms != INT64_MIN) {
      const Duration d(ms);
      const std::string canonical = formatDuration(d);
      if (ms >= 0) {
        const auto again = parseDuration(canonical);
        if (!again || *again != d) return "formatDuration of a raw value does not read back";
      }
      const std::string human = humanDuration(d);
      if (human.empty() || !isPrintableUtf8(human)) return "humanDuration empty or not printable";
    }
  }

  const bool hasNul = text.find('\0') != std::string_view::npos;
  if (auto a = IpAddress::parse(text)) {
    if (hasNul) return "an address with a NUL inside parsed (the text after it was ignored)";
    if (a->family != AddressFamily::V4 && a->family != AddressFamily::V6) return "address family";
    const std::string s = a->toString();
    const auto again = IpAddress::parse(s);
    if (!again || *again != *a) return "IpAddress::toString does not read back";
    if (a->family == AddressFamily::V4) {
      for (std::size_t i = 4; i < 16; ++i)
        if (a->bytes[i] != 0) return "IPv4 address with bytes past the fourth";
    }
    const IpAddress u = a->unmapped();
    if (u.family == AddressFamily::Unspec) return "unmapped address lost its family";
  }

  if (auto c = Cidr::parse(text)) {
    if (hasNul) return "a CIDR with a NUL inside parsed (the text after it was ignored)";
    const unsigned bits = c->network.family == AddressFamily::V4 ? 32 : 128;
    if (c->prefixLength > bits) return "CIDR prefix longer than the address";
    if (!c->contains(c->network)) return "CIDR does not contain its own network address";
    const auto again = Cidr::parse(c->toString());
    if (!again || *again != *c) return "Cidr::toString does not read back";
    // Every address in the prefix matches it; flipping a bit past the prefix keeps it inside.
    if (c->prefixLength < bits) {
      IpAddress inside = c->network;
      const unsigned bit = bits - 1;
      inside.bytes[bit / 8] =
          static_cast<std::uint8_t>(inside.bytes[bit / 8] ^ (1u << (7 - bit % 8)));
      if (!c->contains(inside)) return "CIDR does not contain an address inside its prefix";
    }
    if (c->prefixLength > 0) {
      IpAddress outside = c->network;
      const unsigned bit = c->prefixLength - 1;
      outside.bytes[bit / 8] =
          static_cast<std::uint8_t>(outside.bytes[bit / 8] ^ (1u << (7 - bit % 8)));
      if (c->contains(outside)) return "CIDR contains an address outside its prefix";
    }
  }
  return nullptr;
}

}  // namespace waitwatch::fuzz
