#pragma once
// The admin "Connect account" page of `serve` (issue 12): the sources that sign in with
// auth = "xoauth2" (and [smtp]), their connected account, and the OAuth 2.0 authorization
// code flow with PKCE and state: POST /admin/sources/{name}/connect, GET /oauth/callback.
// The PKCE verifier and state stay in memory, bound to the admin's session, single use,
// short-lived. Tokens are never shown, logged or put in an error.
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/config/config.hpp"
#include "ingest/oauth/delegated.hpp"
#include "web/http.hpp"

namespace mv::web {

struct ConnectConfig {
    std::vector<SourceConfig> sources;  // all [[source]] tables; only xoauth2 ones are shown
    std::optional<SourceConfig> smtp;   // [smtp]
    ingest::oauth::TokenTransport transport;  // empty: the default HTTP client
    std::chrono::seconds pending_ttl{600};    // how long a started sign-in may take
};

class AdminConnect {
  public:
    AdminConnect(std::filesystem::path archive_dir, std::string base_url, ConnectConfig config);

    struct Who {
        std::string user;
        std::string csrf;     // the session's CSRF token
        std::string session;  // the session cookie value (only its hash is kept)
    };
    using AuditFn = std::function<bool(const std::string& action, const nlohmann::ordered_json& fields)>;

    // An /admin/... or /oauth/... request of an admin. nullopt: no such page (the caller's 404).
    std::optional<Response> handle(const Request& req, const Who& who, const AuditFn& audit);

    // {links.base_url}/oauth/callback
    std::string redirect_uri() const;
    // Sign-ins started and not yet finished or expired (for tests).
    std::size_t pending() const;

  private:
    struct Account {
        const SourceConfig* config = nullptr;
        std::string name;      // source name, "smtp" for [smtp]
        std::string protocol;  // imap | pop3 | smtp
        ingest::oauth::OAuthMode mode = ingest::oauth::OAuthMode::delegated;
    };
    struct Pending {
        std::string session_hash;
        std::string source;
        std::string verifier;
        std::chrono::steady_clock::time_point expires;
    };
    std::vector<Account> accounts() const;
    std::optional<Account> account(const std::string& name) const;
    Response sources_page(const Request& req, const Who& who);
    Response connect_post(const Request& req, const Who& who, const std::string& name, const AuditFn& audit);
    Response callback(const Request& req, const Who& who, const AuditFn& audit);
    // The pending sign-in of `state` if it belongs to this session and has not expired;
    // removed either way when it belongs to this session (single use).
    std::optional<Pending> take(const std::string& state, const std::string& session_hash);
    std::string form_action_csp() const;

    std::filesystem::path archive_dir_;
    std::string base_url_;
    ConnectConfig config_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Pending> pending_;  // by state
};

}  // namespace mv::web
