// SPDX-License-Identifier: Apache-2.0
// Basic auth against bcrypt hashes (libxcrypt) and its cache of verdicts.
#include "service/basic_auth.hpp"

#include <gtest/gtest.h>

namespace waitwatch {
namespace {

// "secret" at cost 4 (fast), as Python's crypt and htpasswd make them; the same hash under the
// three bcrypt prefixes htpasswd, OpenBSD and PHP write.
constexpr const char* kSecret2b = "$2b$04$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK";

std::string withPrefix(const char* prefix) {
  std::string h = kSecret2b;
  h.replace(0, 4, prefix);
  return h;
}

TEST(BasicAuth, VerifiesBcryptOfEachPrefix) {
  for (const char* prefix : {"$2a$", "$2b$", "$2y$"}) {
    SCOPED_TRACE(prefix);
    BasicAuth auth({BasicAuthUser{.name = "alice", .bcryptHash = withPrefix(prefix)}});
    EXPECT_TRUE(auth.enabled());
    EXPECT_TRUE(auth.verify("alice", "secret"));
    EXPECT_FALSE(auth.verify("alice", "Secret"));
    EXPECT_FALSE(auth.verify("alice", ""));
    EXPECT_FALSE(auth.verify("bob", "secret"));  // unknown user, same password
  }
  EXPECT_FALSE(BasicAuth().enabled());
}

TEST(BasicAuth, CachesVerdictsKeyedWithTheStoredHash) {
  BasicAuth auth({BasicAuthUser{.name = "alice", .bcryptHash = kSecret2b}});
  using V = BasicAuth::Verdict;
  EXPECT_EQ(auth.lookup("alice", "secret"), V::NeedsBcrypt);
  ASSERT_TRUE(auth.verify("alice", "secret"));
  EXPECT_EQ(auth.lookup("alice", "secret"), V::Allowed);
  EXPECT_EQ(auth.lookup("alice", "secret2"), V::NeedsBcrypt);
  EXPECT_FALSE(auth.verify("alice", "secret2"));
  EXPECT_EQ(auth.lookup("alice", "secret2"), V::Denied);
  EXPECT_FALSE(auth.verify("mallory", "secret"));
  EXPECT_EQ(auth.lookup("mallory", "secret"), V::Denied);

  // A new hash for alice (another password): the old verdicts do not apply to it.
  const std::string other = "$2b$04$WIdSJcgkwttynSSKZCcoT.2PoPaPZBo0SJUEFD4Ldyc7cbMMzL/ei";
  auth.setUsers({BasicAuthUser{.name = "alice", .bcryptHash = other}});
  EXPECT_EQ(auth.lookup("alice", "secret"), V::NeedsBcrypt);
  EXPECT_FALSE(auth.verify("alice", "secret"));
  // Back to the first hash: its success is still cached; a removed user is never allowed.
  auth.setUsers({BasicAuthUser{.name = "alice", .bcryptHash = kSecret2b}});
  EXPECT_EQ(auth.lookup("alice", "secret"), V::Allowed);
  auth.setUsers({BasicAuthUser{.name = "bob", .bcryptHash = kSecret2b}});
  EXPECT_NE(auth.lookup("alice", "secret"), V::Allowed);
  EXPECT_FALSE(auth.verify("alice", "secret"));
}

// Guesses fill the failure cache, which is bounded and separate: they never evict a success.
TEST(BasicAuth, WrongGuessesDoNotEvictASuccess) {
  BasicAuth auth({BasicAuthUser{.name = "alice", .bcryptHash = kSecret2b}});
  ASSERT_TRUE(auth.verify("alice", "secret"));
  for (std::size_t i = 0; i < BasicAuth::kMaxCachedFailures + 10; ++i)
    ASSERT_FALSE(auth.verify("alice", "guess" + std::to_string(i)));
  EXPECT_EQ(auth.lookup("alice", "secret"), BasicAuth::Verdict::Allowed);
  EXPECT_EQ(auth.lookup("alice", "guess0"), BasicAuth::Verdict::NeedsBcrypt);  // evicted
  EXPECT_EQ(auth.lookup("alice", "guess1033"), BasicAuth::Verdict::Denied);
}

}  // namespace
}  // namespace waitwatch
