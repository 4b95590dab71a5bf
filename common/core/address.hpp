// SPDX-License-Identifier: Apache-2.0
#pragma once
// IP addresses and endpoints as plain values, comparable and hashable, for both families.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace waitwatch {

enum class AddressFamily : std::uint8_t { Unspec = 0, V4 = 4, V6 = 6 };

struct IpAddress {
  AddressFamily family = AddressFamily::Unspec;
  std::array<std::uint8_t, 16> bytes{};  // network order; V4 uses the first 4 bytes

  static IpAddress v4(std::array<std::uint8_t, 4> b);
  static IpAddress v6(const std::array<std::uint8_t, 16>& b);
  // Parses dotted-quad or RFC 4291 text (no brackets, no zone).
  static std::optional<IpAddress> parse(std::string_view text);

  [[nodiscard]] std::string toString() const;
  // ::ffff:a.b.c.d maps to a.b.c.d so that dual-stack sockets group with their IPv4 peers.
  [[nodiscard]] IpAddress unmapped() const;
  [[nodiscard]] bool isUnspecified() const;
  // 127.0.0.0/8, ::1, or ::ffff:127.x.y.z: a peer in the same namespace.
  [[nodiscard]] bool isLoopback() const;

  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
};

struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;

  // "10.0.0.1:80" or "[::1]:80".
  [[nodiscard]] std::string toString() const;
  bool operator==(const Endpoint&) const = default;
  auto operator<=>(const Endpoint&) const = default;
};

// A network prefix such as 10.0.0.0/8 or fd00::/8, for matching destinations.
struct Cidr {
  IpAddress network;
  unsigned prefixLength = 0;

  // "10.0.0.0/8", "::1/128", or a bare address (a host prefix).
  static std::optional<Cidr> parse(std::string_view text);
  [[nodiscard]] bool contains(const IpAddress& a) const;
  [[nodiscard]] std::string toString() const;
  bool operator==(const Cidr&) const = default;
};

inline std::size_t hashCombine(std::size_t seed, std::size_t v) {
  return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

struct IpAddressHash {
  std::size_t operator()(const IpAddress& a) const noexcept;
};
struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return hashCombine(IpAddressHash{}(e.address), e.port);
  }
};

}  // namespace waitwatch
