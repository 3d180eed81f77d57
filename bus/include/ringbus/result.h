// Slow-path results (open, create, config): a value or an Error whose message
// names the file, topic or field at fault. Hot-path calls return small status
// enums instead (see record.h); nothing in ringbus throws across its API.
#pragma once

#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace ringbus {

enum class Errc {
  invalid_argument = 1,  // a bad name, size or option
  not_found,             // unknown topic or instance
  already_exists,        // topic name taken, instance owned by another broker
  version_mismatch,      // a file of another layout version
  corrupt,               // a file that is truncated or fails its checks
  io_error,              // the operating system refused (errno in the message)
  deleted,               // the topic was deleted while open
  busy,                  // refused while in use (e.g. a group with live members)
};

const char* to_string(Errc e) noexcept;

struct Error {
  Errc code;
  std::string message;  // complete sentence, names what is wrong
};

// A value or an Error. [[nodiscard]] so an ignored failure is a compile error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}        // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{};
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace ringbus
