// SPDX-License-Identifier: Apache-2.0
#pragma once
// Recoverable errors are values: Result<T> holds either a T or an Error with errno and context.
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace waitwatch {

struct Error {
  int errnum = 0;       // errno where the failure came from the OS, 0 otherwise
  std::string message;  // what failed and where, ready to show an operator

  // "context: message" so callers can add where they were without losing the cause.
  [[nodiscard]] Error wrap(std::string_view context) const {
    return Error{errnum, std::string(context) + ": " + message};
  }
};

// The Error of a failed system call: errno `err` and "what: <strerror(err)>".
inline Error osError(int err, std::string_view what) {
  return Error{err, std::string(what) + ": " + std::strerror(err)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error)
      : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  [[nodiscard]] const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace waitwatch
