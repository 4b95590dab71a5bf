// SPDX-License-Identifier: Apache-2.0
#include "core/snapshot.hpp"

#include <algorithm>
#include <bit>

#include "core/enum_names.hpp"

namespace waitwatch {
namespace {
constexpr std::size_t kMinInternCapacity = 64;
}

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
  if ((size_ + 1) * 2 > slots_.size()) {
    rehash(std::max(kMinInternCapacity, slots_.size() * 2), table);
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(a);; i = (i + 1) & mask) {
    const std::uint32_t at = slots_[i];
    if (at == kNoIndex) {
      const auto index = static_cast<std::uint32_t>(table.size());
      table.push_back(a);
      slots_[i] = index;
      ++size_;
      return index;
    }
    if (table[at] == a) return at;
  }
}

std::size_t AddressInterner::home(const IpAddress& a) const {
  // Fibonacci hashing: the top bits of the product pick the slot.
  return static_cast<std::size_t>((IpAddressHash{}(a)*0x9e3779b97f4a7c15ULL) >> shift_);
}

void AddressInterner::clear() {
  // A table 16 times larger than its last use (a past burst of peers) is given back.
  if (slots_.size() > kMinInternCapacity && size_ * 16 < slots_.size()) {
    std::vector<std::uint32_t>().swap(slots_);
  } else {
    std::fill(slots_.begin(), slots_.end(), kNoIndex);
  }
  size_ = 0;
}

void AddressInterner::rehash(std::size_t capacity, const std::vector<IpAddress>& table) {
  slots_.assign(capacity, kNoIndex);
  shift_ = 64u - static_cast<unsigned>(std::countr_zero(capacity));
  const std::size_t mask = capacity - 1;
  for (std::size_t index = 0; index < table.size(); ++index) {
    std::size_t i = home(table[index]);
    while (slots_[i] != kNoIndex)
      i = (i + 1) & mask;
    slots_[i] = static_cast<std::uint32_t>(index);
  }
  size_ = table.size();
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
