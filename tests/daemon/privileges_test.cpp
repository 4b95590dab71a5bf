// SPDX-License-Identifier: Apache-2.0
// The capability adapter: names and needs as pure functions, and the drop itself in a forked
// child (capabilities are per thread and cannot be regained, so the test process keeps its own).
#include "service/privileges.hpp"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace waitwatch {
namespace {

constexpr CapabilitySet kProcPair =
    capabilityBit(CAP_DAC_READ_SEARCH) | capabilityBit(CAP_SYS_PTRACE);

TEST(Privileges, NeedsFollowTheNamespaceScope) {
  EXPECT_EQ(neededCapabilities(NamespaceSelection::Host), kProcPair);
  EXPECT_EQ(neededCapabilities(NamespaceSelection::All), kProcPair | capabilityBit(CAP_SYS_ADMIN));
}

TEST(Privileges, NamesAreCapabilitySevenNames) {
  EXPECT_EQ(capabilityNames(0), "none");
  EXPECT_EQ(capabilityNames(kProcPair), "cap_dac_read_search,cap_sys_ptrace");
  EXPECT_EQ(capabilityNames(capabilityBit(CAP_CHOWN)), "cap_chown");
  EXPECT_EQ(capabilityNames(capabilityBit(CAP_CHECKPOINT_RESTORE)), "cap_checkpoint_restore");
  EXPECT_EQ(capabilityNames(capabilityBit(CAP_NET_BIND_SERVICE)), "cap_net_bind_service");
  // A capability newer than the table still gets a name.
  EXPECT_EQ(capabilityNames(capabilityBit(45)), "cap_45");
}

TEST(Privileges, SummaryNamesKeptDroppedAndMissing) {
  PrivilegeDrop few{.kept = capabilityBit(CAP_SYS_PTRACE),
                    .dropped = capabilityBit(CAP_NET_BIND_SERVICE),
                    .missing = capabilityBit(CAP_DAC_READ_SEARCH),
                    .boundingReduced = false,
                    .boundingLeft = capabilityBit(CAP_SYS_PTRACE) | capabilityBit(CAP_CHOWN) |
                                    capabilityBit(CAP_KILL)};
  EXPECT_EQ(few.summary(),
            "capabilities: kept cap_sys_ptrace; dropped cap_net_bind_service; missing "
            "cap_dac_read_search; bounding set left with 2 others (no cap_setpcap to drop them); "
            "ambient and inheritable sets cleared; no_new_privs set");
  PrivilegeDrop many{.kept = kProcPair,
                     .dropped = (CapabilitySet{1} << 41) - 1 - kProcPair,
                     .boundingReduced = true,
                     .boundingLeft = kProcPair};
  EXPECT_EQ(many.summary(),
            "capabilities: kept cap_dac_read_search,cap_sys_ptrace; dropped all 39 others; "
            "bounding set: only the kept ones; ambient and inheritable sets cleared; "
            "no_new_privs set");
}

// One "Name:\tvalue" line of a /proc status file.
std::string statusField(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0)
      return line.substr(line.find_first_not_of(" \t", name.size() + 1));
  }
  return "";
}

std::uint64_t hexField(const std::string& path, const std::string& name) {
  return std::stoull(statusField(path, name), nullptr, 16);
}

TEST(Privileges, DropKeepsExactlyWhatIsAskedInEveryLaterThread) {
  auto before = currentCapabilities();
  ASSERT_TRUE(before.ok()) << before.error().message;
  // What the kernel reports in /proc matches capget and prctl.
  EXPECT_EQ(before->effective, hexField("/proc/thread-self/status", "CapEff"));
  EXPECT_EQ(before->permitted, hexField("/proc/thread-self/status", "CapPrm"));
  EXPECT_EQ(before->bounding, hexField("/proc/thread-self/status", "CapBnd"));
  EXPECT_EQ(before->ambient, hexField("/proc/thread-self/status", "CapAmb"));
  const bool root = (before->permitted & capabilityBit(CAP_SETPCAP)) != 0 &&
                    (before->permitted & kProcPair) == kProcPair;
  const CapabilitySet keep = capabilityBit(CAP_SYS_PTRACE) | capabilityBit(CAP_SYS_ADMIN);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child reports through its exit status: 0 all good, 10+ which check failed.
    auto drop = dropPrivileges(keep);
    if (!drop) ::_exit(10);
    if (drop->kept != (before->permitted & keep)) ::_exit(11);
    if (drop->dropped != (before->permitted & ~keep)) ::_exit(12);
    int status = 0;
    // A thread made after the drop copies the reduced sets.
    std::thread([&] {
      const std::string self = "/proc/thread-self/status";
      const CapabilitySet kept = before->permitted & keep;
      if (hexField(self, "CapEff") != kept || hexField(self, "CapPrm") != kept) status = 13;
      if (hexField(self, "CapInh") != 0 || hexField(self, "CapAmb") != 0) status = 14;
      if (statusField(self, "NoNewPrivs") != "1") status = 15;
      // With CAP_SETPCAP (root) the bounding set shrinks too; without, it cannot.
      if (root && hexField(self, "CapBnd") != keep) status = 16;
      if (!root && hexField(self, "CapBnd") != before->bounding) status = 17;
    }).join();
    // Dropped for good: capset cannot raise what is gone from the permitted set.
    if (root && dropPrivileges(keep | capabilityBit(CAP_CHOWN))->kept != keep) status = 18;
    ::_exit(status);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  if (!root) GTEST_SKIP() << "not root: the bounding set and dropped capabilities were not tested";
}

}  // namespace
}  // namespace waitwatch
