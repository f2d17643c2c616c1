#include "web/app.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "index/util/iso_date.hpp"
#include "index/util/json_text.hpp"
#include "query/access.hpp"
#include "query/facets.hpp"
#include "query/block_cache.hpp"
#include "query/result_cache.hpp"
#include "query/html_part.hpp"
#include "query/inspect.hpp"
#include "query/search.hpp"
#include "web/assets.hpp"
#include "web/attachments_zip.hpp"
#include "web/html.hpp"
#include "web/sanitize.hpp"

namespace mv::web {
namespace {

constexpr const char* k_app_csp = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
                                  "base-uri 'none'; form-action 'self'";
constexpr const char* k_sandbox_csp = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                                      "form-action 'none'; base-uri 'none'";
constexpr std::uint64_t k_page_size = 50;

std::atomic<std::uint64_t> g_generation{0};

Response& secure(Response& r) {
    r.header("X-Content-Type-Options", "nosniff");
    r.header("Referrer-Policy", "no-referrer");
    r.header("Cache-Control", "no-store");
    return r;
}

Response html_response(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.header("Content-Type", "text/html; charset=utf-8");
    r.header("Content-Security-Policy", k_app_csp);
    r.header("X-Frame-Options", "DENY");
    return secure(r);
}

Response json_response(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
    r.header("Content-Type", "application/json; charset=utf-8");
    r.header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
    return secure(r);
}

Response json_error(int status, const std::string& message) {
    nlohmann::ordered_json j;
    j["error"] = message;
    return json_response(status, index::json_text(j));
}

Response redirect(const std::string& location) {
    Response r;
    r.status = 303;
    r.header("Location", location);
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = "see " + location + "\n";
    return secure(r);
}

Response download(std::string bytes, const std::string& filename, const std::string& type) {
    Response r;
    r.body = std::move(bytes);
    r.header("Content-Type", type);
    // ASCII fallback name plus the RFC 5987 UTF-8 name; never rendered in the app's origin.
    std::string ascii;
    for (unsigned char c : filename)
        ascii += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '/' && c != ';') ? static_cast<char>(c) : '_';
    if (ascii.empty()) ascii = "attachment";
    r.header("Content-Disposition", "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + url_component(filename));
    r.header("Content-Security-Policy", "sandbox; default-src 'none'");
    return secure(r);
}

std::optional<std::uint64_t> parse_docno(const std::string& s) {
    if (s.empty() || s.size() > 18 || s[0] == '0') return std::nullopt;
    for (char c : s)
        if (c < '0' || c > '9') return std::nullopt;
    return std::stoull(s);
}

std::optional<std::uint64_t> parse_count(const std::string& s, std::uint64_t fallback, std::uint64_t max) {
    if (s.empty()) return fallback;
    if (s.size() > 9) return std::nullopt;
    for (char c : s)
        if (c < '0' || c > '9') return std::nullopt;
    return std::min<std::uint64_t>(std::stoull(s), max);
}

std::string hmac_hex(const std::string& key, const std::string& msg) {
    unsigned char out[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    crypto_auth_hmacsha256_final(&st, out);
    std::string hex(2 * sizeof out + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), out, sizeof out);
    hex.pop_back();
    return hex;
}

std::string join(const std::vector<std::string>& xs, const char* sep = ", ") {
    std::string s;
    for (const auto& x : xs) s += (s.empty() ? "" : sep) + x;
    return s;
}

// A date for people: the archive's time zone (TZ; `mailvault` puts [archive] timezone there,
// as for the CLI) with its offset shown, in a <time> element that carries the UTC instant.
std::string time_html(std::int64_t t, query::DateStyle style) {
    return "<time datetime=\"" + index::iso_date(t) + "\">" + esc(query::local_date(t, style)) + "</time>";
}

}  // namespace

std::string safe_next(std::string_view next) {
    if (next.size() < 1 || next.size() > 2000 || next[0] != '/') return "/";
    if (next.size() >= 2 && (next[1] == '/' || next[1] == '\\')) return "/";
    for (unsigned char c : next)
        if (c < 0x20 || c == 0x7f || c == '\\') return "/";
    return std::string(next);
}

Result<std::unique_ptr<App>> App::create(const AppConfig& config, std::unique_ptr<Authenticator> auth) {
    init_crypto();
    std::unique_ptr<App> app(new App);
    app->config_ = config;
    auto archive = index::Archive::open(config.archive_dir, index::OpenMode::read);
    if (!archive) return fail(archive.error());
    app->archive_ = std::move(*archive);
    app->links_ = std::make_unique<query::LinkBuilder>(config.links);
    app->parse_.stemmer = app->archive_->stemmer();
    app->parse_.zone = query::DateZone::local;  // date:2023-05-01 is the same day as on the CLI
    app->parse_.dates_in_memory = true;         // date: and newest/oldest windows: query/date_order.hpp
    app->auth_ = std::move(auth);
    app->sessions_ = std::make_unique<SessionStore>(config.session_idle, config.session_max);
    app->throttle_ = std::make_unique<LoginThrottle>(config.throttle);
    app->tokens_ = std::make_unique<TokenIndex>(config.archive_dir);
    auto log = AuditLog::open(config.archive_dir);
    if (!log) return fail(log.error());
    app->audit_ = std::move(*log);
    app->connect_ = std::make_unique<AdminConnect>(config.archive_dir, config.links.base_url, config.connect);
    app->login_key_ = random_hex(32);
    app->generation_ = ++g_generation;
    return app;
}

App::~App() = default;

namespace {
struct PerThreadDb {
    std::uint64_t generation = 0;
    std::optional<Xapian::Database> db;
    query::ResultCache results;  // valid for this state of `db` only
};
thread_local PerThreadDb t_db;
}  // namespace

const Xapian::Database& App::db(bool fresh) {
    // One database per worker thread, reopened per request: a commit of sync or import
    // shows up at the next request, and no request opens the shards anew. `fresh` opens
    // it again (after a compaction replaced the shards under it).
    // The thread's index blocks are cached (query/block_cache.hpp); it moves to another
    // state of the index only through blocks::reopen, or after blocks::forget.
    PerThreadDb& t = t_db;
    query::blocks::enable_for_this_thread(config_.block_cache);
    if (fresh || t.generation != generation_ || !t.db) {
        query::blocks::forget();
        t.db = archive_->database();
        t.generation = generation_;
        t.results.clear();
    } else {
        try {
            // false: definitely the same state as before, so the cached results still hold.
            if (query::blocks::reopen(*t.db)) t.results.clear();
        } catch (const Xapian::Error&) {
            query::blocks::forget();
            t.db = archive_->database();
            t.results.clear();
        }
    }
    return *t.db;
}

Result<query::SearchResult> App::search(const std::string& user, const std::string& text,
                                        const query::SearchOptions& options, const query::AccessRule& rule) {
    const Xapian::Database& database = db();  // first: a new state of the index empties the cache
    PerThreadDb& t = t_db;
    t.results.set_capacity(config_.result_cache);
    const std::string key = query::result_key(user, text, options);
    if (auto hit = t.results.find(key)) return std::move(*hit);
    auto res = query::search_visible(*archive_, database, text, options, *links_, rule);
    if (!res && res.error().kind == Error::Kind::io)  // the index changed under the search: once more
        res = query::search_visible(*archive_, db(true), text, options, *links_, rule);
    if (res) t.results.put(key, *res);
    return res;
}

bool App::audit(const std::string& action, const std::string& user, const Request& req,
                const nlohmann::ordered_json& fields) {
    auto r = audit_->append(action, user, req.client, fields);
    // Not shown to the client; the operator sees it in serve's log.
    if (!r) std::fprintf(stderr, "serve: %s\n", r.error().message.c_str());
    return static_cast<bool>(r);
}

std::string App::cookie_name(const char* base) const {
    return config_.tls ? std::string("__Host-") + base : std::string(base);
}

std::optional<App::Identity> App::session_of(const Request& req) {
    std::string token = req.cookie(cookie_name("mv_session"));
    if (token.empty()) return std::nullopt;
    auto s = sessions_->get(token);
    if (!s) return std::nullopt;
    return Identity{s->user, s->csrf, token};
}

std::optional<App::Identity> App::api_identity(const Request& req) {
    std::string auth = req.header("authorization");
    if (!auth.empty()) {
        if (auth.rfind("Bearer ", 0) != 0) return std::nullopt;
        auto name = tokens_->user_of(auth.substr(7));
        if (!name) return std::nullopt;
        auto user = auth_->find(*name);
        if (!user) return std::nullopt;
        return Identity{*user, {}, {}};
    }
    return session_of(req);
}

std::optional<std::uint64_t> App::visible_docno(const User& user, const std::string& segment) {
    auto docno = parse_docno(segment);
    if (!docno) return std::nullopt;
    query::AccessRule rule(user.mailboxes);
    try {
        if (!rule.allows(db(), *docno)) return std::nullopt;
    } catch (const Xapian::Error&) {
        return std::nullopt;
    }
    return docno;
}

const Xapian::Database& App::db_as_checked() {
    PerThreadDb& t = t_db;
    if (!t.db || t.generation != generation_) return db();
    return *t.db;
}

Result<std::string> App::original(std::uint64_t docno) {
    try {
        const Xapian::Document doc = db_as_checked().get_document(static_cast<Xapian::docid>(docno));
        return archive_->read_original(docno, doc);
    } catch (const Xapian::Error&) {
        // The index changed under the read, or a damaged shard: the archive says what is wrong.
        return archive_->read_original(docno);
    }
}

Response App::audit_unavailable(bool json) const {
    // Mail is read only when the read is on record: no audit log, no mail.
    if (json) return json_error(503, "the audit log cannot be written; try again later");
    return html_response(503, page({"Unavailable"}, "<h1>Unavailable</h1><p class=\"error\">The audit log cannot be written; try again later.</p>"));
}

Response App::not_found() const {
    // The same bytes for a missing message, another user's, a malformed number or route.
    return html_response(404, page({"Not found"}, "<h1>Not found</h1><p>There is nothing here.</p>"));
}

Response App::handle(const Request& req) {
    const auto& seg = req.segments;
    const bool get = req.method == "GET" || req.method == "HEAD";
    const bool post = req.method == "POST";
    if (!get && !post) {
        Response r = html_response(405, page({"Method not allowed"}, "<h1>Method not allowed</h1>"));
        r.header("Allow", "GET, HEAD, POST");
        return r;
    }
    if (seg.empty()) return not_found();
    if (seg[0] == "static" && seg.size() == 2 && get) return static_route(req);
    if (seg[0] == "login" && seg.size() == 1) return post ? login_post(req) : login_form(req, "", 200);
    if (seg[0] == "logout" && seg.size() == 1) {
        if (!post) return html_response(405, page({"Method not allowed"}, "<h1>Use the Log out button</h1>"));
        return logout_post(req);
    }
    if (seg[0] == "api") {
        auto id = api_identity(req);
        if (!id) {
            Response r = json_error(401, "authentication required");
            r.header("WWW-Authenticate", "Bearer");
            return r;
        }
        // A browser request from another origin never reaches the API (CSRF, data theft).
        std::string origin = req.header("origin");
        if (!origin.empty()) {
            std::string expected = std::string(req.tls ? "https://" : "http://") + req.header("host");
            if (origin != expected) return json_error(403, "cross-origin request refused");
        }
        if (!get) return json_error(405, "the API is read-only (GET)");
        return api_route(req, *id);
    }
    if (seg[0] == "admin" || seg[0] == "oauth") return admin_route(req);
    const bool known = (seg[0] == "" && seg.size() == 1) || (seg[0] == "search" && seg.size() == 1) || seg[0] == "m";
    if (!known) return not_found();
    auto id = session_of(req);
    if (!id) {
        std::string next = req.raw_path;
        if (!req.query.empty()) {
            std::string qs;
            for (const auto& [k, v] : req.query) qs += (qs.empty() ? "?" : "&") + url_component(k) + "=" + url_component(v);
            next += qs;
        }
        return redirect("/login?next=" + url_component(safe_next(next)));
    }
    if (!get) return html_response(405, page({"Method not allowed"}, "<h1>Method not allowed</h1>"));
    if (seg[0].empty()) return redirect("/search");
    if (seg[0] == "search") return search_page(req, *id);
    return message_route(req, *id);
}

Response App::static_route(const Request& req) {
    const Asset* a = find_asset(req.segments[1]);
    if (!a) return not_found();
    Response r;
    if (req.header("if-none-match") == a->etag) {
        r.status = 304;
    } else {
        r.body = std::string(a->bytes);
    }
    r.header("Content-Type", std::string(a->content_type));
    r.header("ETag", a->etag);
    r.header("Cache-Control", "no-cache");
    r.header("X-Content-Type-Options", "nosniff");
    r.header("Content-Security-Policy", k_app_csp);
    return r;
}

Response App::login_form(const Request& req, const std::string& error, int status) {
    // The form's CSRF token is bound to a random pre-login cookie (HMAC with a server key).
    std::string pre = req.cookie(cookie_name("mv_login"));
    bool fresh = pre.size() != 64;
    if (fresh) pre = random_hex(32);
    std::string next = safe_next(req.method == "POST" ? req.field("next") : req.arg("next"));
    std::string m = "<section id=\"login\"><h1>mailvault</h1>";
    if (!error.empty()) m += "<p class=\"error\">" + esc(error) + "</p>";
    m += "<form id=\"login-form\" method=\"post\" action=\"/login\">"
         "<label>User name <input name=\"username\" autocomplete=\"username\" autofocus required></label>"
         "<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>"
         "<input type=\"hidden\" name=\"csrf\" value=\"" + hmac_hex(login_key_, pre) + "\">"
         "<input type=\"hidden\" name=\"next\" value=\"" + esc(next) + "\">"
         "<button type=\"submit\">Log in</button></form></section>";
    Response r = html_response(status, page({"Log in — mailvault"}, m));
    if (fresh) {
        r.header("Set-Cookie", cookie_name("mv_login") + "=" + pre + "; Path=/; HttpOnly; SameSite=Strict" +
                                   (config_.tls ? "; Secure" : ""));
    }
    return r;
}

Response App::login_post(const Request& req) {
    const std::string pre = req.cookie(cookie_name("mv_login"));
    const std::string user = req.field("username");
    if (pre.size() != 64 || !equal_constant_time(req.field("csrf"), hmac_hex(login_key_, pre))) {
        audit("login_refused", user, req, {{"reason", "csrf"}});
        return login_form(req, "The form expired; please log in again.", 403);
    }
    if (long wait = throttle_->blocked_for(user, req.client); wait > 0) {
        audit("login_throttled", user, req, {{"retry_after", wait}});
        Response r = login_form(req, "Too many failed logins; try again in " + std::to_string(wait) + " seconds.", 429);
        r.header("Retry-After", std::to_string(wait));
        return r;
    }
    auto who = auth_->authenticate(user, req.field("password"));
    if (!who) {
        throttle_->failed(user, req.client);
        audit("login_failed", user, req);
        return login_form(req, "Wrong user name or password.", 401);
    }
    throttle_->succeeded(user);
    std::string token = sessions_->create(*who);
    audit("login", who->name, req);
    Response r = redirect(safe_next(req.field("next")));
    r.header("Set-Cookie", cookie_name("mv_session") + "=" + token + "; Path=/; HttpOnly; SameSite=Strict" +
                               (config_.tls ? "; Secure" : ""));
    return r;
}

Response App::logout_post(const Request& req) {
    auto id = session_of(req);
    if (!id) return redirect("/login");
    if (!equal_constant_time(req.field("csrf"), id->csrf)) {
        audit("logout_refused", id->user.name, req, {{"reason", "csrf"}});
        return html_response(403, page({"Refused"}, "<h1>Refused</h1><p class=\"error\">The form expired; reload the page.</p>"));
    }
    sessions_->end(id->token);
    audit("logout", id->user.name, req);
    Response r = redirect("/login");
    r.header("Set-Cookie", cookie_name("mv_session") + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" +
                               (config_.tls ? "; Secure" : ""));
    return r;
}

Response App::search_page(const Request& req, const Identity& id) {
    std::string q = req.arg("q");
    std::string sort_text = req.arg("sort").empty() ? "newest" : req.arg("sort");
    auto sort = query::parse_sort(sort_text);
    auto offset = parse_count(req.arg("offset"), 0, 1u << 30);
    PageFrame f{"Search — mailvault", id.user.name, id.csrf, q, sort ? sort_text : "newest", id.user.role == Role::admin};
    std::string m;
    if (!sort || !offset) {
        m = "<p class=\"error\" id=\"query-error\">sort must be newest, oldest or relevance; offset a number</p>";
        return html_response(400, page(f, m));
    }
    const std::string text = q.empty() ? "*" : q;
    query::AccessRule rule(id.user.mailboxes);
    query::SearchOptions so;
    so.sort = *sort;
    so.offset = *offset;
    so.limit = k_page_size;
    so.parse = parse_;
    auto res = search(id.user.name, text, so, rule);
    const auto& database = db();
    if (!audit("search", id.user.name, req, {{"query", q}, {"total", res ? res->total : 0}})) return audit_unavailable(false);
    if (!res) {
        m = "<p class=\"error\" id=\"query-error\">" + esc(res.error().message) + "</p>";
        m += "<p id=\"hit-count\" data-total=\"0\">0 messages</p><ol id=\"hits\"></ol>";
        return html_response(res.error().kind == Error::Kind::usage ? 400 : 500, page(f, m));
    }
    // Facets for the same restricted query.
    std::string aside = "<aside id=\"facets\">";
    std::optional<query::ParsedQuery> parsed;
    try {
        if (auto p = query::parse(text, database, parse_)) parsed = std::move(*p);
    } catch (const Xapian::Error&) {  // damage met while parsing: the page goes without facets
    }
    if (parsed) {
        auto fc = query::facets(database, rule.restrict(database, parsed->query), rule);
        if (fc) {
            auto group = [&](const char* name, const char* label, const std::vector<query::FacetCount>& xs) {
                if (xs.empty()) return;
                aside += std::string("<section class=\"facet\" data-facet=\"") + name + "\"><h2>" + label + "</h2><ul>";
                for (const auto& x : xs) {
                    std::string nq = query::narrow_query(q, name, x.value);
                    aside += "<li><a class=\"facet-link\" href=\"/search?q=" + url_component(nq) + "&amp;sort=" +
                             url_component(sort_text) + "\">" + esc(x.value) + " <span class=\"facet-count\">" +
                             std::to_string(x.count) + "</span></a></li>";
                }
                aside += "</ul></section>";
            };
            group("mailbox", "Mailboxes", fc->mailbox);
            group("folder", "Folders", fc->folder);
            group("year", "Years", fc->year);
            if (!fc->complete)
                aside += "<p class=\"facet-note\">Counts from the first " + std::to_string(fc->examined) + " matches.</p>";
        }
    }
    aside += "</aside>";
    // Xapian counts exactly up to 1,000 matches; beyond, the page says "about" (an exact
    // count of a common word costs more than the whole search).
    const auto total = res->total;
    m += "<p id=\"hit-count\" data-total=\"" + std::to_string(total) + "\" data-exact=\"" +
         (res->total_exact ? "true" : "false") + "\">" + (res->total_exact ? "" : "about ") + std::to_string(total) +
         (total == 1 ? " message" : " messages") + "</p>";
    m += "<div class=\"results\">";
    m += aside;
    m += "<ol id=\"hits\" start=\"" + std::to_string(*offset + 1) + "\">";
    for (const auto& h : res->hits) {
        const auto& d = h.data;
        const std::string n = std::to_string(h.docno);
        m += "<li class=\"hit\" data-docno=\"" + n + "\"><a class=\"hit-link\" href=\"/m/" + n + "\">" +
             esc(d.subject.empty() ? "(no subject)" : d.subject) + "</a>";
        m += "<span class=\"hit-date\">" + time_html(d.date, query::DateStyle::minutes_and_zone) + "</span>";
        m += "<span class=\"hit-from\">" + esc(d.from) + "</span>";
        std::string where = join(query::mailboxes_of(d));
        auto folders = query::folders_of(d);
        if (!folders.empty()) where += " / " + join(folders);
        m += "<span class=\"hit-where\">" + esc(where) + "</span>";
        m += "<span class=\"hit-size\">" + esc(human_size(d.size)) + "</span>";
        if (!d.attachments.empty())
            m += "<span class=\"hit-attachment\" title=\"" + std::to_string(d.attachments.size()) +
                 " attachment(s)\">&#128206;</span>";
        m += "</li>";
    }
    m += "</ol></div><nav class=\"paging\">";
    auto page_link = [&](const char* idattr, std::uint64_t off, const char* label) {
        m += std::string("<a id=\"") + idattr + "\" href=\"/search?q=" + url_component(q) + "&amp;sort=" +
             url_component(sort_text) + "&amp;offset=" + std::to_string(off) + "\">" + label + "</a>";
    };
    if (*offset > 0) page_link("prev-page", *offset > k_page_size ? *offset - k_page_size : 0, "&larr; Newer");
    if (*offset + res->hits.size() < total) page_link("next-page", *offset + k_page_size, "Older &rarr;");
    m += "</nav>";
    return html_response(200, page(f, m));
}

Response App::message_route(const Request& req, const Identity& id) {
    const auto& seg = req.segments;
    if (seg.size() < 2) return not_found();
    auto docno = visible_docno(id.user, seg[1]);
    const std::string route = seg.size() >= 3 ? seg[2] : "view";
    if (!docno) {
        audit("denied", id.user.name, req, {{"path", req.raw_path}});
        return not_found();
    }
    query::AccessRule rule(id.user.mailboxes);
    const std::string n = std::to_string(*docno);
    auto raw = original(*docno);
    if (!raw) return html_response(500, page({"Error"}, "<h1>The original cannot be read</h1>"));

    if (route == "raw" && seg.size() == 3) {
        if (!audit("raw", id.user.name, req, {{"docno", *docno}})) return audit_unavailable(false);
        return download(std::move(*raw), n + ".eml", "application/octet-stream");
    }
    if (route == "attachments.zip" && seg.size() == 3) {  // issue 14: web/attachments_zip.hpp
        auto hit = query::load_hit(*archive_, *docno, *links_);
        auto zip = attachments_zip(*raw, *docno, hit ? hit->data.date : 0);
        if (!zip) return not_found();
        if (!audit("attachments_zip", id.user.name, req, {{"docno", *docno}, {"files", zip->files}})) return audit_unavailable(false);
        return download(std::move(zip->bytes), n + "-attachments.zip", "application/zip");
    }
    if (route == "attachment" && seg.size() == 4) {
        auto k = parse_docno(seg[3]);
        if (!k) return not_found();
        auto atts = query::list_attachments(*raw);
        if (*k > atts.size()) return not_found();
        auto bytes = query::extract_attachment(*raw, *k);
        if (!bytes) return not_found();
        if (!audit("attachment", id.user.name, req, {{"docno", *docno}, {"n", *k}, {"filename", atts[*k - 1].filename}})) return audit_unavailable(false);
        std::string name = atts[*k - 1].filename.empty() ? n + "-" + std::to_string(*k) : atts[*k - 1].filename;
        return download(std::move(*bytes), name, "application/octet-stream");
    }
    if (route == "cid" && seg.size() == 4) {
        auto part = query::cid_part(*raw, seg[3]);
        static const std::vector<std::string> raster = {"image/png", "image/jpeg", "image/gif", "image/webp"};
        if (!part || std::find(raster.begin(), raster.end(), part->content_type) == raster.end()) return not_found();
        if (!audit("cid", id.user.name, req, {{"docno", *docno}, {"cid", seg[3]}})) return audit_unavailable(false);
        Response r;
        r.body = std::move(part->bytes);
        r.header("Content-Type", part->content_type);
        r.header("Content-Security-Policy", "sandbox; default-src 'none'");
        r.header("Cross-Origin-Resource-Policy", "same-origin");
        return secure(r);
    }
    if (route == "html" && seg.size() == 4 && seg[3] == "content") {
        auto html = query::html_body(*raw);
        if (!html) return not_found();
        if (!audit("html", id.user.name, req, {{"docno", *docno}})) return audit_unavailable(false);
        CidInliner inline_cid(*raw);  // not /m/N/cid/...: see CidInliner
        std::string cleaned = sanitize_html(*html, [&](std::string_view cid) { return inline_cid(cid); });
        Response r;
        r.body = std::move(cleaned);
        r.header("Content-Type", "text/html; charset=utf-8");
        r.header("Content-Security-Policy", k_sandbox_csp);
        r.header("X-Frame-Options", "SAMEORIGIN");
        return secure(r);
    }
    auto view = query::load_view(*archive_, db(), *docno, *links_);
    if (!view) return not_found();
    view->hit.data = rule.visible(std::move(view->hit.data));
    const auto& d = view->hit.data;
    PageFrame f{view->hit.title + " — mailvault", id.user.name, id.csrf, "", "newest", id.user.role == Role::admin};
    if (route == "html" && seg.size() == 3) {
        if (!query::html_body(*raw)) return not_found();
        std::string m = "<nav class=\"back\"><a href=\"/m/" + n + "\">&larr; Plain text</a></nav>"
                        "<h1 class=\"subject\">" + esc(d.subject) + "</h1>"
                        "<iframe id=\"html-frame\" sandbox src=\"/m/" + n + "/html/content\" referrerpolicy=\"no-referrer\" "
                        "title=\"HTML version of the message\"></iframe>";
        return html_response(200, page(f, m));
    }
    if (seg.size() != 2) return not_found();
    if (!audit("view", id.user.name, req, {{"docno", *docno}})) return audit_unavailable(false);
    std::string m = "<article id=\"message\" data-docno=\"" + n + "\" data-link=\"" + esc(view->hit.link) +
                    "\" data-title=\"" + esc(view->hit.title) + "\">";
    m += "<h1 class=\"subject\">" + esc(d.subject.empty() ? "(no subject)" : d.subject) + "</h1>";
    m += "<div class=\"actions\"><button id=\"copy-link\" type=\"button\">Copy link</button>"
         "<a id=\"download-raw\" href=\"/m/" + n + "/raw\">Download original (.eml)</a>";
    if (query::html_body(*raw)) m += "<a id=\"show-html\" href=\"/m/" + n + "/html\">Show HTML</a>";
    m += "</div><dl id=\"headers\">";
    auto row = [&](const char* name, const std::string& value) {
        if (!value.empty()) m += std::string("<dt>") + name + "</dt><dd>" + esc(value) + "</dd>";
    };
    m += "<dt>Date</dt><dd id=\"message-date\">" + time_html(d.date, query::DateStyle::full) + "</dd>";
    row("From", d.from);
    row("To", join(d.to));
    row("Cc", join(d.cc));
    row("Subject", d.subject);
    row("Mailboxes", join(query::mailboxes_of(d)));
    row("Folders", join(query::folders_of(d)));
    row("Size", human_size(d.size));
    row("Link", view->hit.link);
    m += "</dl>";
    if (!view->attachments.empty()) {
        m += "<h2>Attachments</h2><p><a id=\"download-attachments\" href=\"/m/" + n +
             "/attachments.zip\">Download all attachments (.zip)</a></p><ul id=\"attachments\">";
        for (std::size_t i = 0; i < view->attachments.size(); ++i) {
            const auto& a = view->attachments[i];
            m += "<li><a class=\"attachment-link\" href=\"/m/" + n + "/attachment/" + std::to_string(i + 1) + "\">" +
                 esc(a.filename.empty() ? "(no name)" : a.filename) + "</a> <span class=\"attachment-type\">" +
                 esc(a.content_type) + "</span> <span class=\"attachment-size\">" + esc(human_size(a.size)) + "</span>" +
                 (a.text_status.empty() ? std::string()
                                        : " <span class=\"attachment-text-status status-" + esc(a.text_status) +
                                              "\">text: " + esc(query::text_status_line(a)) + "</span>") +
                 "</li>";
        }
        m += "</ul>";
    }
    m += "<details id=\"all-headers\"><summary>All headers</summary><dl>";
    for (const auto& [k, v] : view->headers) m += "<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>";
    m += "</dl></details>";
    m += "<pre id=\"body-text\">" + esc(view->body) + "</pre></article>";
    return html_response(200, page(f, m));
}

Response App::api_route(const Request& req, const Identity& id) {
    const auto& seg = req.segments;
    query::AccessRule rule(id.user.mailboxes);
    if (seg.size() == 2 && seg[1] == "search") {
        auto sort = query::parse_sort(req.arg("sort").empty() ? "newest" : req.arg("sort"));
        auto limit = parse_count(req.arg("limit"), 50, 1000);
        auto offset = parse_count(req.arg("offset"), 0, 1u << 30);
        if (!sort || !limit || !offset) return json_error(400, "sort must be newest, oldest or relevance; limit and offset numbers");
        query::SearchOptions so;
        so.sort = *sort;
        so.limit = *limit;
        so.offset = *offset;
        so.parse = parse_;
        const std::string q = req.arg("q");
        auto res = search(id.user.name, q.empty() ? "*" : q, so, rule);
        if (!audit("api_search", id.user.name, req, {{"query", q}, {"total", res ? res->total : 0}})) return audit_unavailable(true);
        if (!res) return json_error(res.error().kind == Error::Kind::usage ? 400 : 500, res.error().message);
        std::string body = "{\"total\":" + std::to_string(res->total) +
                           ",\"total_exact\":" + (res->total_exact ? "true" : "false") + ",\"hits\":[";
        for (std::size_t i = 0; i < res->hits.size(); ++i) body += (i ? "," : "") + query::hit_json(res->hits[i]);
        body += "]}";
        return json_response(200, std::move(body));
    }
    if (seg.size() >= 3 && seg.size() <= 4 && seg[1] == "m") {
        auto docno = visible_docno(id.user, seg[2]);
        if (!docno || (seg.size() == 4 && seg[3] != "raw")) {
            audit("denied", id.user.name, req, {{"path", req.raw_path}});
            return json_error(404, "not found");
        }
        if (seg.size() == 4) {
            auto raw = original(*docno);
            if (!raw) return json_error(500, "the original cannot be read");
            if (!audit("api_raw", id.user.name, req, {{"docno", *docno}})) return audit_unavailable(true);
            return download(std::move(*raw), std::to_string(*docno) + ".eml", "message/rfc822");
        }
        auto view = query::load_view(*archive_, db(), *docno, *links_);
        if (!view) return json_error(404, "not found");
        view->hit.data = rule.visible(std::move(view->hit.data));
        if (!audit("api_view", id.user.name, req, {{"docno", *docno}})) return audit_unavailable(true);
        return json_response(200, query::view_json(*view));
    }
    return json_error(404, "not found");
}

}  // namespace mv::web
