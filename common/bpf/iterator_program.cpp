// SPDX-License-Identifier: Apache-2.0
#include "iterator_program.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "libbpf_log.hpp"

namespace waitwatch::bpf::detail {

Result<IteratorProgram> IteratorProgram::load(std::span<const unsigned char> object,
                                              const char* objectName, const char* program,
                                              std::string_view what, std::string_view requirement) {
  silenceLibbpf();
  // Without the kernel's BTF the CO-RE relocations cannot be done; say so rather than relay
  // libbpf's generic failure.
  if (auto btf = requireKernelBtf(); !btf) return btf.error();
  IteratorProgram p;
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = objectName;
  p.object_ = bpf_object__open_mem(object.data(), object.size(), &opts);
  if (p.object_ == nullptr) {
    const int err = errno;
    return Error{err, withLibbpfDetail(std::string("opening the embedded BPF object: ") +
                                       std::strerror(err))};
  }
  if (const int r = bpf_object__load(p.object_); r != 0) {
    return loadError(-r, "loading " + std::string(what), requirement);
  }
  bpf_program* prog = bpf_object__find_program_by_name(p.object_, program);
  if (prog == nullptr) {
    return Error{ENOENT, "the BPF object has no program " + std::string(program)};
  }
  p.link_ = bpf_program__attach_iter(prog, nullptr);
  if (p.link_ == nullptr) return loadError(errno, "attaching " + std::string(what), requirement);
  return p;
}

IteratorProgram::IteratorProgram(IteratorProgram&& other) noexcept
    : object_(std::exchange(other.object_, nullptr)), link_(std::exchange(other.link_, nullptr)) {}

IteratorProgram& IteratorProgram::operator=(IteratorProgram&& other) noexcept {
  if (this != &other) {
    reset();
    object_ = std::exchange(other.object_, nullptr);
    link_ = std::exchange(other.link_, nullptr);
  }
  return *this;
}

IteratorProgram::~IteratorProgram() {
  reset();
}

void IteratorProgram::reset() {
  if (link_ != nullptr) bpf_link__destroy(std::exchange(link_, nullptr));
  if (object_ != nullptr) bpf_object__close(std::exchange(object_, nullptr));
}

Result<UniqueFd> IteratorProgram::start(std::string_view what) const {
  UniqueFd walk(bpf_iter_create(bpf_link__fd(link_)));
  if (!walk) return osError(errno, "starting " + std::string(what));
  return walk;
}

Result<void> readRecords(int walk, std::vector<char>& buffer, std::size_t recordSize,
                         FunctionRef<std::size_t(std::span<const std::byte>)> consume,
                         std::string_view what) {
  std::size_t carried = 0;  // bytes of a record cut by the previous read
  for (;;) {
    const ssize_t n = ::read(walk, buffer.data() + carried, buffer.size() - carried);
    if (n < 0) {
      // EAGAIN: the kernel visited its maximum number of objects in one read without writing a
      // record; the next read goes on from there.
      if (errno == EINTR || errno == EAGAIN) continue;
      return osError(errno, "reading " + std::string(what));
    }
    if (n == 0) break;
    const std::size_t have = carried + static_cast<std::size_t>(n);
    const std::size_t whole = have - have % recordSize;
    const std::size_t used = consume(std::as_bytes(std::span<const char>(buffer.data(), whole)));
    carried = have - used;
    if (carried > 0) std::memmove(buffer.data(), buffer.data() + used, carried);
  }
  if (carried != 0) {
    return Error{EPROTO, std::string(what) + " ended inside a record (" + std::to_string(carried) +
                             " bytes left)"};
  }
  return {};
}

}  // namespace waitwatch::bpf::detail
