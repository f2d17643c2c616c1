#include "web/admin_connect.hpp"

#include <algorithm>
#include <ctime>

#include "index/util/iso_date.hpp"
#include "web/app.hpp"
#include "web/auth.hpp"
#include "web/html.hpp"

namespace mv::web {
namespace {

namespace oauth = ingest::oauth;

constexpr std::size_t k_pending_per_session = 8;
constexpr std::size_t k_pending_max = 1024;

Response admin_html(int status, std::string body, const std::string& form_action) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.header("Content-Type", "text/html; charset=utf-8");
    r.header("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
                                        "base-uri 'none'; form-action " + form_action);
    r.header("X-Frame-Options", "DENY");
    r.header("X-Content-Type-Options", "nosniff");
    r.header("Referrer-Policy", "no-referrer");
    r.header("Cache-Control", "no-store");
    return r;
}

Response see_other(const std::string& location) {
    Response r;
    r.status = 303;
    r.header("Location", location);
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.header("Referrer-Policy", "no-referrer");
    r.header("Cache-Control", "no-store");
    r.body = "see other\n";
    return r;
}

// scheme://host[:port] of a URL, or "" when it has none.
std::string origin_of(const std::string& url) {
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return {};
    auto end = url.find_first_of("/?#", scheme + 3);
    std::string o = url.substr(0, end);
    for (char c : o)
        if (c == ' ' || c == ';' || c == ',' || c == '\'' || c == '"') return {};
    return o;
}

std::string trim_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

}  // namespace

AdminConnect::AdminConnect(std::filesystem::path archive_dir, std::string base_url, ConnectConfig config)
    : archive_dir_(std::move(archive_dir)), base_url_(trim_slash(std::move(base_url))), config_(std::move(config)) {
    if (!config_.transport) config_.transport = oauth::default_transport();
}

std::string AdminConnect::redirect_uri() const { return base_url_ + "/oauth/callback"; }

std::size_t AdminConnect::pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
}

std::vector<AdminConnect::Account> AdminConnect::accounts() const {
    std::vector<Account> out;
    for (const auto& s : config_.sources) {
        if (s.get("auth") != "xoauth2") continue;
        out.push_back({&s, s.name, s.type, oauth::oauth_mode(s)});
    }
    // [smtp] as `connect smtp` names it (unless a [[source]] is called smtp).
    if (config_.smtp && config_.smtp->get("auth") == "xoauth2" &&
        std::none_of(out.begin(), out.end(), [](const Account& a) { return a.name == "smtp"; }))
        out.push_back({&*config_.smtp, "smtp", "smtp", oauth::oauth_mode(*config_.smtp)});
    return out;
}

std::optional<AdminConnect::Account> AdminConnect::account(const std::string& name) const {
    for (auto& a : accounts())
        if (a.name == name) return a;
    return std::nullopt;
}

std::string AdminConnect::form_action_csp() const {
    // The Connect button's POST answers with a redirect to the identity platform; browsers
    // check form-action on that redirect too, so the platforms' origins are allowed.
    std::vector<std::string> origins = {"'self'"};
    for (const auto& a : accounts()) {
        std::string o = origin_of(a.config->get("authority_url", oauth::k_default_authority));
        if (!o.empty() && std::find(origins.begin(), origins.end(), o) == origins.end()) origins.push_back(o);
    }
    std::string s;
    for (const auto& o : origins) s += (s.empty() ? "" : " ") + o;
    return s;
}

std::optional<Response> AdminConnect::handle(const Request& req, const Who& who, const AuditFn& audit) {
    const auto& seg = req.segments;
    const bool get = req.method == "GET" || req.method == "HEAD";
    const bool post = req.method == "POST";
    if (seg.size() == 2 && seg[0] == "admin" && seg[1] == "sources" && get) return sources_page(req, who);
    if (seg.size() == 4 && seg[0] == "admin" && seg[1] == "sources" && seg[3] == "connect" && post)
        return connect_post(req, who, seg[2], audit);
    // GET only: a HEAD (a link checker, a prefetch) must not spend the state.
    if (seg.size() == 2 && seg[0] == "oauth" && seg[1] == "callback" && req.method == "GET") return callback(req, who, audit);
    return std::nullopt;
}

Response AdminConnect::sources_page(const Request& req, const Who& who) {
    PageFrame f{"Sources — mailvault", who.user, who.csrf, "", "newest"};
    std::string m = "<h1>Sources: connect accounts</h1>";
    const std::string connected = req.arg("connected");
    if (!connected.empty() && account(connected))
        m += "<p class=\"notice\" id=\"connected-notice\">Source " + esc(connected) + " is connected.</p>";
    m += "<p>Sources with <code>auth = \"xoauth2\"</code> sign in to Exchange Online with the account connected here. "
         "Add this redirect URL (platform \"Web\") to the app registration:</p>"
         "<p><code id=\"redirect-url\">" + esc(redirect_uri()) + "</code></p>";
    auto list = accounts();
    if (list.empty()) {
        m += "<p id=\"no-sources\">No source uses <code>auth = \"xoauth2\"</code>.</p>";
        return admin_html(200, page(f, m), form_action_csp());
    }
    oauth::TokenStore store(archive_dir_);
    m += "<table id=\"oauth-sources\"><thead><tr><th>Source</th><th>Type</th><th>Connected account</th><th></th></tr></thead><tbody>";
    for (const auto& a : list) {
        m += "<tr class=\"oauth-source\" data-source=\"" + esc(a.name) + "\"><td>" + esc(a.name) + "</td><td>" + esc(a.protocol) + "</td>";
        if (a.mode == oauth::OAuthMode::app_only) {
            m += "<td class=\"account\">app-only (client credentials): no sign-in</td><td></td></tr>";
            continue;
        }
        if (a.mode == oauth::OAuthMode::static_token) {
            m += "<td class=\"account\">token from the configuration: no sign-in</td><td></td></tr>";
            continue;
        }
        if (a.protocol != "imap" && a.protocol != "pop3" && a.protocol != "smtp") {
            m += "<td class=\"account\">" + esc(a.protocol) + " sources need no sign-in</td><td></td></tr>";
            continue;
        }
        auto grant = store.load(a.name);
        if (!grant) {
            m += "<td class=\"account error\">the stored sign-in cannot be read</td>";
        } else if (!*grant) {
            m += "<td class=\"account not-connected\">not connected</td>";
        } else {
            const auto& g = **grant;
            std::string who_text = g.account.empty() ? "(account name not known)" : g.account;
            m += "<td class=\"account connected\">connected account: <span class=\"account-name\">" + esc(who_text) + "</span>";
            if (g.obtained > 0) m += " <span class=\"since\">since " + esc(index::iso_date(g.obtained).substr(0, 10)) + "</span>";
            m += "</td>";
        }
        m += "<td><form class=\"connect-form\" method=\"post\" action=\"/admin/sources/" + esc(url_component(a.name)) +
             "/connect\"><input type=\"hidden\" name=\"csrf\" value=\"" + esc(who.csrf) +
             "\"><button type=\"submit\">Connect account</button></form></td></tr>";
    }
    m += "</tbody></table>";
    return admin_html(200, page(f, m), form_action_csp());
}

Response AdminConnect::connect_post(const Request& req, const Who& who, const std::string& name, const AuditFn& audit) {
    PageFrame f{"Connect account — mailvault", who.user, who.csrf, "", "newest"};
    if (who.csrf.empty() || !equal_constant_time(req.field("csrf"), who.csrf)) {
        audit("connect_refused", {{"source", name}, {"reason", "csrf"}});
        return admin_html(403, page(f, "<h1>Refused</h1><p class=\"error\">The form has expired or was not sent from this site. "
                                       "Go back to <a href=\"/admin/sources\">Sources</a> and try again.</p>"),
                          "'self'");
    }
    auto a = account(name);
    if (!a || a->mode != oauth::OAuthMode::delegated || (a->protocol != "imap" && a->protocol != "pop3" && a->protocol != "smtp"))
        return admin_html(404, page({"Not found"}, "<h1>Not found</h1><p>There is nothing here.</p>"), "'self'");
    auto app = oauth::read_delegated_app(*a->config, a->protocol);
    if (!app)
        return admin_html(400, page(f, "<h1>Cannot connect " + esc(name) + "</h1><p class=\"error\" id=\"connect-error\">" +
                                           esc(app.error().message) + "</p><p><a href=\"/admin/sources\">Back to Sources</a></p>"),
                          "'self'");
    auto pkce = oauth::make_pkce();
    std::string state = oauth::random_state();
    const std::string session_hash = sha256_hex(who.session);
    {
        std::lock_guard lock(mu_);
        const auto now = std::chrono::steady_clock::now();
        // Expired ones go; a session keeps its newest few; the whole map stays bounded.
        std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> mine;
        for (auto it = pending_.begin(); it != pending_.end();) {
            if (it->second.expires <= now) {
                it = pending_.erase(it);
                continue;
            }
            if (it->second.session_hash == session_hash) mine.emplace_back(it->second.expires, it->first);
            ++it;
        }
        std::sort(mine.begin(), mine.end());
        for (std::size_t i = 0; i + k_pending_per_session <= mine.size(); ++i) pending_.erase(mine[i].second);
        if (pending_.size() >= k_pending_max)
            return admin_html(503, page(f, "<h1>Busy</h1><p class=\"error\">Too many sign-ins are in progress; try again in a few minutes.</p>"),
                              "'self'");
        pending_[state] = Pending{session_hash, name, pkce.verifier, now + config_.pending_ttl};
    }
    audit("connect_start", {{"source", name}});
    return see_other(oauth::authorize_url(*app, redirect_uri(), state, pkce));
}

std::optional<AdminConnect::Pending> AdminConnect::take(const std::string& state, const std::string& session_hash) {
    std::lock_guard lock(mu_);
    auto it = pending_.find(state);
    if (it == pending_.end() || !equal_constant_time(it->second.session_hash, session_hash)) return std::nullopt;
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.expires <= std::chrono::steady_clock::now()) return std::nullopt;
    return p;
}

Response AdminConnect::callback(const Request& req, const Who& who, const AuditFn& audit) {
    PageFrame f{"Connect account — mailvault", who.user, who.csrf, "", "newest"};
    const std::string back = "<p><a href=\"/admin/sources\">Back to Sources</a></p>";
    auto pending = take(req.arg("state"), sha256_hex(who.session));
    if (!pending) {
        audit("connect_refused", {{"reason", "state"}});
        return admin_html(400, page(f, "<h1>Sign-in not accepted</h1><p class=\"error\" id=\"callback-error\">This sign-in answer does "
                                       "not belong to a sign-in started in this session (unknown, expired or already used state). "
                                       "Nothing was stored. Start again with the Connect account button.</p>" + back),
                          "'self'");
    }
    const std::string& name = pending->source;
    if (!req.arg("error").empty()) {
        std::string what = req.arg("error");
        if (!req.arg("error_description").empty()) what += ": " + req.arg("error_description");
        if (what.size() > 2000) what = what.substr(0, 2000) + "…";
        audit("connect_failed", {{"source", name}, {"error", req.arg("error")}});
        return admin_html(400, page(f, "<h1>Sign-in refused</h1><p class=\"error\" id=\"callback-error\">The identity platform refused "
                                       "the sign-in for source " + esc(name) + ": " + esc(what) + "</p><p>Nothing was stored.</p>" + back),
                          "'self'");
    }
    auto a = account(name);
    Result<oauth::DelegatedApp> app = a ? oauth::read_delegated_app(*a->config, a->protocol)
                                        : Result<oauth::DelegatedApp>(fail(Error::Kind::usage, "source '" + name + "' is no longer configured"));
    if (!app || req.arg("code").empty()) {
        std::string why = !app ? app.error().message : "the answer has no authorization code";
        audit("connect_failed", {{"source", name}, {"error", why}});
        return admin_html(400, page(f, "<h1>Sign-in not completed</h1><p class=\"error\" id=\"callback-error\">" + esc(why) +
                                           "</p><p>Nothing was stored.</p>" + back),
                          "'self'");
    }
    auto tokens = oauth::redeem_authorization_code(*app, req.arg("code"), redirect_uri(), pending->verifier, config_.transport);
    if (!tokens) {
        audit("connect_failed", {{"source", name}, {"error", tokens.error().message}});
        return admin_html(502, page(f, "<h1>Sign-in not completed</h1><p class=\"error\" id=\"callback-error\">" +
                                           esc(tokens.error().message) + "</p><p>Nothing was stored.</p>" + back),
                          "'self'");
    }
    auto grant = oauth::store_sign_in(*app, oauth::TokenStore(archive_dir_), *tokens);
    if (!grant) {
        audit("connect_failed", {{"source", name}, {"error", grant.error().message}});
        return admin_html(500, page(f, "<h1>Sign-in not stored</h1><p class=\"error\" id=\"callback-error\">" +
                                           esc(grant.error().message) + "</p>" + back),
                          "'self'");
    }
    audit("connect", {{"source", name}, {"account", grant->account}});
    return see_other("/admin/sources?connected=" + url_component(name));
}

// ---- the hook in App::handle

Response App::admin_route(const Request& req) {
    const auto& seg = req.segments;
    auto id = session_of(req);
    if (!id || id->user.role != Role::admin || !connect_) {
        // The platform's redirect is a cross-site navigation: a SameSite=Strict session cookie
        // is not sent with it. One same-site hop (this page) brings it along.
        if (seg.size() == 2 && seg[0] == "oauth" && seg[1] == "callback" && (req.method == "GET" || req.method == "HEAD") &&
            req.cookie(cookie_name("mv_session")).empty() && req.arg("hop").empty() && !req.arg("state").empty()) {
            std::string qs = "?hop=1";
            for (const auto& [k, v] : req.query)
                if (k == "code" || k == "state" || k == "error" || k == "error_description")
                    qs += "&" + url_component(k) + "=" + url_component(v);
            std::string url = "/oauth/callback" + qs;
            return admin_html(200, page({"Signing in"}, "<meta http-equiv=\"refresh\" content=\"0;url=" + esc(url) +
                                                          "\"><h1>Signing in…</h1><p><a id=\"continue\" href=\"" + esc(url) +
                                                          "\">Continue</a></p>"),
                              "'self'");
        }
        return not_found();
    }
    Identity me = *id;
    auto r = connect_->handle(req, {me.user.name, me.csrf, me.token},
                              [&](const std::string& action, const nlohmann::ordered_json& fields) {
                                  return audit(action, me.user.name, req, fields);
                              });
    return r ? std::move(*r) : not_found();
}

}  // namespace mv::web
