// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <microhttpd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace waitwatch {

// Enforces HttpServerOptions::requestDeadlineSeconds. libmicrohttpd tells each connection's
// start and end (MHD_OPTION_NOTIFY_CONNECTION); a request whose headers are complete reaches
// onRequest; its end reaches onCompleted. A connection with no complete request by its deadline
// is shut down (shutdown(2) on its socket): libmicrohttpd then reads EOF and closes it the usual
// way, so none of its state is touched from here. The socket number stays this connection's
// until its CLOSED notification (libmicrohttpd closes the socket after it), and that
// notification removes it from here under the same mutex, so a reused number is never hit.
class RequestDeadlines {
 public:
  using Clock = std::chrono::steady_clock;

  // `seconds` for the first request of a connection; `keepAliveSeconds` (not shorter) for the
  // next ones, so that a client reusing a kept-alive connection is not cut before the idle
  // timeout would have closed it anyway.
  RequestDeadlines(unsigned seconds, unsigned keepAliveSeconds)
      : limit_(std::chrono::seconds(seconds)),
        keepAliveLimit_(std::chrono::seconds(std::max(seconds, keepAliveSeconds))) {
    if (seconds > 0) reaper_ = std::thread([this] { reap(); });
  }
  ~RequestDeadlines() { stop(); }
  RequestDeadlines(const RequestDeadlines&) = delete;
  RequestDeadlines& operator=(const RequestDeadlines&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (reaper_.joinable()) reaper_.join();
  }

  void opened(MHD_Connection* c) {
    const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == nullptr) return;
    bool wasIdle = false;
    {
      std::lock_guard lock(mutex_);
      wasIdle = open_.empty();
      open_[c] = Entry{.fd = info->connect_fd, .deadline = Clock::now() + limit_};
    }
    if (wasIdle) wake_.notify_all();  // the reaper sleeps while no connection is open
  }
  void closed(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    open_.erase(c);
  }
  // The request's headers are in: no deadline while it is served (bcrypt, a long response).
  void requestArrived(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(c); it != open_.end()) it->second.serving = true;
  }
  // Answered: the next request on this connection gets a deadline of its own.
  void requestDone(MHD_Connection* c) {
    std::lock_guard lock(mutex_);
    if (auto it = open_.find(c); it != open_.end()) {
      it->second.serving = false;
      it->second.deadline = Clock::now() + keepAliveLimit_;
    }
  }
  [[nodiscard]] std::uint64_t shutDown() const { return shutDown_.load(); }

 private:
  struct Entry {
    int fd = -1;
    Clock::time_point deadline;
    bool serving = false;
    bool shut = false;
  };

  void reap() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      // No connection, nothing to cut: no periodic wake-up of an idle daemon.
      wake_.wait(lock, [this] { return stopping_ || !open_.empty(); });
      if (stopping_) break;
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      const auto now = Clock::now();
      for (auto& [connection, e] : open_) {
        if (e.serving || e.shut || now < e.deadline) continue;
        ::shutdown(e.fd, SHUT_RDWR);
        e.shut = true;
        shutDown_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  const Clock::duration limit_;
  const Clock::duration keepAliveLimit_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::unordered_map<MHD_Connection*, Entry> open_;
  std::atomic<std::uint64_t> shutDown_{0};
  std::thread reaper_;
};

}  // namespace waitwatch
