// Status and Result<T>: herald's error values.
//
// No exceptions cross a module boundary or run on a hot path. A fallible call
// returns a Status (success or a code and a message) or a Result<T> (a value or a
// Status). Codes are stable: the api module maps them to HTTP statuses and to the
// snake_case error codes of the REST contract.
#pragma once

#include <cassert>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace herald {

enum class Code : int {
  kOk = 0,
  kInvalidArgument,    // the caller sent something malformed or out of range
  kNotFound,           // the named thing does not exist
  kAlreadyExists,      // a create collided with an existing thing
  kUnauthenticated,    // no credentials, or credentials that match nobody
  kPermissionDenied,   // valid credentials, not allowed to do this
  kResourceExhausted,  // a limit or quota was hit
  kFailedPrecondition, // the system is not in a state that allows this
  kUnavailable,        // try again later (shutting down, overloaded)
  kIoError,            // storage or network failed underneath us
  kCorruption,         // stored bytes failed a checksum or could not be decoded
  kInternal,           // a broken invariant; a bug
};

// Returns the stable snake_case name of a code, e.g. "invalid_argument".
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: port must be 0..65535"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}             // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {       // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // The status: Ok() when a value is present.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  // Accessors require ok(); calling them on an error is a bug and aborts.
  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  T&& value() && { Check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Check() const {
    if (!ok()) std::abort();
  }
  std::variant<T, Status> v_;
};

}  // namespace herald

// Returns early from a function returning Status or Result<T> when `expr` fails.
#define HERALD_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::herald::Status _herald_st = (expr);         \
    if (!_herald_st.ok()) return _herald_st;      \
  } while (0)
