// SPDX-License-Identifier: Apache-2.0
#include "service/basic_auth.hpp"

#include <crypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <algorithm>
#include <array>
#include <memory>

namespace waitwatch {
namespace {

// Compares every byte whatever the first difference, so that the time taken does not tell how
// much of a guess was right.
bool equalConstantTime(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

BasicAuth::BasicAuth(std::vector<BasicAuthUser> users) {
  setUsers(std::move(users));
}

void BasicAuth::setUsers(std::vector<BasicAuthUser> users) {
  std::sort(users.begin(), users.end(),
            [](const BasicAuthUser& a, const BasicAuthUser& b) { return a.name < b.name; });
  std::lock_guard lock(mutex_);
  users_ = std::move(users);
  // "$2y$10$" and an all-zero salt: a valid bcrypt setting of the same cost as a real user.
  dummyHash_ = users_.empty() ? std::string()
                              : users_.front().bcryptHash.substr(0, 7) + std::string(22, '.');
}

bool BasicAuth::enabled() const {
  std::lock_guard lock(mutex_);
  return !users_.empty();
}

const BasicAuthUser* BasicAuth::find(std::string_view user) const {
  const auto it =
      std::lower_bound(users_.begin(), users_.end(), user,
                       [](const BasicAuthUser& u, std::string_view n) { return u.name < n; });
  return it != users_.end() && it->name == user ? &*it : nullptr;
}

std::string BasicAuth::digest(std::string_view user, std::string_view password,
                              std::string_view hash) {
  // Lengths first: ("ab", "c") and ("a", "bc") must not give the same digest.
  std::string input;
  input.reserve(user.size() + password.size() + hash.size() + 24);
  for (std::string_view part : {user, password, hash}) {
    input += std::to_string(part.size());
    input += ':';
    input += part;
  }
  std::array<unsigned char, 32> out{};
  gnutls_hash_fast(GNUTLS_DIG_SHA256, input.data(), input.size(), out.data());
  std::fill(input.begin(), input.end(), '\0');  // it held the password
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

void BasicAuth::DigestSet::insert(std::string key, std::size_t capacity) {
  if (!set.insert(key).second) return;
  order.push_back(std::move(key));
  if (order.size() > capacity) {
    set.erase(order.front());
    order.pop_front();
  }
}

BasicAuth::Verdict BasicAuth::lookup(std::string_view user, std::string_view password) const {
  std::lock_guard lock(mutex_);
  const BasicAuthUser* u = find(user);
  const std::string key = digest(user, password, u ? u->bcryptHash : std::string_view());
  if (u && successes_.set.contains(key)) return Verdict::Allowed;
  if (failures_.set.contains(key)) return Verdict::Denied;
  return Verdict::NeedsBcrypt;
}

bool BasicAuth::verify(std::string_view user, std::string_view password) {
  std::string hash;
  bool known = false;
  {
    std::lock_guard lock(mutex_);
    if (const BasicAuthUser* u = find(user)) {
      hash = u->bcryptHash;
      known = true;
    } else {
      hash = dummyHash_;
    }
  }
  bool ok = false;
  if (!hash.empty()) {
    // crypt_rn needs ~32 KiB of scratch space; value-initialized as it requires.
    auto data = std::make_unique<crypt_data>();
    std::string phrase(password);
    const char* result = crypt_rn(phrase.c_str(), hash.c_str(), data.get(), sizeof *data);
    // A failed crypt_rn returns NULL or a string starting with '*': never equal to a hash.
    ok = known && result != nullptr && equalConstantTime(result, hash);
    std::fill(phrase.begin(), phrase.end(), '\0');
  }
  const std::string key =
      digest(user, password, known ? std::string_view(hash) : std::string_view());
  std::lock_guard lock(mutex_);
  if (ok) {
    successes_.insert(key, kMaxCachedSuccesses);
  } else {
    failures_.insert(key, kMaxCachedFailures);
  }
  return ok;
}

}  // namespace waitwatch
