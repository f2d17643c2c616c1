#pragma once
// Users, passwords (Argon2id), sessions, CSRF tokens and login throttling of `serve`.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/config/config.hpp"
#include "index/util/result.hpp"

namespace mv::web {

enum class Role { user, auditor, admin };

struct User {
    std::string name;
    std::vector<std::string> mailboxes;  // globs
    Role role = Role::user;
};

// Libsodium must be initialised once before any of the below (sodium_init is idempotent).
void init_crypto();

// Argon2id string ($argon2id$v=19$...), as `mailvault passwd` prints.
Result<std::string> hash_password(const std::string& password);
// `n` random bytes as lower-case hex.
std::string random_hex(std::size_t n);
std::string sha256_hex(std::string_view s);
bool equal_constant_time(std::string_view a, std::string_view b);

// Where a login is checked. Local users from the config now; LDAP or an IMAP login later
// implement the same call.
class Authenticator {
  public:
    virtual ~Authenticator() = default;
    // The user for these credentials, or nullopt. Takes the same time whether the user exists or not.
    virtual std::optional<User> authenticate(const std::string& name, const std::string& password) const = 0;
    // A user by name (for API tokens): nullopt if unknown.
    virtual std::optional<User> find(const std::string& name) const = 0;
};

class LocalAuthenticator : public Authenticator {
  public:
    explicit LocalAuthenticator(const std::vector<UserConfig>& users);
    std::optional<User> authenticate(const std::string& name, const std::string& password) const override;
    std::optional<User> find(const std::string& name) const override;

  private:
    struct Entry {
        User user;
        std::string hash;
    };
    std::map<std::string, Entry> users_;
    std::string dummy_hash_;  // verified for unknown users: same cost as a wrong password
};

struct Session {
    User user;
    std::string csrf;
    std::chrono::steady_clock::time_point created, last_used;
};

// Server-side sessions keyed by the SHA-256 of the cookie token (the token itself is not kept).
class SessionStore {
  public:
    SessionStore(std::chrono::seconds idle, std::chrono::seconds max) : idle_(idle), max_(max) {}
    // A new session; returns the cookie token.
    std::string create(const User& user);
    // The session of `token` (touching it), or nullopt if unknown or expired (then removed).
    std::optional<Session> get(const std::string& token);
    void end(const std::string& token);

  private:
    std::chrono::seconds idle_, max_;
    std::mutex mu_;
    std::unordered_map<std::string, Session> sessions_;
};

// Failed logins per user name and per client address: after `free_failures` failures within
// `window`, further attempts wait (are refused) for a delay doubling per failure, up to `max_delay`.
class LoginThrottle {
  public:
    struct Options {
        unsigned free_failures = 5;
        std::chrono::seconds window{900};
        std::chrono::seconds base_delay{2};
        std::chrono::seconds max_delay{300};
    };
    LoginThrottle() : LoginThrottle(Options{}) {}
    explicit LoginThrottle(Options o) : o_(o) {}
    // Seconds to wait before another attempt is allowed for (user, address); 0 = allowed now.
    long blocked_for(const std::string& user, const std::string& address);
    void failed(const std::string& user, const std::string& address);
    void succeeded(const std::string& user);

  private:
    struct Count {
        unsigned failures = 0;
        std::chrono::steady_clock::time_point first, last;
    };
    long wait_of(Count& c, std::chrono::steady_clock::time_point now) const;
    Options o_;
    std::mutex mu_;
    std::unordered_map<std::string, Count> by_user_, by_addr_;
};

// "30m", "12h", "45s", "2d", plain seconds.
Result<std::chrono::seconds> parse_duration(std::string_view s);

}  // namespace mv::web
