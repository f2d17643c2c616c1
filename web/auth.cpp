#include "web/auth.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace mv::web {

void init_crypto() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot be initialised");
}

Result<std::string> hash_password(const std::string& password) {
    init_crypto();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return fail(Error::Kind::failed, "password hashing ran out of memory");
    return std::string(out);
}

std::string random_hex(std::size_t n) {
    std::string raw(n, '\0');
    randombytes_buf(raw.data(), n);
    std::string hex(2 * n + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(raw.data()), n);
    hex.pop_back();
    return hex;
}

std::string sha256_hex(std::string_view s) {
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(s.data()), s.size());
    std::string hex(2 * sizeof d + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), d, sizeof d);
    hex.pop_back();
    return hex;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
Role role_of(const std::string& r) {
    if (r == "auditor") return Role::auditor;
    if (r == "admin") return Role::admin;
    return Role::user;
}
}  // namespace

LocalAuthenticator::LocalAuthenticator(const std::vector<UserConfig>& users) {
    init_crypto();
    for (const auto& u : users) users_[u.name] = Entry{User{u.name, u.mailboxes, role_of(u.role)}, u.password_hash};
    auto h = hash_password(random_hex(16));
    dummy_hash_ = h ? *h : std::string{};
}

std::optional<User> LocalAuthenticator::authenticate(const std::string& name, const std::string& password) const {
    auto it = users_.find(name);
    // An unknown user (or one without a hash) verifies against the dummy hash: same work.
    const std::string& hash = (it != users_.end() && !it->second.hash.empty()) ? it->second.hash : dummy_hash_;
    bool ok = crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
    if (!ok || it == users_.end() || it->second.hash.empty()) return std::nullopt;
    return it->second.user;
}

std::optional<User> LocalAuthenticator::find(const std::string& name) const {
    auto it = users_.find(name);
    if (it == users_.end()) return std::nullopt;
    return it->second.user;
}

std::string SessionStore::create(const User& user) {
    std::string token = random_hex(32);
    Session s;
    s.user = user;
    s.csrf = random_hex(32);
    s.created = s.last_used = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    // Expired sessions go when a new one is made, so the map stays small.
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (s.created - it->second.last_used > idle_ || s.created - it->second.created > max_) it = sessions_.erase(it);
        else ++it;
    }
    sessions_[sha256_hex(token)] = std::move(s);
    return token;
}

std::optional<Session> SessionStore::get(const std::string& token) {
    if (token.empty()) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = sessions_.find(sha256_hex(token));
    if (it == sessions_.end()) return std::nullopt;
    if (now - it->second.last_used > idle_ || now - it->second.created > max_) {
        sessions_.erase(it);
        return std::nullopt;
    }
    it->second.last_used = now;
    return it->second;
}

void SessionStore::end(const std::string& token) {
    std::lock_guard lock(mu_);
    sessions_.erase(sha256_hex(token));
}

long LoginThrottle::wait_of(Count& c, std::chrono::steady_clock::time_point now) const {
    if (now - c.first > o_.window) c = Count{};
    if (c.failures < o_.free_failures) return 0;
    auto delay = o_.base_delay * (1L << std::min<unsigned>(c.failures - o_.free_failures, 20));
    delay = std::min<std::chrono::seconds>(delay, o_.max_delay);
    auto until = c.last + delay;
    if (until <= now) return 0;
    return std::max<long>(1, std::chrono::duration_cast<std::chrono::seconds>(until - now).count());
}

long LoginThrottle::blocked_for(const std::string& user, const std::string& address) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    long w = 0;
    if (auto it = by_user_.find(user); it != by_user_.end()) w = std::max(w, wait_of(it->second, now));
    if (auto it = by_addr_.find(address); it != by_addr_.end()) w = std::max(w, wait_of(it->second, now));
    return w;
}

void LoginThrottle::failed(const std::string& user, const std::string& address) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (by_user_.size() > 100000) by_user_.clear();  // bound memory under a flood of names
    if (by_addr_.size() > 100000) by_addr_.clear();
    for (Count* c : {&by_user_[user], &by_addr_[address]}) {
        if (c->failures == 0 || now - c->first > o_.window) *c = Count{0, now, now};
        ++c->failures;
        c->last = now;
    }
}

void LoginThrottle::succeeded(const std::string& user) {
    std::lock_guard lock(mu_);
    by_user_.erase(user);
}

Result<std::chrono::seconds> parse_duration(std::string_view s) {
    if (s.empty()) return fail(Error::Kind::usage, "empty duration");
    std::size_t i = 0;
    long long n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        n = n * 10 + (s[i] - '0');
        if (n > 100000000) return fail(Error::Kind::usage, "duration \"" + std::string(s) + "\" is too long");
        ++i;
    }
    if (i == 0) return fail(Error::Kind::usage, "duration \"" + std::string(s) + "\": use e.g. 30m, 12h, 45s");
    std::string_view unit = s.substr(i);
    long long mult = 0;
    if (unit.empty() || unit == "s") mult = 1;
    else if (unit == "m") mult = 60;
    else if (unit == "h") mult = 3600;
    else if (unit == "d") mult = 86400;
    else return fail(Error::Kind::usage, "duration \"" + std::string(s) + "\": use e.g. 30m, 12h, 45s");
    return std::chrono::seconds(n * mult);
}

}  // namespace mv::web
