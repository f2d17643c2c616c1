#pragma once
// The web application of `serve`: routes of DESIGN.md's web contract over one archive.
// Every docno route goes through App::visible_docno (the access rule of query/access.hpp),
// every search through query::search_visible / query::facets with the same rule.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "index/archive.hpp"
#include "query/links.hpp"
#include "query/access.hpp"
#include "query/parser.hpp"
#include "web/admin_connect.hpp"
#include "web/audit.hpp"
#include "web/auth.hpp"
#include "web/http.hpp"
#include "web/tokens.hpp"

namespace mv::web {

struct AppConfig {
    std::filesystem::path archive_dir;
    query::LinkConfig links;
    std::chrono::seconds session_idle{1800};
    std::chrono::seconds session_max{12 * 3600};
    bool tls = false;  // cookies get Secure and the __Host- prefix
    LoginThrottle::Options throttle;
    ConnectConfig connect;  // the admin "Connect account" page (web/admin_connect.hpp)
    std::size_t result_cache = 64;  // search results kept per worker thread (query/result_cache.hpp); 0: none
    std::size_t block_cache = 8u << 20;  // bytes of index blocks kept per worker thread (query/block_cache.hpp); 0: none
};

class App {
  public:
    static Result<std::unique_ptr<App>> create(const AppConfig& config, std::unique_ptr<Authenticator> auth);
    ~App();
    // Thread-safe; called on the HTTP worker threads.
    Response handle(const Request& req);

  private:
    struct Identity {
        User user;
        std::string csrf;   // session's CSRF token; empty for API tokens
        std::string token;  // session cookie value
    };
    App() = default;
    const Xapian::Database& db(bool fresh = false);
    // This thread's database in the state the last db() left it (db() if it has none): what
    // an access check of this request just read, without a second reopen before the read.
    const Xapian::Database& db_as_checked();
    // search_visible through this thread's result cache (same answer as a new search).
    Result<query::SearchResult> search(const std::string& user, const std::string& text,
                                       const query::SearchOptions& options, const query::AccessRule& rule);
    std::optional<Identity> session_of(const Request& req);
    std::optional<Identity> api_identity(const Request& req);
    // Appends to the audit log; false (and a line on stderr) if it cannot.
    bool audit(const std::string& action, const std::string& user, const Request& req,
               const nlohmann::ordered_json& fields = nlohmann::ordered_json::object());
    // The docno of a path segment if it names a message `user` may see; nullopt otherwise
    // (missing, malformed and forbidden alike).
    std::optional<std::uint64_t> visible_docno(const User& user, const std::string& segment);
    // The original of a visible docno, its location read through this thread's database as
    // the access check left it (no database opened for it); Archive::read_original's own path
    // when that fails.
    Result<std::string> original(std::uint64_t docno);

    Response login_form(const Request& req, const std::string& error, int status);
    Response login_post(const Request& req);
    Response logout_post(const Request& req);
    Response search_page(const Request& req, const Identity& id);
    Response message_route(const Request& req, const Identity& id);
    Response api_route(const Request& req, const Identity& id);
    Response static_route(const Request& req);
    Response admin_route(const Request& req);  // /admin/*, /oauth/callback (web/admin_connect.cpp)
    Response not_found() const;
    Response audit_unavailable(bool json) const;
    std::string cookie_name(const char* base) const;

    AppConfig config_;
    std::unique_ptr<index::Archive> archive_;
    std::unique_ptr<query::LinkBuilder> links_;
    query::ParseOptions parse_;
    std::unique_ptr<Authenticator> auth_;
    std::unique_ptr<SessionStore> sessions_;
    std::unique_ptr<LoginThrottle> throttle_;
    std::unique_ptr<TokenIndex> tokens_;
    std::unique_ptr<AuditLog> audit_;
    std::unique_ptr<AdminConnect> connect_;
    std::string login_key_;  // HMAC key of the login form's CSRF token
    std::uint64_t generation_ = 0;  // tells this App's per-thread databases from another's
};

// "next" after login: a relative path ("/..." but not "//" or "/\"), else "/".
std::string safe_next(std::string_view next);

}  // namespace mv::web
