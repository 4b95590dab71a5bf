// SPDX-License-Identifier: Apache-2.0
#pragma once
// The queue between a thread that must never wait (the poll loop, libmicrohttpd's) and one
// worker thread that may (a stalled journald, bcrypt). At most `capacity` items are taken at a
// time: queued, reserved, or being handled until the worker says done(); past that an item is
// refused and the producer counts or answers it. Closing refuses new items and lets the worker
// drain, or hands back what is queued.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace waitwatch {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // A place taken before the item exists (a connection is suspended in between); false when
  // full or closed. Each place is then submit()ted.
  bool reserve() {
    std::lock_guard lock(mutex_);
    if (closed_ || taken_ >= capacity_) return false;
    ++taken_;
    ++unsubmitted_;
    return true;
  }

  // The item for a reserved place. When the queue was closed meanwhile, it is handed back.
  std::optional<T> submit(T item) {
    std::unique_lock lock(mutex_);
    --unsubmitted_;
    if (closed_) {
      --taken_;
      lock.unlock();
      submitted_.notify_all();
      return item;
    }
    items_.push_back(std::move(item));
    lock.unlock();
    ready_.notify_one();
    return std::nullopt;
  }

  // reserve() and submit() at once; false (the item dropped) when full or closed.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    if (closed_ || taken_ >= capacity_) return false;
    ++taken_;
    items_.push_back(std::move(item));
    lock.unlock();
    ready_.notify_one();
    return true;
  }

  // For the worker: the next item, waiting for one; nullopt once closed and drained. Its place
  // stays taken until done().
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // A popped item is handled: its place is free again.
  void done() {
    std::lock_guard lock(mutex_);
    --taken_;
  }

  [[nodiscard]] bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  // New items are refused from now on; the worker's pop() drains what is queued, then ends.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

  // close(), then, once every reserved place was submitted, takes what is still queued: the
  // worker's pop() ends at once.
  std::deque<T> closeAndTake() {
    std::deque<T> left;
    {
      std::unique_lock lock(mutex_);
      closed_ = true;
      submitted_.wait(lock, [this] { return unsubmitted_ == 0; });
      left.swap(items_);
      taken_ -= left.size();
    }
    ready_.notify_all();
    return left;
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable submitted_;
  std::deque<T> items_;
  std::size_t taken_ = 0;        // queued, reserved, or being handled
  std::size_t unsubmitted_ = 0;  // reserved, not submitted yet
  bool closed_ = false;
};

}  // namespace waitwatch
