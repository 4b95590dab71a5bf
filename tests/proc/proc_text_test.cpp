// SPDX-License-Identifier: Apache-2.0
#include "proc/proc_text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace waitwatch {
namespace {

using namespace std::string_literals;

// A real /proc/<pid>/stat line (systemd-journald), fields 1..52.
constexpr std::string_view kStat =
    "312 (systemd-journal) S 1 312 312 0 -1 4194560 1520 0 35 0 24 31 0 0 20 0 1 0 "
    "1234567 35921920 3397 18446744073709551615 1 1 0 0 0 0 16384 4096 16711 0 0 0 17 0 0 0 0 "
    "0 0 0 0 0 0 0 0 0 0\n";

TEST(ProcStat, ParsesPidCommPpidAndStartTime) {
  auto st = parseProcStat(kStat);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->pid, 312);
  EXPECT_EQ(st->comm, "systemd-journal");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->startTime, 1234567u);
}

TEST(ProcStat, CommMayHoldSpacesAndParentheses) {
  // prctl(PR_SET_NAME) accepts anything: the comm ends at the last ')'.
  auto st = parseProcStat("77 (a) b (c)) R 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 99 0 0\n");
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->comm, "a) b (c)");
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 5);
  EXPECT_EQ(st->startTime, 99u);
}

TEST(ProcStat, ControlCharactersInCommArePrintable) {
  auto st = parseProcStat("8 (x\ny\x1b) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5\n"s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->comm, "x?y?");
}

TEST(ProcStat, RejectsMalformedInputWithTheField) {
  auto noParen = parseProcStat("312 systemd S 1");
  ASSERT_FALSE(noParen);
  EXPECT_NE(noParen.error().message.find("comm"), std::string::npos);

  auto badPid = parseProcStat("x12 (a) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5");
  ASSERT_FALSE(badPid);
  EXPECT_NE(badPid.error().message.find("field 1"), std::string::npos);

  auto truncated = parseProcStat("312 (a) S 1 0 0");
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().message.find("truncated"), std::string::npos);

  auto badStart = parseProcStat("312 (a) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 -5");
  ASSERT_FALSE(badStart);
  EXPECT_NE(badStart.error().message.find("field 22"), std::string::npos);

  auto badState = parseProcStat("312 (a) SS 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5");
  ASSERT_FALSE(badState);
  EXPECT_NE(badState.error().message.find("field 3"), std::string::npos);
  EXPECT_FALSE(parseProcStat("312 (a) \x01 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"s));

  EXPECT_FALSE(parseProcStat(""));
  EXPECT_FALSE(parseProcStat(")("));
  EXPECT_FALSE(parseProcStat("0 (a) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5"));
}

TEST(ProcStatus, ReadsTheFourUids) {
  auto st = parseProcStatus(
      "Name:\tnginx\nUmask:\t0022\nState:\tS (sleeping)\n"
      "Uid:\t1000\t33\t33\t34\nGid:\t1000\t33\t33\t33\n");
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->realUid, 1000u);
  EXPECT_EQ(st->effectiveUid, 33u);
  EXPECT_EQ(st->savedUid, 33u);
  EXPECT_EQ(st->fsUid, 34u);
}

TEST(ProcStatus, RejectsMissingOrBadUidLine) {
  auto none = parseProcStatus("Name:\tx\nGid:\t0\t0\t0\t0\n");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no Uid line"), std::string::npos);
  auto bad = parseProcStatus("Uid:\t0\t0\tx\t0\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("value 3"), std::string::npos);
  EXPECT_FALSE(parseProcStatus("Uid:\t0\t0\n"));
  EXPECT_FALSE(parseProcStatus("Uid:\t99999999999\t0\t0\t0\n"));
}

// As fs/proc/base.c, proc_pid_limits() writes it.
TEST(ProcLimits, ReadsTheOpenFilesSoftLimit) {
  const std::string text =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max processes             96362                96362                processes \n"
      "Max open files            1024                 524288               files     \n"
      "Max locked memory         8388608              8388608              bytes     \n";
  auto l = parseMaxOpenFiles(text);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(*l, std::optional<std::uint64_t>(1024));
  auto unlimited = parseMaxOpenFiles(
      "Max open files            unlimited            unlimited   "
      "         files     \n");
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(*unlimited, std::nullopt);
}

TEST(ProcLimits, RejectsMissingOrBadLinesWithTheField) {
  auto none = parseMaxOpenFiles("Max open filesystems      12\nMax processes 5\n");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "limits: no \"Max open files\" line");
  auto bad = parseMaxOpenFiles("Max open files            -5                   4096 files\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "limits: \"Max open files\": the soft limit is not a number: '-5'");
  EXPECT_FALSE(parseMaxOpenFiles("Max open files            18446744073709551616 4096 files\n"));
  EXPECT_FALSE(parseMaxOpenFiles("Max open files\n"));
  EXPECT_FALSE(parseMaxOpenFiles(""));
}

TEST(Cmdline, JoinsArgumentsAndDropsTrailingNuls) {
  EXPECT_EQ(formatCmdline("nginx: worker process\0\0\0"s), "nginx: worker process");
  EXPECT_EQ(formatCmdline("/usr/bin/python3\0-m\0http.server\0"s),
            "/usr/bin/python3 -m http.server");
  EXPECT_EQ(formatCmdline(""), "");
  EXPECT_EQ(formatCmdline("a\0\0b\0"s), "a  b");
}

TEST(Cmdline, MakesControlBytesAndBadUtf8Printable) {
  EXPECT_EQ(formatCmdline("echo\0\x1b[31mred\0"s), "echo ?[31mred");
  EXPECT_EQ(formatCmdline("caf\xc3\xa9\0\xff\xfe\0"s), "caf\xc3\xa9 ??");
  // C1 controls, overlong encodings and surrogates are not let through.
  EXPECT_EQ(formatCmdline("\xc2\x9b\0\xc0\xaf\0\xed\xa0\x80"s), "?? ?? ???");
}

TEST(Cmdline, IsBoundedAndMarksTheCut) {
  const std::string longArg(1000, 'x');
  const std::string out = formatCmdline("java\0"s + longArg, 40);
  EXPECT_EQ(out.size(), 40u);
  EXPECT_EQ(out.substr(0, 5), "java ");
  EXPECT_EQ(out.substr(37), "...");
  // Never cut inside a multi-byte character.
  const std::string euro = formatCmdline("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"s, 8);
  EXPECT_EQ(euro, "\xe2\x82\xac...");
  EXPECT_EQ(formatCmdline("abcdef", 3), "abc");
}

TEST(SocketLink, ParsesInodeOfSocketTargetsOnly) {
  EXPECT_EQ(parseSocketLink("socket:[12345]"), 12345u);
  EXPECT_EQ(parseSocketLink("socket:[4294967295]"), 4294967295u);
  EXPECT_FALSE(parseSocketLink("socket:[4294967296]"));
  EXPECT_FALSE(parseSocketLink("socket:[0]"));
  EXPECT_FALSE(parseSocketLink("socket:[]"));
  EXPECT_FALSE(parseSocketLink("socket:[12a]"));
  EXPECT_FALSE(parseSocketLink("socket:[-1]"));
  EXPECT_FALSE(parseSocketLink("socket:[+1]"));
  EXPECT_FALSE(parseSocketLink("socket:[012]"));  // the kernel never pads
  EXPECT_FALSE(parseSocketLink("socket:[12345"));
  EXPECT_FALSE(parseSocketLink("pipe:[12345]"));
  EXPECT_FALSE(parseSocketLink("/dev/null"));
  EXPECT_FALSE(parseSocketLink("anon_inode:[eventpoll]"));
  EXPECT_FALSE(parseSocketLink(""));
  EXPECT_FALSE(parseSocketLink("socket:[99999999999999999999999]"));
}

}  // namespace
}  // namespace waitwatch
