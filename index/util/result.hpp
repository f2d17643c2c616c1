#pragma once
// Result<T>: a small std::expected lookalike for foreseeable failures.
#include <string>
#include <utility>
#include <variant>

namespace mv {

// What went wrong, in one line a user can act on; `code` groups failures for exit codes.
struct Error {
    enum class Kind { failed, usage, unreachable, auth, locked, not_found, corrupt, io };
    Kind kind = Kind::failed;
    std::string message;
};

inline Error make_error(Error::Kind kind, std::string message) { return Error{kind, std::move(message)}; }

struct Unexpected {
    Error error;
};
inline Unexpected fail(Error::Kind kind, std::string message) { return Unexpected{Error{kind, std::move(message)}}; }
inline Unexpected fail(Error e) { return Unexpected{std::move(e)}; }

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Unexpected u) : v_(std::move(u.error)) {}
    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Unexpected u) : ok_(false), error_(std::move(u.error)) {}
    bool has_value() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

  private:
    bool ok_ = true;
    Error error_;
};

inline Result<void> ok() { return {}; }

}  // namespace mv
