#pragma once
// Collection: what `waitwatch` asks the kernel, turned into a Snapshot. Rendering (render.hpp)
// only reads the Snapshot, so new views add a collection step or a renderer, not both.
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "core/result.hpp"
#include "core/snapshot.hpp"

namespace waitwatch::cli {

// Where the host is looked at; tests point these at their own trees.
struct Environment {
  std::string procRoot = "/proc";
  std::string runNetns = "/run/netns";
};

struct Collection {
  Snapshot snapshot;  // namespaces[i].ref and .states filled, in namespace inode order
  // Namespaces that could not be read ("net:[4026532281]: setns ...: Operation not permitted");
  // the others are still reported.
  std::vector<std::string> warnings;
};

// Counts every TCP socket per state in the selected namespaces. Fails when the selection
// itself fails (no such name) or when not one namespace could be read.
Result<Collection> collectStateCounts(const CliOptions& options, const Environment& env = {});

}  // namespace waitwatch::cli
