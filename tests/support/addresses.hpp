// SPDX-License-Identifier: Apache-2.0
#pragma once
// Addresses as tests write them: "10.0.0.7", "10.0.0.7:51000", "[fd00::1]:443". A typo throws,
// so a test fails on its own fixture rather than testing the zero address.
#include <stdexcept>
#include <string>

#include "core/address.hpp"

namespace waitwatch::testing {

inline IpAddress ip(const std::string& text) {
  auto a = IpAddress::parse(text);
  if (!a) throw std::invalid_argument("bad address " + text);
  return *a;
}

inline Endpoint endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("no port in " + text);
  std::string host = text.substr(0, colon);
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  return Endpoint{ip(host), static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1)))};
}

}  // namespace waitwatch::testing
