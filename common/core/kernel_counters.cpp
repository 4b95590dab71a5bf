// SPDX-License-Identifier: Apache-2.0
#include "core/kernel_counters.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace waitwatch {
namespace {

bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// Splits on blanks, skipping runs of them; no allocation.
class Fields {
 public:
  explicit Fields(std::string_view line) : rest_(line) {}
  bool next(std::string_view& out) {
    std::size_t i = 0;
    while (i < rest_.size() && isBlank(rest_[i]))
      ++i;
    if (i == rest_.size()) return false;
    std::size_t j = i;
    while (j < rest_.size() && !isBlank(rest_[j]))
      ++j;
    out = rest_.substr(i, j - i);
    rest_ = rest_.substr(j);
    return true;
  }

 private:
  std::string_view rest_;
};

std::size_t countFields(std::string_view line) {
  Fields f(line);
  std::string_view tok;
  std::size_t n = 0;
  while (f.next(tok))
    ++n;
  return n;
}

bool parseValue(std::string_view tok, KernelCounterValue& out) {
  out = {};
  if (!tok.empty() && tok.front() == '-') {
    out.negative = true;
    tok.remove_prefix(1);
  }
  if (tok.empty()) return false;
  std::uint64_t v = 0;
  for (char c : tok) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  out.magnitude = v;
  return true;
}

bool isName(std::string_view tok) {
  const char c = tok.front();
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 40;  // keep error lines readable for garbage input
  std::string out = "'";
  for (char c : s.substr(0, kMax)) {
    out +=
        (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) ? '?' : c;
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

Error lineError(std::size_t lineNo, const std::string& what) {
  return Error{EBADMSG, "line " + std::to_string(lineNo) + ": " + what};
}

struct Wanted {
  std::string_view section;
  std::string_view name;
  std::uint64_t KernelTcpCounters::*field;
};

constexpr std::array<Wanted, 6> kNetstatFields = {{
    {"TcpExt", "TCPTimeWaitOverflow", &KernelTcpCounters::timeWaitOverflow},
    {"TcpExt", "TW", &KernelTcpCounters::timeWaitEntered},
    {"TcpExt", "TCPAbortOnClose", &KernelTcpCounters::abortOnClose},
    {"TcpExt", "TCPAbortOnTimeout", &KernelTcpCounters::abortOnTimeout},
    {"TcpExt", "ListenOverflows", &KernelTcpCounters::listenOverflows},
    {"TcpExt", "ListenDrops", &KernelTcpCounters::listenDrops},
}};
constexpr std::array<Wanted, 2> kSnmpFields = {{
    {"Tcp", "ActiveOpens", &KernelTcpCounters::activeOpens},
    {"Tcp", "PassiveOpens", &KernelTcpCounters::passiveOpens},
}};

template <std::size_t N>
Result<void> fill(std::string_view text, std::string_view file, std::string_view section,
                  const std::array<Wanted, N>& wanted, KernelTcpCounters& out) {
  bool sawSection = false;
  std::string badField;
  auto r = forEachKernelCounter(
      text, [&](std::string_view sec, std::string_view name, KernelCounterValue value) {
        if (sec != section) return;
        sawSection = true;
        for (const auto& w : wanted) {
          if (w.name != name) continue;
          if (value.negative && value.magnitude != 0 && badField.empty())
            badField = std::string(name);
          out.*(w.field) = value.negative ? 0 : value.magnitude;
        }
      });
  if (!r) return r.error().wrap(file);
  if (!sawSection) {
    return Error{EBADMSG, std::string(file) + ": no " + std::string(section) + " section"};
  }
  if (!badField.empty()) {
    return Error{EBADMSG, std::string(file) + ": " + std::string(section) + " " + badField +
                              " is negative, expected a counter"};
  }
  return {};
}

}  // namespace

Result<void> forEachKernelCounter(
    std::string_view text,
    FunctionRef<void(std::string_view section, std::string_view name, KernelCounterValue value)>
        visit) {
  std::size_t lineNo = 0;
  std::size_t pos = 0;
  auto nextLine = [&](std::string_view& line) {
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      line = text.substr(pos, end - pos);
      pos = end + 1;
      ++lineNo;
      if (countFields(line) != 0) return true;  // blank lines carry nothing
    }
    return false;
  };

  std::string_view header;
  while (nextLine(header)) {
    const std::size_t headerNo = lineNo;
    Fields names(header);
    std::string_view prefix;
    names.next(prefix);
    if (prefix.size() < 2 || prefix.back() != ':' || !isName(prefix)) {
      return lineError(headerNo,
                       "expected a header such as 'TcpExt: Name ...', got " + quoted(prefix));
    }
    const std::string_view section = prefix.substr(0, prefix.size() - 1);

    std::string_view values;
    if (!nextLine(values)) {
      return lineError(headerNo, "the " + std::string(section) + " header has no values line");
    }
    Fields vals(values);
    std::string_view valuePrefix;
    vals.next(valuePrefix);
    if (valuePrefix != prefix) {
      return lineError(lineNo, "expected the values line of " + std::string(section) + ", got " +
                                   quoted(valuePrefix));
    }
    const std::size_t nameCount = countFields(header) - 1;
    const std::size_t valueCount = countFields(values) - 1;
    if (nameCount != valueCount) {
      return lineError(lineNo, std::string(section) + " values line has " +
                                   std::to_string(valueCount) + " fields, its header (line " +
                                   std::to_string(headerNo) + ") has " + std::to_string(nameCount));
    }
    std::string_view name;
    std::string_view valueText;
    while (names.next(name) && vals.next(valueText)) {
      if (!isName(name)) {
        return lineError(headerNo, std::string(section) + " header field " + quoted(name) +
                                       " is not a counter name");
      }
      KernelCounterValue value;
      if (!parseValue(valueText, value)) {
        return lineError(lineNo, std::string(section) + " " + std::string(name) + " value " +
                                     quoted(valueText) + " is not an integer");
      }
      visit(section, name, value);
    }
  }
  return {};
}

Result<void> parseNetstatCounters(std::string_view netstatText, KernelTcpCounters& out) {
  return fill(netstatText, "netstat", "TcpExt", kNetstatFields, out);
}

Result<void> parseSnmpCounters(std::string_view snmpText, KernelTcpCounters& out) {
  return fill(snmpText, "snmp", "Tcp", kSnmpFields, out);
}

Result<KernelTcpCounters> parseKernelTcpCounters(std::string_view netstatText,
                                                 std::string_view snmpText) {
  KernelTcpCounters c;
  if (auto r = parseNetstatCounters(netstatText, c); !r) return r.error();
  if (auto r = parseSnmpCounters(snmpText, c); !r) return r.error();
  c.valid = true;
  return c;
}

namespace {

// Digits only, at most 19 of them (no overflow); nullopt otherwise.
std::optional<std::uint64_t> pageCount(std::string_view t) {
  if (t.empty() || t.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::string_view nextField(std::string_view& rest) {
  const auto start = rest.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const auto end = rest.find_first_of(" \t");
  const std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return field;
}

}  // namespace

Result<std::uint64_t> parseSockstatTcpPages(std::string_view text) {
  std::size_t lineNo = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++lineNo;
    if (!line.starts_with("TCP:")) continue;
    line.remove_prefix(4);
    // "inuse N orphan N tw N alloc N mem N": name, value pairs.
    for (;;) {
      const std::string_view name = nextField(line);
      if (name.empty()) break;
      const std::string_view value = nextField(line);
      if (name != "mem") continue;
      if (const auto v = pageCount(value)) return *v;
      return Error{EBADMSG, "line " + std::to_string(lineNo) + ": TCP mem is not a page count"};
    }
    return Error{EBADMSG, "line " + std::to_string(lineNo) + ": the TCP line has no mem"};
  }
  return Error{EBADMSG, "no TCP line"};
}

Result<std::array<std::uint64_t, 3>> parseTcpMem(std::string_view text) {
  std::array<std::uint64_t, 3> out{};
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  for (std::uint64_t& v : out) {
    const auto n = pageCount(nextField(text));
    if (!n) return Error{EBADMSG, "expected three page counts"};
    v = *n;
  }
  if (!nextField(text).empty()) return Error{EBADMSG, "expected three page counts"};
  return out;
}

Result<std::int64_t> parseTcpHashEntries(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // The kernel prints an int: anything wider, or no bucket at all, is not its output.
  if (ec != std::errc{} || end != text.data() + text.size() || v == 0 ||
      v > std::numeric_limits<std::int32_t>::max() ||
      v < -std::int64_t{std::numeric_limits<std::int32_t>::max()}) {
    return Error{EBADMSG, "expected a non-zero bucket count"};
  }
  return v;
}

TcpHashTable tcpHashTable(std::int64_t ehashEntries) {
  const std::int64_t n = ehashEntries < 0 ? -ehashEntries : ehashEntries;
  return TcpHashTable{static_cast<std::uint32_t>(
                          std::min<std::int64_t>(n, std::numeric_limits<std::uint32_t>::max())),
                      ehashEntries < 0};
}

}  // namespace waitwatch
