// SPDX-License-Identifier: Apache-2.0
#pragma once
// bcrypt off libmicrohttpd's threads: a request with credentials to verify is suspended, one
// thread verifies, and the connection is resumed with the outcome. The queue is bounded, so a
// flood of wrong passwords costs a bounded amount of CPU and never stalls a scrape.
#include <microhttpd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "service/basic_auth.hpp"
#include "service/bounded_queue.hpp"

namespace waitwatch {

// A request whose credentials wait for bcrypt, its connection suspended meanwhile.
struct PendingLogin {
  enum class Outcome : std::uint8_t { Waiting, Allowed, Denied, Unavailable };
  MHD_Connection* connection = nullptr;
  std::string user;
  std::string password;
  std::atomic<Outcome> outcome{Outcome::Waiting};
};

// One thread that runs bcrypt for suspended requests, with a bounded queue.
class LoginVerifier {
 public:
  LoginVerifier(std::shared_ptr<BasicAuth> auth, unsigned capacity)
      : auth_(std::move(auth)), queue_(capacity), thread_([this] { run(); }) {}
  LoginVerifier(const LoginVerifier&) = delete;
  LoginVerifier& operator=(const LoginVerifier&) = delete;
  ~LoginVerifier() { stop(); }

  // A place in the queue, taken before the connection is suspended; false when full.
  bool reserve() { return queue_.reserve(); }

  // After reserve() and MHD_suspend_connection(): the login is verified and its connection
  // resumed.
  void submit(PendingLogin* login) {
    if (auto refused = queue_.submit(login)) unavailable(*refused);
  }

  // Resumes every suspended connection (MHD_stop_daemon must not find one) and ends the thread.
  void stop() {
    for (PendingLogin* login : queue_.closeAndTake())
      unavailable(login);
    if (thread_.joinable()) thread_.join();
  }

 private:
  static void unavailable(PendingLogin* login) {
    login->outcome = PendingLogin::Outcome::Unavailable;
    MHD_resume_connection(login->connection);
  }

  void run() {
    while (std::optional<PendingLogin*> next = queue_.pop()) {
      PendingLogin* login = *next;
      const bool ok = auth_->verify(login->user, login->password);
      std::fill(login->password.begin(), login->password.end(), '\0');
      login->outcome = ok ? PendingLogin::Outcome::Allowed : PendingLogin::Outcome::Denied;
      queue_.done();
      MHD_resume_connection(login->connection);
    }
  }

  std::shared_ptr<BasicAuth> auth_;
  BoundedQueue<PendingLogin*> queue_;
  std::thread thread_;  // last: starts once the rest is initialized
};

}  // namespace waitwatch
