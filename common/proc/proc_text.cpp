// SPDX-License-Identifier: Apache-2.0
#include "proc/proc_text.hpp"

#include <charconv>
#include <limits>

#include "core/utf8.hpp"

namespace waitwatch {
namespace {

template <typename T>
std::optional<T> parseNumber(std::string_view s) {
  T v{};
  if (s.empty() || s.size() > 20) return std::nullopt;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

// Splits off the next space-separated token (stat uses single spaces and ends with a newline;
// be lenient with runs).
std::string_view nextToken(std::string_view& rest) {
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n'))
    rest.remove_prefix(1);
  const auto end = rest.find_first_of(" \n");
  std::string_view token = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  return token;
}

Error statError(std::string_view what, std::string_view value) {
  return Error{0, "stat: " + std::string(what) + ": '" + printable(value, 32) + "'"};
}

}  // namespace

bool appendPrintable(std::string& out, std::string_view text, std::size_t maxBytes) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 1;
    bool valid = true;
    if (c >= 0x80) {
      const std::string_view rest = text.substr(i);
      len = utf8SequenceLength(rest);
      if (len == 0 || isC1Control(rest)) {
        len = 1;
        valid = false;
      }
    } else if (c < 0x20 || c == 0x7F) {
      valid = false;
    }
    const std::size_t outLen = valid ? len : 1;
    if (out.size() + outLen > maxBytes) return false;
    if (valid) {
      out.append(text.substr(i, len));
    } else {
      out.push_back('?');
    }
    i += len;
  }
  return true;
}

std::string printable(std::string_view text, std::size_t maxBytes) {
  std::string out;
  appendPrintable(out, text, maxBytes);
  return out;
}

Result<ProcStat> parseProcStat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return Error{0, "stat: no '(comm)' field"};
  }
  ProcStat st;
  std::string_view pidText = text.substr(0, open);
  while (!pidText.empty() && pidText.back() == ' ')
    pidText.remove_suffix(1);
  auto pid = parseNumber<std::int32_t>(pidText);
  if (!pid || *pid <= 0) return statError("field 1 (pid) is not a positive number", pidText);
  st.pid = *pid;
  appendPrintable(st.comm, text.substr(open + 1, close - open - 1), kMaxCommBytes);

  std::string_view rest = text.substr(close + 1);
  // Fields 3.. follow the comm; field N is token N-3.
  constexpr int kStartTimeField = 22;
  for (int field = 3; field <= kStartTimeField; ++field) {
    const std::string_view token = nextToken(rest);
    if (token.empty()) {
      return Error{0, "stat: truncated after field " + std::to_string(field - 1) +
                          " (field 22, starttime, is needed)"};
    }
    if (field == 3) {
      const bool letter = token.size() == 1 && ((token[0] >= 'A' && token[0] <= 'Z') ||
                                                (token[0] >= 'a' && token[0] <= 'z'));
      if (!letter) return statError("field 3 (state) is not one letter", token);
      st.state = token[0];
    } else if (field == 4) {
      auto ppid = parseNumber<std::int32_t>(token);
      if (!ppid || *ppid < 0) return statError("field 4 (ppid) is not a number", token);
      st.ppid = *ppid;
    } else if (field == kStartTimeField) {
      auto start = parseNumber<std::uint64_t>(token);
      if (!start) return statError("field 22 (starttime) is not a number", token);
      st.startTime = *start;
    }
  }
  return st;
}

Result<ProcStatus> parseProcStatus(std::string_view text) {
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.substr(0, 4) != "Uid:") continue;
    line.remove_prefix(4);
    std::uint32_t ids[4] = {};
    for (int i = 0; i < 4; ++i) {
      while (!line.empty() && (line.front() == '\t' || line.front() == ' '))
        line.remove_prefix(1);
      const auto end = line.find_first_of("\t ");
      const std::string_view token = line.substr(0, end);
      line = end == std::string_view::npos ? std::string_view{} : line.substr(end);
      auto v = parseNumber<std::uint32_t>(token);
      if (!v) {
        return Error{0, "status: Uid line: value " + std::to_string(i + 1) + " is not a uid: '" +
                            printable(token, 32) + "'"};
      }
      ids[i] = *v;
    }
    return ProcStatus{ids[0], ids[1], ids[2], ids[3]};
  }
  return Error{0, "status: no Uid line"};
}

Result<std::optional<std::uint64_t>> parseMaxOpenFiles(std::string_view text) {
  // fs/proc/base.c, proc_pid_limits(): a line per limit, "%-25s %-20lu " (or "unlimited") for
  // the name and the soft limit, then the hard limit and the unit.
  constexpr std::string_view kName = "Max open files";
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.substr(0, kName.size()) != kName) continue;
    line.remove_prefix(kName.size());
    if (line.empty() || line.front() != ' ') continue;  // another name that starts the same
    while (!line.empty() && line.front() == ' ')
      line.remove_prefix(1);
    const std::string_view token = line.substr(0, line.find(' '));
    if (token == "unlimited") return std::optional<std::uint64_t>{};
    auto v = parseNumber<std::uint64_t>(token);
    if (!v) {
      return Error{0, "limits: \"Max open files\": the soft limit is not a number: '" +
                          printable(token, 32) + "'"};
    }
    return std::optional<std::uint64_t>{*v};
  }
  return Error{0, "limits: no \"Max open files\" line"};
}

std::string formatCmdline(std::string_view raw, std::size_t maxBytes) {
  while (!raw.empty() && raw.back() == '\0')
    raw.remove_suffix(1);
  auto build = [&](std::size_t limit, std::string& out) {
    std::string_view rest = raw;
    bool first = true;
    while (true) {
      const auto nul = rest.find('\0');
      if (!first) {
        if (out.size() + 1 > limit) return false;
        out.push_back(' ');
      }
      first = false;
      if (!appendPrintable(out, rest.substr(0, nul), limit)) return false;
      if (nul == std::string_view::npos) return true;
      rest.remove_prefix(nul + 1);
    }
  };
  std::string out;
  out.reserve(std::min(raw.size(), maxBytes));
  if (build(maxBytes, out)) return out;
  constexpr std::string_view kEllipsis = "...";
  out.clear();
  if (maxBytes < 2 * kEllipsis.size()) {
    build(maxBytes, out);
    return out;
  }
  build(maxBytes - kEllipsis.size(), out);
  out.append(kEllipsis);
  return out;
}

std::optional<std::uint32_t> parseSocketLink(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (target.size() <= kPrefix.size() + 1 || target.substr(0, kPrefix.size()) != kPrefix ||
      target.back() != ']') {
    return std::nullopt;
  }
  const std::string_view digits = target.substr(kPrefix.size(), target.size() - kPrefix.size() - 1);
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;  // not the kernel's form
  auto v = parseNumber<std::uint64_t>(digits);
  if (!v || *v == 0 || *v > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

}  // namespace waitwatch
