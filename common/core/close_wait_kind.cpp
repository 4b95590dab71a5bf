// SPDX-License-Identifier: Apache-2.0
#include "core/close_wait_kind.hpp"

#include "core/enum_names.hpp"

namespace waitwatch {
namespace {

constexpr EnumNames<CloseWaitKind, kCloseWaitKindCount> kNames(
    {{CloseWaitKind::Abandoned, "abandoned"},
     {CloseWaitKind::EofNotClosed, "eof_not_closed"},
     {CloseWaitKind::UnreadData, "unread_data"}});

}  // namespace

std::string_view closeWaitKindName(CloseWaitKind kind) {
  return kNames.name(kind);
}

std::optional<CloseWaitKind> parseCloseWaitKind(std::string_view name) {
  return kNames.parse(name);
}

std::string_view closeWaitKindAdvice(CloseWaitKind kind) {
  switch (kind) {
    case CloseWaitKind::Abandoned:
      return "not read since the peer closed: look for connections kept and never used again "
             "(a pool that does not check idle connections, a handle dropped without close, a "
             "stuck thread)";
    case CloseWaitKind::EofNotClosed:
      return "end-of-stream read and the socket never closed: look for the EOF or error path "
             "that returns without close()";
    case CloseWaitKind::UnreadData:
      return "data left unread: the code stopped reading (a blocked consumer, a deadlock)";
  }
  return "";
}

}  // namespace waitwatch
