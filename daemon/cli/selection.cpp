// SPDX-License-Identifier: Apache-2.0
#include "cli/selection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cli/view.hpp"
#include "core/function_ref.hpp"
#include "proc/cgroup.hpp"
#include "proc/proc_text.hpp"
#include "sys/dir.hpp"
#include "sys/file.hpp"

namespace waitwatch::cli {
namespace {

constexpr const char* kPrivilegeHint =
    "other users' processes need root, or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH";

enum class Outcome : std::uint8_t {
  Readable,    // shown, or exists and holds none of the sockets asked for
  Missing,     // no such process, or no running process of the unit
  Unreadable,  // exists, but its open files may not be read
};

// "1234 (sshd, uid 0)", and why its fds may not be read; nullopt when they may.
struct FdAccess {
  bool exists = false;
  int error = 0;  // EACCES or EPERM when the fds may not be read
  std::string who;
};

FdAccess probeProcess(int procFd, std::int32_t pid) {
  FdAccess a;
  const std::string name = std::to_string(pid);
  auto dir = openAt(procFd, name, O_DIRECTORY);
  if (!dir) return a;
  a.exists = true;
  std::string comm = "?";
  std::string text;
  if (readFileAt(dir->get(), "stat", text, kMaxProcFileBytes)) {
    if (auto stat = parseProcStat(text)) comm = stat->comm;
  }
  struct stat st {};
  const std::uint32_t uid = ::fstat(dir->get(), &st) == 0 ? st.st_uid : 0;
  a.who = name + " (" + printable(comm, 64) + ", uid " + std::to_string(uid) + ")";
  auto fd = openAt(dir->get(), "fd", O_DIRECTORY);
  if (!fd && (fd.error().errnum == EACCES || fd.error().errnum == EPERM)) {
    a.error = fd.error().errnum;
  }
  return a;
}

Outcome checkPid(std::int32_t pid, int procFd, std::vector<std::string>& notes) {
  const FdAccess a = probeProcess(procFd, pid);
  if (!a.exists) {
    notes.push_back("no such process: " + std::to_string(pid));
    return Outcome::Missing;
  }
  if (a.error != 0) {
    notes.push_back("process " + a.who + ": its sockets could not be read: " +
                    std::strerror(a.error) + " (" + kPrivilegeHint + ")");
    return Outcome::Unreadable;
  }
  return Outcome::Readable;
}

// Looks for the processes of `unit` among all of /proc (only when the view shows none of them).
Outcome checkUnit(const std::string& unit, int procFd, std::vector<std::string>& notes) {
  const std::vector<std::string> one{unit};
  std::vector<std::int32_t> members;
  std::vector<char> dents;
  std::string text;
  ::lseek(procFd, 0, SEEK_SET);  // each unit lists /proc from the start
  forEachDirEntry(procFd, dents, [&](const char* name, std::uint64_t, unsigned char) {
    const auto pid = parseProcNumber(name);
    if (!pid || *pid <= 0) return;
    if (!readFileAt(procFd, std::string(name) + "/cgroup", text, kMaxProcFileBytes)) return;
    auto cg = parseCgroupFile(text);
    if (!cg) return;
    ProcessInfo info;
    info.unit = std::move(cg->unit);
    info.container = std::move(cg->container);
    if (matchesUnit(info, one)) members.push_back(*pid);
  });
  const std::string quotedUnit = "'" + printable(unit, 64) + "'";
  if (members.empty()) {
    notes.push_back("no such unit or container: " + quotedUnit +
                    " (no running process belongs to it)");
    return Outcome::Missing;
  }
  std::size_t unreadable = 0;
  FdAccess first;
  for (std::int32_t pid : members) {
    FdAccess a = probeProcess(procFd, pid);
    if (!a.exists) continue;
    if (a.error == 0) return Outcome::Readable;
    if (unreadable++ == 0) first = std::move(a);
  }
  if (unreadable == 0) {
    notes.push_back("no such unit or container: " + quotedUnit +
                    " (its processes exited while waitwatch looked)");
    return Outcome::Missing;
  }
  notes.push_back("unit " + quotedUnit + ": the sockets of its " + std::to_string(unreadable) +
                  " process(es) could not be read (first: " + first.who +
                  "): " + std::strerror(first.error) + " (" + kPrivilegeHint + ")");
  return Outcome::Unreadable;
}

// The selectors the snapshot has no process of go to `pidElsewhere` and `unitElsewhere`, which
// say what became of them and whether the process (or a process of the unit) could be read.
SelectionCheck checkAgainst(
    const Filter& filter, const Snapshot& shown,
    FunctionRef<bool(std::int32_t, std::vector<std::string>&)> pidElsewhere,
    FunctionRef<bool(const std::string&, std::vector<std::string>&)> unitElsewhere) {
  SelectionCheck out;
  bool anyPid = false;
  for (std::int32_t pid : filter.pids) {
    const bool there = std::any_of(shown.processes.begin(), shown.processes.end(),
                                   [&](const ProcessEntry& p) { return p.info.key.pid == pid; });
    if (there || pidElsewhere(pid, out.notes)) anyPid = true;
  }
  bool anyUnit = false;
  for (const std::string& unit : filter.units) {
    const std::vector<std::string> one{unit};
    const bool there = std::any_of(shown.processes.begin(), shown.processes.end(),
                                   [&](const ProcessEntry& p) { return matchesUnit(p.info, one); });
    if (there || unitElsewhere(unit, out.notes)) anyUnit = true;
  }
  out.nothingReadable = (!filter.pids.empty() && !anyPid) || (!filter.units.empty() && !anyUnit);
  // Names come from the runtimes' files: a name no process shown has cannot be looked for
  // elsewhere; say which one found nothing.
  for (auto [option, member] :
       {std::pair{"container", &Filter::containers}, std::pair{"pod", &Filter::pods},
        std::pair{"namespace", &Filter::podNamespaces}}) {
    for (const std::string& v : filter.*member) {
      Filter one;
      one.*member = {v};
      const bool there =
          std::any_of(shown.processes.begin(), shown.processes.end(),
                      [&](const ProcessEntry& p) { return matchesContainerFilters(p.info, one); });
      if (!there) {
        out.notes.push_back("no process holding TCP sockets is in " + std::string(option) + " '" +
                            printable(v, 64) + "'");
      }
    }
  }
  return out;
}

}  // namespace

SelectionCheck checkRemoteSelection(const Filter& filter, const Snapshot& shown,
                                    const std::string& source) {
  const std::string where = " is not in the snapshot of " + source +
                            " (no such process there, or it holds no TCP socket)";
  return checkAgainst(
      filter, shown,
      [&](std::int32_t pid, std::vector<std::string>& notes) {
        notes.push_back("process " + std::to_string(pid) + where);
        return false;
      },
      [&](const std::string& unit, std::vector<std::string>& notes) {
        notes.push_back("unit or container '" + unit + "'" + where);
        return false;
      });
}

SelectionCheck checkSelection(const Filter& filter, const Snapshot& shown,
                              const std::string& procRoot) {
  if (!filter.selectsOwners()) return {};
  auto procDir = openAt(AT_FDCWD, procRoot, O_DIRECTORY);
  if (!procDir) {
    SelectionCheck out;
    out.notes.push_back("cannot check the processes asked for: " + procDir.error().message);
    return out;
  }
  const int dir = procDir->get();
  return checkAgainst(
      filter, shown,
      [&](std::int32_t pid, std::vector<std::string>& notes) {
        return checkPid(pid, dir, notes) == Outcome::Readable;
      },
      [&](const std::string& unit, std::vector<std::string>& notes) {
        return checkUnit(unit, dir, notes) == Outcome::Readable;
      });
}

}  // namespace waitwatch::cli
