// SPDX-License-Identifier: Apache-2.0
#pragma once
// The names of an enum's values, in one table per enum: what is written (JSON, metrics labels,
// the journal) and what is read back (configuration, documents) come from the same entries.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace waitwatch {

template <typename E, std::size_t N>
class EnumNames {
 public:
  using Entry = std::pair<E, std::string_view>;

  // NOLINTNEXTLINE(google-explicit-constructor): tables are written as braced lists
  constexpr EnumNames(const Entry (&entries)[N]) {
    for (std::size_t i = 0; i < N; ++i)
      entries_[i] = entries[i];
  }

  [[nodiscard]] constexpr std::string_view name(E value, std::string_view unknown = "?") const {
    for (const Entry& e : entries_) {
      if (e.first == value) return e.second;
    }
    return unknown;
  }

  [[nodiscard]] constexpr std::optional<E> parse(std::string_view text) const {
    for (const Entry& e : entries_) {
      if (e.second == text) return e.first;
    }
    return std::nullopt;
  }

  // "\"a\", \"b\" or \"c\"": the names as an error message lists what it expected.
  [[nodiscard]] std::string quotedList() const {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
      if (i > 0) out += i + 1 == N ? " or " : ", ";
      out.append("\"").append(entries_[i].second).append("\"");
    }
    return out;
  }

  [[nodiscard]] constexpr const std::array<Entry, N>& entries() const { return entries_; }

 private:
  std::array<Entry, N> entries_{};
};

}  // namespace waitwatch
