// SPDX-License-Identifier: Apache-2.0
#pragma once
// What --pid and --unit asked for and could not be shown: a process that does not exist, one
// whose open files may not be read, a unit or container no running process belongs to. Without
// this an empty table reads as "holds no sockets", which is then a lie.
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "core/snapshot.hpp"

namespace waitwatch::cli {

struct SelectionCheck {
  std::vector<std::string> notes;  // one line each, for stderr
  // Of the pids (or of the units) asked for, not one exists and could be read: whatever the
  // view shows is not an answer, so the run fails.
  bool nothingReadable = false;
};

// `shown`: the filtered snapshot. Reads `procRoot` only for the selectors the snapshot has no
// process of.
SelectionCheck checkSelection(const Filter& filter, const Snapshot& shown,
                              const std::string& procRoot);

// The same for a daemon's snapshot (--from, `shown` unfiltered): a pid or unit the snapshot has
// no process of may
// not exist on that host or may hold no TCP socket there, which this host cannot tell apart;
// each is said, and when none of them is in the snapshot the run fails.
SelectionCheck checkRemoteSelection(const Filter& filter, const Snapshot& shown,
                                    const std::string& source);

}  // namespace waitwatch::cli
