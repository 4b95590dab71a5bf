// SPDX-License-Identifier: Apache-2.0
#pragma once
// bcrypt off libmicrohttpd's threads: a request with credentials to verify is suspended, one
// thread verifies, and the connection is resumed with the outcome. The queue is bounded, so a
// flood of wrong passwords costs a bounded amount of CPU and never stalls a scrape.
#include <microhttpd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "service/basic_auth.hpp"

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
      : auth_(std::move(auth)), capacity_(capacity), thread_([this] { run(); }) {}
  LoginVerifier(const LoginVerifier&) = delete;
  LoginVerifier& operator=(const LoginVerifier&) = delete;
  ~LoginVerifier() { stop(); }

  // A place in the queue, taken before the connection is suspended; false when full.
  bool reserve() {
    std::lock_guard lock(mutex_);
    if (stopping_ || taken_ >= capacity_) return false;
    ++taken_;
    ++unsubmitted_;
    return true;
  }

  // After reserve() and MHD_suspend_connection(): the login is verified and its connection
  // resumed.
  void submit(PendingLogin* login) {
    std::unique_lock lock(mutex_);
    --unsubmitted_;
    if (stopping_) {
      lock.unlock();
      submitted_.notify_all();
      login->outcome = PendingLogin::Outcome::Unavailable;
      MHD_resume_connection(login->connection);
      return;
    }
    queue_.push_back(login);
    lock.unlock();
    work_.notify_one();
  }

  // Resumes every suspended connection (MHD_stop_daemon must not find one) and ends the thread.
  void stop() {
    std::deque<PendingLogin*> left;
    {
      std::unique_lock lock(mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
      submitted_.wait(lock, [this] { return unsubmitted_ == 0; });
      left.swap(queue_);
    }
    work_.notify_all();
    for (PendingLogin* login : left) {
      login->outcome = PendingLogin::Outcome::Unavailable;
      MHD_resume_connection(login->connection);
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      PendingLogin* login = queue_.front();
      queue_.pop_front();
      lock.unlock();
      const bool ok = auth_->verify(login->user, login->password);
      std::fill(login->password.begin(), login->password.end(), '\0');
      login->outcome = ok ? PendingLogin::Outcome::Allowed : PendingLogin::Outcome::Denied;
      lock.lock();
      --taken_;
      lock.unlock();
      MHD_resume_connection(login->connection);
    }
  }

  std::shared_ptr<BasicAuth> auth_;
  const unsigned capacity_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable submitted_;
  std::deque<PendingLogin*> queue_;
  unsigned taken_ = 0;        // queued, being verified, or reserved
  unsigned unsubmitted_ = 0;  // reserved, not submitted yet
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is initialized
};

}  // namespace waitwatch
