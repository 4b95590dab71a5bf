// SPDX-License-Identifier: Apache-2.0
#include "core/ports.hpp"

#include <charconv>

#include "core/enum_names.hpp"

namespace waitwatch {
namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<std::uint16_t> parsePort(std::string_view s) {
  s = trim(s);
  unsigned v = 0;
  const auto* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || ptr != end || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}
}  // namespace

PortClass classifyPort(std::uint16_t port) {
  if (port <= 1023) return PortClass::WellKnown;
  if (port <= 49151) return PortClass::Registered;
  return PortClass::Ephemeral;
}

PortClass classifyPort(std::uint16_t port, const EphemeralRange& range) {
  return range.contains(port) ? PortClass::Ephemeral : classifyPort(port);
}

namespace {
constexpr EnumNames<PortClass, 3> kPortClasses({{PortClass::WellKnown, "well-known"},
                                                {PortClass::Registered, "registered"},
                                                {PortClass::Ephemeral, "ephemeral"}});
}  // namespace

std::string_view portClassName(PortClass c) {
  return kPortClasses.name(c);
}

std::optional<PortClass> parsePortClass(std::string_view text) {
  return kPortClasses.parse(text);
}

EphemeralRange::EphemeralRange(std::uint16_t low, std::uint16_t high)
    : low_(low), high_(high), usable_(high >= low ? high - low + 1u : 0u) {}

std::optional<EphemeralRange> EphemeralRange::fromSysctl(std::string_view portRange,
                                                         std::string_view reservedPorts) {
  portRange = trim(portRange);
  const auto sep = portRange.find_first_of(" \t");
  if (sep == std::string_view::npos) return std::nullopt;
  auto low = parsePort(portRange.substr(0, sep));
  auto high = parsePort(portRange.substr(sep + 1));
  if (!low || !high || *low > *high) return std::nullopt;
  EphemeralRange r(*low, *high);
  std::string_view rest = trim(reservedPorts);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto dash = item.find('-');
    auto first = parsePort(item.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : parsePort(item.substr(dash + 1));
    if (!first || !last || *first > *last) return std::nullopt;
    for (std::uint32_t p = *first; p <= *last; ++p)
      r.reserve(static_cast<std::uint16_t>(p));
  }
  return r;
}

void EphemeralRange::reserve(std::uint16_t port) {
  if (port < low_ || port > high_ || reserved_.test(port)) return;
  reserved_.set(port);
  --usable_;
}

bool EphemeralRange::contains(std::uint16_t port) const {
  return port >= low_ && port <= high_ && !reserved_.test(port);
}

}  // namespace waitwatch
