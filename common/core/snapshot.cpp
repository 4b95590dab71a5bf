#include "core/snapshot.hpp"

namespace waitwatch {

std::string NetnsRef::label() const {
  if (!name.empty()) return name;
  return "net:[" + std::to_string(inode) + "]";
}

}  // namespace waitwatch
