// SPDX-License-Identifier: Apache-2.0
#pragma once
// HTTP basic auth against `web.basic_auth_users` (bcrypt hashes), as exporter-toolkit does it:
// bcrypt through libxcrypt's crypt_rn, a constant-time compare of the result, and a cache of
// verified (user, password) pairs so that a Prometheus scraping every 5 s pays bcrypt once, not
// 70 ms per scrape.
//
// The cache holds SHA-256 digests of (user, password, stored hash), never passwords. Successes
// and failures are kept apart: only a correct password can add a success, so a flood of wrong
// passwords cannot evict the scraper's entry. Failures are cached too, so that a scraper with a
// wrong password does not cost a bcrypt per scrape. Both are bounded (FIFO eviction).
//
// Thread-safe: lookups come from the HTTP threads, verify() from the verifier thread, setUsers()
// from the poll loop on reload.
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "service/service_config.hpp"

namespace waitwatch {

class BasicAuth {
 public:
  enum class Verdict : std::uint8_t { Allowed, Denied, NeedsBcrypt };

  explicit BasicAuth(std::vector<BasicAuthUser> users = {});

  // Replaces the users (a reload). Cached verdicts stay valid: each is keyed with the user's
  // stored hash, so a changed hash or a removed user never matches an old entry.
  void setUsers(std::vector<BasicAuthUser> users);
  [[nodiscard]] bool enabled() const;

  // From the cache only: cheap (one SHA-256), for the HTTP threads.
  [[nodiscard]] Verdict lookup(std::string_view user, std::string_view password) const;
  // The bcrypt verification (slow on purpose), whose verdict is cached. An unknown user costs a
  // bcrypt as well, against a dummy hash, so that timing does not tell which users exist.
  bool verify(std::string_view user, std::string_view password);

  static constexpr std::size_t kMaxCachedSuccesses = 256;
  static constexpr std::size_t kMaxCachedFailures = 1024;

 private:
  // The stored hash of `user`, or nullptr.
  const BasicAuthUser* find(std::string_view user) const;
  static std::string digest(std::string_view user, std::string_view password,
                            std::string_view hash);

  struct DigestSet {
    std::unordered_set<std::string> set;
    std::deque<std::string> order;
    void insert(std::string key, std::size_t capacity);
  };

  mutable std::mutex mutex_;
  std::vector<BasicAuthUser> users_;  // sorted by name
  std::string dummyHash_;             // for unknown users: the cost of the first user
  DigestSet successes_;
  DigestSet failures_;
};

}  // namespace waitwatch
