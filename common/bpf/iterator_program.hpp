// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the BPF iterators share (socket_fds, tcp_sockets): an embedded program loaded and
// attached once, a walk started per pass, and its read() loop in whole fixed-size records; a
// program pinned by the daemon for the command line to reuse. Internal to waitwatch::bpf.
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/function_ref.hpp"
#include "core/result.hpp"
#include "sys/unique_fd.hpp"

struct bpf_object;
struct bpf_link;

namespace waitwatch::bpf::detail {

// A pin this process made: its path and the file it made there, which a later pin of the same
// name (another daemon's) replaces.
struct PinFile {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const PinFile&, const PinFile&) = default;
};

class IteratorProgram {
 public:
  // Opens the embedded `object`, loads it and attaches its program `program`. Errors name
  // `what` ("the BPF TCP socket iterator") and, unless it is a matter of privilege,
  // `requirement` and libbpf's last line.
  static Result<IteratorProgram> load(std::span<const unsigned char> object, const char* objectName,
                                      const char* program, std::string_view what,
                                      std::string_view requirement);

  // The same program (the same embedded object, so the same records), loaded and pinned by
  // another process with pin(): no load, no BTF to parse. ENOENT when none is pinned.
  // `target` is the iterator's ("tcp", "task_file"): a link of another is refused. So is a pin
  // directory that anyone but root, this user or the daemon's user could write to.
  static Result<IteratorProgram> openPinned(std::span<const unsigned char> object,
                                            const char* program, std::string_view target);

  IteratorProgram(IteratorProgram&& other) noexcept;
  IteratorProgram& operator=(IteratorProgram&& other) noexcept;
  IteratorProgram(const IteratorProgram&) = delete;
  IteratorProgram& operator=(const IteratorProgram&) = delete;
  ~IteratorProgram();

  // A new pass from the start (an iteration cannot be resumed or rewound).
  Result<UniqueFd> start(std::string_view what) const;

  // Pins the attached program in pinDirectory() for openPinned() until this object goes (or
  // removePinsOfThisProcess()). The directory must be this user's alone. A pin of the same name
  // (left by a process that was killed) is replaced; pins of other builds of the program are
  // removed. Returns the pin's path.
  Result<std::string> pin(std::span<const unsigned char> object, const char* program);

  // Whether this program came from openPinned().
  [[nodiscard]] bool reused() const { return object_ == nullptr && link_ != nullptr; }

 private:
  IteratorProgram() = default;
  void reset();
  void unpin();
  bpf_object* object_ = nullptr;
  bpf_link* link_ = nullptr;
  std::optional<PinFile> pin_;  // the pin this object made, removed with it
};

// removePinsOfThisProcess() (bpf/pins.hpp).
void removeOwnPins();

// Where a daemon's programs are pinned: $WAITWATCH_BPF_PIN_DIR, else /sys/fs/bpf/waitwatch (a
// directory on a BPF filesystem).
std::string pinDirectory();
// The pin's file name: the program's name and a hash of the embedded object, so that only a
// program of the same build, writing the same records, is ever reused.
std::string pinName(std::span<const unsigned char> object, const char* program);

// Reads `walk` to its end. `consume` gets the whole records of each read (a record the kernel
// never cuts, but a short buffer could) and returns how many bytes it used; a record cut at the
// end of the walk is an error naming `what`.
Result<void> readRecords(int walk, std::vector<char>& buffer, std::size_t recordSize,
                         FunctionRef<std::size_t(std::span<const std::byte>)> consume,
                         std::string_view what);

}  // namespace waitwatch::bpf::detail
