// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the BPF iterators share (socket_fds, tcp_sockets): an embedded program loaded and
// attached once, a walk started per pass, and its read() loop in whole fixed-size records.
// Internal to waitwatch::bpf.
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "sys/unique_fd.hpp"

struct bpf_object;
struct bpf_link;

namespace waitwatch::bpf::detail {

class IteratorProgram {
 public:
  // Opens the embedded `object`, loads it and attaches its program `program`. Errors name
  // `what` ("the BPF TCP socket iterator") and, unless it is a matter of privilege,
  // `requirement` and libbpf's last line.
  static Result<IteratorProgram> load(std::span<const unsigned char> object, const char* objectName,
                                      const char* program, std::string_view what,
                                      std::string_view requirement);

  IteratorProgram(IteratorProgram&& other) noexcept;
  IteratorProgram& operator=(IteratorProgram&& other) noexcept;
  IteratorProgram(const IteratorProgram&) = delete;
  IteratorProgram& operator=(const IteratorProgram&) = delete;
  ~IteratorProgram();

  // A new pass from the start (an iteration cannot be resumed or rewound).
  Result<UniqueFd> start(std::string_view what) const;

 private:
  IteratorProgram() = default;
  void reset();
  bpf_object* object_ = nullptr;
  bpf_link* link_ = nullptr;
};

// Reads `walk` to its end. `consume` gets the whole records of each read (a record the kernel
// never cuts, but a short buffer could) and returns how many bytes it used; a record cut at the
// end of the walk is an error naming `what`.
Result<void> readRecords(int walk, std::vector<char>& buffer, std::size_t recordSize,
                         FunctionRef<std::size_t(std::span<const std::byte>)> consume,
                         std::string_view what);

}  // namespace waitwatch::bpf::detail
