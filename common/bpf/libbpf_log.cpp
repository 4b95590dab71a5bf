// SPDX-License-Identifier: Apache-2.0
#include "libbpf_log.hpp"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "sys/file.hpp"

namespace waitwatch::bpf::detail {
namespace {

constexpr const char* kBtfPath = "/sys/kernel/btf/vmlinux";

thread_local std::string lastLibbpfMessage;

int keepLibbpfMessage(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  const int n = std::vsnprintf(line, sizeof(line), format, args);
  if (n <= 0) return 0;
  std::string_view text(line, std::min(static_cast<std::size_t>(n), sizeof(line) - 1));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  if (!text.empty()) lastLibbpfMessage.assign(text);
  return 0;
}

// The boot-time offset of the caller's time namespace: /proc/<pid>/stat adds it to start times.
std::int64_t boottimeOffsetNs() {
  std::string text;
  if (!readFileAt(AT_FDCWD, "/proc/self/timens_offsets", text, 4096)) return 0;
  const auto at = text.find("boottime");
  if (at == std::string::npos) return 0;
  long long sec = 0;
  long long nsec = 0;
  if (std::sscanf(text.c_str() + at, "boottime %lld %lld", &sec, &nsec) != 2) return 0;
  return static_cast<std::int64_t>(sec) * 1'000'000'000 + nsec;
}

}  // namespace

void silenceLibbpf() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(keepLibbpfMessage); });
  lastLibbpfMessage.clear();
}

void clearLibbpfMessage() {
  lastLibbpfMessage.clear();
}

std::string withLibbpfDetail(std::string message) {
  if (!lastLibbpfMessage.empty()) message += " (libbpf: " + lastLibbpfMessage + ")";
  lastLibbpfMessage.clear();
  return message;
}

Error loadError(int err, std::string_view what, std::string_view requirement) {
  std::string message = std::string(what) + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES) {
    lastLibbpfMessage.clear();
    return Error{err, message + " (needs CAP_BPF and CAP_PERFMON, or root)"};
  }
  return Error{err, withLibbpfDetail(message + " (" + std::string(requirement) + ")")};
}

Result<void> requireKernelBtf() {
  if (::access(kBtfPath, R_OK) == 0) return {};
  const int err = errno;
  return Error{err, std::string("the kernel has no BTF (") + kBtfPath + ": " + std::strerror(err) +
                        "; needs CONFIG_DEBUG_INFO_BTF)"};
}

StartTicks::StartTicks() : offsetNs_(boottimeOffsetNs()) {
  if (const long hz = ::sysconf(_SC_CLK_TCK); hz > 0 && 1'000'000'000 % hz == 0) {
    nsPerTick_ = 1'000'000'000 / static_cast<std::uint64_t>(hz);
  }
}

std::uint64_t StartTicks::operator()(std::uint64_t startBoottimeNs) const {
  const auto ns = static_cast<std::int64_t>(startBoottimeNs) + offsetNs_;
  return ns > 0 ? static_cast<std::uint64_t>(ns) / nsPerTick_ : 0;
}

}  // namespace waitwatch::bpf::detail
