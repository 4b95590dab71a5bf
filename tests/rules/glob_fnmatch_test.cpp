// SPDX-License-Identifier: Apache-2.0
// Differential test: Glob must agree with POSIX fnmatch(pattern, text, 0) in the C locale on
// every pattern Glob accepts, except for the documented deliberate differences below.
#include <fnmatch.h>
#include <gtest/gtest.h>

#include <clocale>
#include <string>
#include <vector>

#include "rules/glob.hpp"

namespace waitwatch {
namespace {

// Runs a test body in the C locale and restores whatever was there (fnmatch is locale-dependent;
// Glob is not).
class CLocale {
 public:
  CLocale() : saved_(std::setlocale(LC_ALL, nullptr)) { std::setlocale(LC_ALL, "C"); }
  ~CLocale() { std::setlocale(LC_ALL, saved_.c_str()); }

 private:
  std::string saved_;
};

bool fn(const std::string& p, const std::string& t) {
  return fnmatch(p.c_str(), t.c_str(), 0) == 0;
}

std::vector<std::string> allStrings(const std::string& alphabet, std::size_t maxLen) {
  std::vector<std::string> out{""};
  for (std::size_t start = 0, len = 1; len <= maxLen; ++len) {
    const std::size_t end = out.size();
    for (std::size_t i = start; i < end; ++i) {
      for (char c : alphabet)
        out.push_back(out[i] + c);
    }
    start = end;
  }
  return out;
}

void expectAgree(const std::string& p, const std::vector<std::string>& texts) {
  auto g = Glob::compile(p);
  ASSERT_TRUE(g) << "pattern " << p;
  for (const auto& t : texts) {
    EXPECT_EQ(g->matches(t), fn(p, t)) << "pattern '" << p << "' text '" << t << "'";
  }
}

TEST(GlobVsFnmatch, AgreeOnRealisticPatterns) {
  CLocale c;
  const std::vector<std::string> names = {"nginx",
                                          "nginx: worker p",
                                          "php-fpm8.2",
                                          "php-fpm",
                                          "kworker/0:1",
                                          "systemd-journal",
                                          "db-shard-07.service",
                                          "db-shard-7.service",
                                          "docker-0123456789abcdef.scope",
                                          ".hidden",
                                          "docker:0123456789ab",
                                          "java",
                                          "lava",
                                          "[x]",
                                          "a*",
                                          "a]",
                                          "-",
                                          "]",
                                          "caf\xc3\xa9",
                                          "\xff"};
  for (const char* p : {"nginx*",
                        "*-shard-??.service",
                        "php-fpm[0-9]*",
                        "docker-*",
                        "docker:*",
                        "*",
                        "?",
                        "*/*",
                        ".*",
                        "[jk]ava",
                        "[!jk]ava",
                        "[^jk]ava",
                        "[]a]",
                        "[!]a]",
                        "[a-]",
                        "[-a]",
                        "[\\]]",
                        "a\\*",
                        "\\[x\\]",
                        "[z-a]",
                        "[a-c-e]",
                        "[]-a]",
                        "[\x80-\xff]",
                        "caf?",
                        "caf??"}) {
    expectAgree(p, names);
  }
}

// Every pattern of up to 4 characters over the metacharacters, against every text of up to 3
// characters: ~2.9M pairs. Patterns Glob rejects are covered by RejectsWhatFnmatchGetsWrong.
TEST(GlobVsFnmatch, AgreeExhaustivelyOnSmallPatterns) {
  CLocale c;
  const auto texts = allStrings("a-]!\\[", 3);
  long compared = 0;
  for (const auto& p : allStrings("*?[]!^-\\a.", 4)) {
    auto g = Glob::compile(p);
    if (!g) continue;
    for (const auto& t : texts) {
      ++compared;
      if (g->matches(t) != fn(p, t)) {
        ADD_FAILURE() << "pattern '" << p << "' text '" << t << "': Glob " << g->matches(t);
        return;
      }
    }
  }
  EXPECT_GT(compared, 1'000'000);
}

// Deliberate difference 1: malformed patterns are rejected at config load. fnmatch accepts them
// and (glibc) either never matches or reads `[` as a literal, so a typo silently disables a rule.
TEST(GlobVsFnmatch, RejectsWhatFnmatchGetsWrong) {
  CLocale c;
  for (const char* p :
       {"", "abc\\", "\\", "ngin[x", "php-fpm[0-9*", "[", "[]", "[!]", "[a\\]", "[\\"}) {
    EXPECT_FALSE(Glob::compile(p)) << p;
  }
#ifdef __GLIBC__
  EXPECT_FALSE(fn("abc\\", "abc\\"));  // trailing backslash: matches nothing at all
  EXPECT_FALSE(fn("abc\\", "abc"));
  EXPECT_TRUE(fn("ngin[x", "ngin[x"));  // unterminated [: a literal [
  EXPECT_FALSE(fn("ngin[x", "nginx"));
  EXPECT_TRUE(fn("[a\\]", "[a]"));  // ... the \] counts as an escaped ]
  EXPECT_FALSE(fn("[\\", "[\\"));   // ... or nothing at all
  EXPECT_FALSE(fn("[\\", "["));
#endif
}

// Deliberate difference 2: POSIX classes and collating elements ([[:alpha:]], [[.a.]],
// [[=a=]]) are not supported and are rejected rather than misread as a plain set.
TEST(GlobVsFnmatch, RejectsPosixClasses) {
  CLocale c;
  for (const char* p :
       {"[[:alpha:]]", "[![:space:]]*", "[[:digit:]]*", "[[.a.]]", "[[=a=]]", "x[a[:]"}) {
    EXPECT_FALSE(Glob::compile(p)) << p;
  }
  EXPECT_TRUE(fn("[[:alpha:]]", "a"));  // what a user would have meant
  expectAgree("[[]", {"[", "a", ":"});  // a lone [ inside a set is still fine
  expectAgree("[\\[:]", {"[", ":", "a"});
}

// Deliberate difference 3: Glob works on bytes whatever the locale (comm is truncated at 15
// bytes, possibly mid-character). In the C locale fnmatch does too; in a UTF-8 locale its `?`
// and sets take whole characters.
TEST(GlobVsFnmatch, BytesNotCharacters) {
  const std::string e = "caf\xc3\xa9";
  {
    CLocale c;
    expectAgree("caf?", {e});
    expectAgree("caf??", {e});
  }
  auto g = Glob::compile("caf?");
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->matches(e));
  const std::string saved = std::setlocale(LC_ALL, nullptr);
  if (std::setlocale(LC_ALL, "C.UTF-8") != nullptr) {
    EXPECT_TRUE(fn("caf?", e));
    EXPECT_FALSE(g->matches(e));  // unchanged by the locale
  }
  std::setlocale(LC_ALL, saved.c_str());
}

}  // namespace
}  // namespace waitwatch
