// SPDX-License-Identifier: Apache-2.0
#include "core/snapshot.hpp"

#include <algorithm>

#include "core/enum_names.hpp"

namespace waitwatch {

std::string NetnsRef::label() const {
  if (!name.empty()) return name;
  if (!alias.empty()) return alias;
  return "net:[" + std::to_string(inode) + "]";
}

const IpAddress& Snapshot::address(std::uint32_t index) const {
  static const IpAddress unspecified;
  return index < addresses.size() ? addresses[index] : unspecified;
}

std::uint32_t AddressInterner::intern(const IpAddress& a, std::vector<IpAddress>& table) {
  table_.policy().table = &table;
  return *table_.findOrInsert(a).first - 1;
}

void AddressInterner::clear() {
  // A table 16 times larger than its last use (a past burst of peers) is given back.
  if (table_.capacity() > kMinCapacity && table_.size() * 16 < table_.capacity()) {
    table_.release();
  } else {
    table_.clear();
  }
}

namespace {
constexpr EnumNames<CloserSource, 3> kCloserSources({{CloserSource::None, "none"},
                                                     {CloserSource::Ownership, "ownership"},
                                                     {CloserSource::KernelProbe, "bpf"}});
constexpr EnumNames<SocketSource, 3> kSocketSources({{SocketSource::Netlink, "netlink"},
                                                     {SocketSource::BpfIterator, "bpf_iter"},
                                                     {SocketSource::Mixed, "mixed"}});
}  // namespace

std::string_view socketSourceName(SocketSource source) {
  return kSocketSources.name(source);
}

std::string_view closerSourceName(CloserSource source) {
  return kCloserSources.name(source);
}

std::optional<CloserSource> parseCloserSource(std::string_view name) {
  return kCloserSources.parse(name);
}

}  // namespace waitwatch
