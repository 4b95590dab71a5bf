// SPDX-License-Identifier: Apache-2.0
#pragma once
// Port classes and the usable ephemeral port range.
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace waitwatch {

enum class PortClass : std::uint8_t {
  WellKnown,   // 0-1023: privileged service ports
  Registered,  // 1024-49151: server ports
  Ephemeral,   // 49152-65535 (IANA dynamic range)
};

// The IANA class alone: 0-1023 well-known, 1024-49151 registered, 49152-65535 ephemeral.
PortClass classifyPort(std::uint16_t port);
std::string_view portClassName(PortClass c);  // "well-known", "registered", "ephemeral"
std::optional<PortClass> parsePortClass(std::string_view text);

// net.ipv4.ip_local_port_range minus net.ipv4.ip_local_reserved_ports: the source ports the
// kernel may pick for connect(). Its size is what one (source, destination) pair can exhaust.
class EphemeralRange {
 public:
  EphemeralRange() : EphemeralRange(32768, 60999) {}  // Linux default
  EphemeralRange(std::uint16_t low, std::uint16_t high);

  // Parses the two sysctl texts ("32768\t60999\n", "8080,9000-9010\n"); nullopt on malformed
  // input. Note: the kernel's default range is [low, high] inclusive.
  static std::optional<EphemeralRange> fromSysctl(std::string_view portRange,
                                                  std::string_view reservedPorts);

  void reserve(std::uint16_t port);
  [[nodiscard]] bool contains(std::uint16_t port) const;  // in range and not reserved
  [[nodiscard]] std::uint32_t usableCount() const { return usable_; }
  [[nodiscard]] std::uint16_t low() const { return low_; }
  [[nodiscard]] std::uint16_t high() const { return high_; }

 private:
  std::uint16_t low_;
  std::uint16_t high_;
  std::uint32_t usable_;
  std::bitset<65536> reserved_;
};

// The class as the operator reads it on this host: a port the kernel may pick for connect()
// in this namespace (inside ip_local_port_range, not reserved) is ephemeral, whatever its IANA
// class; any other port has its IANA class.
PortClass classifyPort(std::uint16_t port, const EphemeralRange& range);

}  // namespace waitwatch
