// SPDX-License-Identifier: Apache-2.0
// waitwatch::bpf built without BPF support: the recorder never loads, and TIME_WAIT closers come
// from socket ownership.
#include <cerrno>

#include "bpf/close_recorder.hpp"

namespace waitwatch::bpf {

struct CloseRecorder::Loaded {};

CloseRecorder::CloseRecorder(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
CloseRecorder::CloseRecorder(CloseRecorder&&) noexcept = default;
CloseRecorder& CloseRecorder::operator=(CloseRecorder&&) noexcept = default;
CloseRecorder::~CloseRecorder() = default;

Result<CloseRecorder> CloseRecorder::load(std::size_t) {
  return Error{ENOTSUP, WAITWATCH_BPF_UNAVAILABLE};
}
void CloseRecorder::take(CloseBatch& out) {
  out.closes.clear();
  out.closers.clear();
}
std::uint64_t CloseRecorder::lost() const {
  return 0;
}
std::size_t CloseRecorder::ringBytes() const {
  return 0;
}

}  // namespace waitwatch::bpf
