// A small result type for errors that cross module boundaries. Exceptions stay
// inside the library that throws them; callers add context to `message`.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace dormant {

/// An error: an errno-style code (0 when none applies) and a message that
/// names what failed, e.g. "kill(1234, SIGSTOP): No such process".
struct Error {
  int code = 0;
  std::string message;
};

/// Either a value or an Error.
template <typename T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error, for operations with no value.
template <>
class Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace dormant
