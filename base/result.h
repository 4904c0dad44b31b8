// Result<T>: the return type of every fallible operation in tlsedge.
//
// An Error carries a human-readable message that says what went wrong and
// where (file, line, key, host...), written for an operator, and a kind
// that callers branch on (the admin API's status code, a retry) instead of
// re-deriving it from the message. Errors never contain private key
// material.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tlsedge {

// What kind of failure; the admin API maps each to one HTTP status.
enum class ErrorKind {
  kFailed,       // anything else (500)
  kInvalid,      // the input is refused: bad material, a bad name or value (422)
  kNotFound,     // what was named does not exist (404)
  kConflict,     // it exists already, or something is under way (409)
  kInUse,        // refused while something uses it (409)
  kUnavailable,  // cannot be done now: a service is missing or down (503)
};

struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::kFailed;
  // A finer, machine-readable reason where a protocol gives one (an ACME
  // problem's type: "alreadyRevoked"); empty otherwise.
  std::string code;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error makeError(std::string message, ErrorKind kind = ErrorKind::kFailed) {
  return Error{std::move(message), kind, {}};
}

}  // namespace tlsedge
