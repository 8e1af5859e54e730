// Errors as values at the API boundary: every failure carries a message that names the
// image, the element and the offending value, so a user can find the bad input without a debugger.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace multibox {

enum class ErrorCode {
  ok = 0,
  invalid_input,     // a value in the batch breaks the contract of DESIGN.md section 1
  invalid_config,    // a configuration field is out of range
  shape_mismatch,    // a span's length disagrees with the problem shape
  unavailable,       // the backend cannot run on this machine (CPU features, no device)
  io_error,          // reading or writing a file failed
  internal,          // a bug in multibox: please report it
};

const char* to_string(ErrorCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  bool ok() const noexcept { return code_ == ErrorCode::ok; }
  explicit operator bool() const noexcept { return ok(); }
  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "invalid_input: image 3, ground truth 2: xmax (0.1) <= xmin (0.4)"
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::ok;
  std::string message_;
};

// A value or the Status explaining why there is none (std::expected is C++23; this is the subset we need).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}                      // NOLINT: implicit on purpose
  Result(Status error) : state_(std::move(error)) {}                 // NOLINT: implicit on purpose
  bool ok() const noexcept { return std::holds_alternative<T>(state_); }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; an ok Status when there is a value.
  Status status() const { return ok() ? Status{} : std::get<Status>(state_); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace multibox
