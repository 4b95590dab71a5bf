// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the loaders of waitwatch::bpf share: libbpf kept quiet with its last message kept for our
// errors, load errors that name the cause, and start times as /proc numbers them. Internal.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace waitwatch::bpf::detail {

// libbpf prints its diagnostics to stderr by default, which would change the output of every
// run where BPF cannot load: keep its last line instead (call before using libbpf).
void silenceLibbpf();
void clearLibbpfMessage();
// `message` and libbpf's last line, if any.
std::string withLibbpfDetail(std::string message);
// "loading X: Operation not permitted (needs CAP_BPF and CAP_PERFMON, or root)", or with
// libbpf's detail and `requirement` ("needs Linux >= 5.8 with BTF and ...").
Error loadError(int err, std::string_view what, std::string_view requirement);
// ENOENT with what is missing when the kernel has no BTF for CO-RE relocations; else nothing.
Result<void> requireKernelBtf();

// Converts a task's start_boottime (ns) into /proc/<pid>/stat's field 22 (clock ticks) in the
// caller's time namespace.
class StartTicks {
 public:
  StartTicks();
  [[nodiscard]] std::uint64_t operator()(std::uint64_t startBoottimeNs) const;

 private:
  std::int64_t offsetNs_ = 0;
  std::uint64_t nsPerTick_ = 10'000'000;
};

}  // namespace waitwatch::bpf::detail
