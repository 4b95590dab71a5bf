// SPDX-License-Identifier: Apache-2.0
#include "rules/glob.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

bool match(const char* pattern, const char* text) {
  auto g = Glob::compile(pattern);
  EXPECT_TRUE(g) << pattern;
  return g && g->matches(text);
}

TEST(Glob, MatchesLikeShellPatterns) {
  EXPECT_TRUE(match("nginx", "nginx"));
  EXPECT_FALSE(match("nginx", "nginx2"));
  EXPECT_TRUE(match("ngin*", "nginx"));
  EXPECT_TRUE(match("*", ""));
  EXPECT_TRUE(match("*.service", "nginx.service"));
  EXPECT_FALSE(match("*.service", "nginx.scope"));
  EXPECT_TRUE(match("php-fpm?", "php-fpm8"));
  EXPECT_FALSE(match("php-fpm?", "php-fpm"));
  EXPECT_TRUE(match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(match("a*b*c", "axxbyy"));
  EXPECT_TRUE(match("*a*a*a*", "banana and a"));
  EXPECT_TRUE(match("[jk]ava", "java"));
  EXPECT_FALSE(match("[!jk]ava", "java"));
  EXPECT_TRUE(match("[^jk]ava", "lava"));
  EXPECT_TRUE(match("worker-[0-9]", "worker-7"));
  EXPECT_FALSE(match("worker-[0-9]", "worker-x"));
  EXPECT_TRUE(match("[]]", "]"));
  EXPECT_TRUE(match("[!]]", "a"));
  EXPECT_TRUE(match("a\\*", "a*"));
  EXPECT_FALSE(match("a\\*", "ab"));
  EXPECT_TRUE(match("\\[x\\]", "[x]"));
}

TEST(Glob, RejectsMalformedPatterns) {
  std::string why;
  EXPECT_FALSE(Glob::compile("ngin[x", &why));
  EXPECT_EQ(why, "unterminated [");
  EXPECT_FALSE(Glob::compile("abc\\", &why));
  EXPECT_EQ(why, "a trailing \\ escapes nothing");
  EXPECT_FALSE(Glob::compile("", &why));
  EXPECT_FALSE(Glob::compile("[]", &why));
}

TEST(Glob, LongInputsStayLinearEnough) {
  const std::string text(10000, 'a');
  EXPECT_FALSE(match("*a*a*a*a*a*b", text.c_str()));
  EXPECT_TRUE(match("*a*a*a*a*a*", text.c_str()));
}

}  // namespace
}  // namespace waitwatch
