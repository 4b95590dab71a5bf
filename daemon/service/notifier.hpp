// SPDX-License-Identifier: Apache-2.0
#pragma once
// sd_notify(3) messages to the service manager, sent from a thread of their own so that neither
// the poll loop nor a stop ever waits for a manager that does not read its socket.
//
// libsystemd's sd_notify() sends with a blocking sendmsg() on a fresh socket and has no flag
// for anything else: once the manager's queue is full (a stalled or absent manager, or the
// kernel's net.unix.max_dgram_qlen of 10 queued datagrams) it blocks its caller. Here the
// callers only leave a message in a mailbox, and the notifier thread sends with MSG_DONTWAIT,
// waiting for room with poll():
//   - READY=1, RELOADING=1 and STOPPING=1 (each with its STATUS=) go out in order, first;
//   - WATCHDOG=1 coalesces: one pending ping however many were asked for;
//   - STATUS= keeps only the newest line, sent last.
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/function_ref.hpp"
#include "sys/unique_fd.hpp"

namespace waitwatch {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Without it every call
  // does nothing and no thread runs.
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  [[nodiscard]] bool enabled() const { return addressLength_ > 0; }
  // Why NOTIFY_SOCKET is set but not used (e.g. not a unix socket), else empty.
  [[nodiscard]] const std::string& problem() const { return problem_; }

  // An ordered message ("READY=1\nSTATUS=..."): it replaces a pending plain STATUS=.
  void event(std::string message);
  // A plain STATUS= line; only the newest pending one is sent.
  void status(std::string text);
  void watchdog();
  // Sends `message` (STOPPING=1...) after what is pending, waits until all of it went out or
  // `bound` passed, then ends the thread. Nothing is sent afterwards.
  void stop(std::string message, std::chrono::milliseconds bound);
  // One attempt without waiting, from any thread, on a socket of its own: the last word before
  // the process ends in a hurry.
  void sendNow(std::string_view message) const;

 private:
  enum class Kind : std::uint8_t { Watchdog, Event, Status };
  void run();
  // Under the lock, unless stopping: `change` queues a message (false: nothing new); then the
  // thread is woken.
  void post(FunctionRef<bool()> change);
  // 0 when sent (or dropped for good: the manager is gone), EAGAIN when its queue is full.
  int trySend(std::string_view message);
  void wake() const;

  sockaddr_un address_{};
  socklen_t addressLength_ = 0;
  std::string problem_;
  UniqueFd socket_;  // connected: poll() then says when the manager's queue has room
  bool connected_ = false;
  UniqueFd wakeFd_;  // eventfd: new work or the end, for a thread waiting for room

  std::mutex mutex_;
  std::condition_variable work_;     // the thread waits for messages
  std::condition_variable flushed_;  // stop() waits for the mailbox to empty
  std::deque<std::string> events_;
  std::optional<std::string> status_;
  std::uint64_t statusGeneration_ = 0;
  bool watchdog_ = false;
  bool stopping_ = false;  // no new messages
  bool quit_ = false;      // the thread ends now, sent or not
  std::thread thread_;
};

}  // namespace waitwatch
