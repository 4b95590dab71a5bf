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

std::string_view closeWaitKindSummary(CloseWaitKind kind) {
  switch (kind) {
    case CloseWaitKind::Abandoned:
      return "not read since the peer closed";
    case CloseWaitKind::EofNotClosed:
      return "read to end-of-stream and never closed";
    case CloseWaitKind::UnreadData:
      return "left with data unread";
  }
  return "";
}

std::string_view closeWaitKindHint(CloseWaitKind kind) {
  switch (kind) {
    case CloseWaitKind::Abandoned:
      return "look for connections kept and never used again (a pool that does not check idle "
             "connections, a handle dropped without close(), a stuck thread)";
    case CloseWaitKind::EofNotClosed:
      return "look for the end-of-stream or error path that returns without close()";
    case CloseWaitKind::UnreadData:
      return "look for a reader that stopped (a blocked consumer, a deadlock)";
  }
  return "";
}

}  // namespace waitwatch
