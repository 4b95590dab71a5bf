// SPDX-License-Identifier: Apache-2.0
#include "service/notifier.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace waitwatch {

Notifier::Notifier() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || *env == '\0') return;
  const std::string_view name(env);
  if (name[0] != '/' && name[0] != '@') {
    problem_ = "NOTIFY_SOCKET=" + std::string(name) +
               " is not a unix socket path or @name: no notifications are sent";
    return;
  }
  if (name.size() >= sizeof address_.sun_path) {
    problem_ = "NOTIFY_SOCKET is longer than a unix socket path can be: no notifications are sent";
    return;
  }
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, name.data(), name.size());
  if (name[0] == '@') address_.sun_path[0] = '\0';  // the abstract namespace
  addressLength_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                          (name[0] == '/' ? 1 : 0));
  socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  wakeFd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!socket_ || !wakeFd_) {
    problem_ = std::string("cannot create the notification socket: ") + std::strerror(errno);
    addressLength_ = 0;
    return;
  }
  thread_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  work_.notify_one();
  wake();
  thread_.join();
}

void Notifier::post(FunctionRef<bool()> change) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !change()) return;
  }
  work_.notify_one();
  wake();
}

void Notifier::event(std::string message) {
  post([&] {
    status_.reset();  // the event carries its own STATUS=, newer than the pending one
    events_.push_back(std::move(message));
    return true;
  });
}

void Notifier::status(std::string text) {
  post([&] {
    status_ = std::move(text);
    ++statusGeneration_;
    return true;
  });
}

void Notifier::watchdog() {
  post([&] {
    if (watchdog_) return false;  // one ping pending is enough
    watchdog_ = true;
    return true;
  });
}

void Notifier::stop(std::string message, std::chrono::milliseconds bound) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      status_.reset();
      events_.push_back(std::move(message));
    }
  }
  work_.notify_one();
  wake();
  {
    std::unique_lock lock(mutex_);
    flushed_.wait_for(lock, bound, [this] { return events_.empty() && !status_ && !watchdog_; });
    quit_ = true;
  }
  work_.notify_one();
  wake();
  thread_.join();
}

void Notifier::sendNow(std::string_view message) const {
  if (!enabled()) return;
  const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return;
  [[maybe_unused]] const auto n =
      ::sendto(fd.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&address_), addressLength_);
}

void Notifier::wake() const {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wakeFd_.get(), &one, sizeof one);
}

int Notifier::trySend(std::string_view message) {
  // Twice at most: a manager that re-created its socket (the connection is refused) gets one
  // reconnect; an absent one costs the message, not a retry loop.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!connected_) {
      if (::connect(socket_.get(), reinterpret_cast<const sockaddr*>(&address_), addressLength_) !=
          0) {
        return 0;
      }
      connected_ = true;
    }
    if (::send(socket_.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
      return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return EAGAIN;
    if (errno != ECONNREFUSED && errno != ENOTCONN && errno != EPIPE) return 0;
    connected_ = false;
  }
  return 0;
}

void Notifier::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return quit_ || watchdog_ || !events_.empty() || status_; });
    if (quit_) return;
    Kind kind = Kind::Status;
    std::string message;
    std::uint64_t generation = 0;
    // Events first: a READY=1 must not wait behind the ping that followed it.
    if (!events_.empty()) {
      kind = Kind::Event;
      message = events_.front();
    } else if (watchdog_) {
      kind = Kind::Watchdog;
      message = "WATCHDOG=1";
    } else {
      message = "STATUS=" + *status_;
      generation = statusGeneration_;
    }
    lock.unlock();
    if (trySend(message) == EAGAIN) {
      // The manager's queue is full: wait for room or for news (a newer STATUS= replaces the
      // one in hand; the end of the daemon ends the wait).
      pollfd fds[2] = {{socket_.get(), POLLOUT, 0}, {wakeFd_.get(), POLLIN, 0}};
      if (::poll(fds, 2, 1000) > 0 && (fds[1].revents & POLLIN)) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto n = ::read(wakeFd_.get(), &count, sizeof count);
      }
      lock.lock();
      continue;
    }
    lock.lock();
    switch (kind) {
      case Kind::Watchdog:
        watchdog_ = false;
        break;
      case Kind::Event:
        events_.pop_front();
        break;
      case Kind::Status:
        if (generation == statusGeneration_) status_.reset();
        break;
    }
    if (events_.empty() && !status_ && !watchdog_) flushed_.notify_all();
  }
}

}  // namespace waitwatch
