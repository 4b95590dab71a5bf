// SPDX-License-Identifier: Apache-2.0
#include "core/address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace waitwatch {

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> b) {
  IpAddress a;
  a.family = AddressFamily::V4;
  std::memcpy(a.bytes.data(), b.data(), 4);
  return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) {
  IpAddress a;
  a.family = AddressFamily::V6;
  a.bytes = b;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton reads a C string: a NUL inside would hide whatever follows it.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = AddressFamily::V4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = AddressFamily::V6;
    return a;
  }
  return std::nullopt;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case AddressFamily::V4:
      inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
      return buf;
    case AddressFamily::V6:
      inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
      return buf;
    case AddressFamily::Unspec:
      break;
  }
  return "?";
}

IpAddress IpAddress::unmapped() const {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == AddressFamily::V6 && std::memcmp(bytes.data(), kMappedPrefix, 12) == 0) {
    return v4({bytes[12], bytes[13], bytes[14], bytes[15]});
  }
  return *this;
}

bool IpAddress::isLoopback() const {
  const IpAddress a = unmapped();
  if (a.family == AddressFamily::V4) return a.bytes[0] == 127;
  if (a.family != AddressFamily::V6) return false;
  for (std::size_t i = 0; i < 15; ++i) {
    if (a.bytes[i] != 0) return false;
  }
  return a.bytes[15] == 1;
}

bool IpAddress::isUnspecified() const {
  if (family == AddressFamily::Unspec) return true;
  const std::size_t n = family == AddressFamily::V4 ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

std::string Endpoint::toString() const {
  std::string out =
      address.family == AddressFamily::V6 ? "[" + address.toString() + "]" : address.toString();
  out += ':';
  out += std::to_string(port);
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned maxLen = addr->family == AddressFamily::V4 ? 32 : 128;
  unsigned len = maxLen;
  if (slash != std::string_view::npos) {
    const std::string_view lenText = text.substr(slash + 1);
    const auto* end = lenText.data() + lenText.size();
    auto [ptr, ec] = std::from_chars(lenText.data(), end, len);
    if (lenText.empty() || ec != std::errc() || ptr != end || len > maxLen) return std::nullopt;
  }
  // An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) means the IPv4 one: contains() compares
  // unmapped addresses, so it would otherwise match nothing.
  const IpAddress unmapped = addr->unmapped();
  if (unmapped.family == AddressFamily::V4 && addr->family == AddressFamily::V6 && len >= 96) {
    addr = unmapped;
    len -= 96;
    maxLen = 32;
  }
  Cidr c{*addr, len};
  // Normalise: clear host bits so that equality and printing are canonical.
  for (unsigned bit = len; bit < maxLen; ++bit) {
    c.network.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  return c;
}

bool Cidr::contains(const IpAddress& raw) const {
  const IpAddress a = raw.unmapped();
  if (a.family != network.family) return false;
  const unsigned full = prefixLength / 8;
  if (std::memcmp(a.bytes.data(), network.bytes.data(), full) != 0) return false;
  const unsigned rest = prefixLength % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (a.bytes[full] & mask) == (network.bytes[full] & mask);
}

std::string Cidr::toString() const {
  return network.toString() + "/" + std::to_string(prefixLength);
}

std::size_t IpAddressHash::operator()(const IpAddress& a) const noexcept {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  std::size_t h = std::hash<std::uint64_t>{}(lo);
  h = hashCombine(h, std::hash<std::uint64_t>{}(hi));
  return hashCombine(h, static_cast<std::size_t>(a.family));
}

}  // namespace waitwatch
