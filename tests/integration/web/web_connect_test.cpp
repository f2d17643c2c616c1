// The admin "Connect account" page (issue 12, web side): GET /admin/sources, the PKCE
// authorization code flow through POST /admin/sources/{name}/connect and GET /oauth/callback,
// against tools/fake-graph as the identity platform. The server runs in-process on a random port.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "fake_graph_fixture.hpp"
#include "ingest/oauth/delegated.hpp"
#include "support/testutil.hpp"
#include "web/app.hpp"
#include "web/audit.hpp"
#include "web/html.hpp"
#include "web/http.hpp"

namespace mv::test {
namespace {

namespace fs = std::filesystem;
const std::string k_base_url = "https://mail.example.test";
const std::string k_redirect = k_base_url + "/oauth/callback";

const char* k_mail =
    "From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: Hello\r\n"
    "Date: Tue, 25 Apr 2023 10:02:11 +0000\r\nMessage-ID: <c1@example.com>\r\n\r\nHello.\r\n";

struct Reply {
    long status = 0;
    std::multimap<std::string, std::string> headers;  // lower-case names
    std::string body;
    std::string header(const std::string& n) const {
        auto it = headers.find(n);
        return it == headers.end() ? std::string{} : it->second;
    }
};

size_t on_body(char* p, size_t s, size_t n, void* u) {
    static_cast<std::string*>(u)->append(p, s * n);
    return s * n;
}
size_t on_header(char* p, size_t s, size_t n, void* u) {
    std::string line(p, s * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string k = line.substr(0, colon);
        for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(v.begin());
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
        static_cast<std::multimap<std::string, std::string>*>(u)->emplace(k, v);
    }
    return s * n;
}

// One request, redirects not followed; `cookies` sent and updated.
Reply fetch(const std::string& method, const std::string& url, std::map<std::string, std::string>* cookies,
            const std::string& body = "") {
    Reply r;
    CURL* c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_slist* hs = nullptr;
    std::string cookie;
    if (cookies)
        for (const auto& [k, v] : *cookies) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
    if (!cookie.empty()) hs = curl_slist_append(hs, ("Cookie: " + cookie).c_str());
    if (method == "POST") {
        hs = curl_slist_append(hs, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    if (hs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    CURLcode rc = curl_easy_perform(c);
    EXPECT_EQ(rc, CURLE_OK) << method << " " << url << ": " << curl_easy_strerror(rc);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    if (cookies) {
        auto range = r.headers.equal_range("set-cookie");
        for (auto it = range.first; it != range.second; ++it) {
            const std::string& v = it->second;
            auto eq = v.find('=');
            auto semi = v.find(';');
            std::string name = v.substr(0, eq), value = v.substr(eq + 1, semi - eq - 1);
            if (value.empty() || v.find("Max-Age=0") != std::string::npos) cookies->erase(name);
            else (*cookies)[name] = value;
        }
    }
    return r;
}

std::string csrf_of(const std::string& html) {
    std::smatch m;
    static const std::regex re("name=\"csrf\" value=\"([0-9a-f]+)\"");
    return std::regex_search(html, m, re) ? m[1].str() : std::string{};
}

std::string form(const std::map<std::string, std::string>& f) {
    std::string body;
    for (const auto& [k, v] : f) body += (body.empty() ? "" : "&") + k + "=" + web::url_component(v);
    return body;
}

// The value of query parameter `name` in `url`, %-decoded.
std::string query_param(const std::string& url, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(url, m, std::regex("[?&]" + name + "=([^&]*)"))) return {};
    return web::url_decode(m[1].str(), true);
}

std::string hash_of(const std::string& pw) {
    auto r = run_mailvault({"passwd"}, pw + "\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string h = r.out;
    while (!h.empty() && h.back() == '\n') h.pop_back();
    return h;
}

std::vector<UserConfig>* g_users = nullptr;

class ConnectTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        signal(SIGPIPE, SIG_IGN);
        g_users = new std::vector<UserConfig>;
        std::string h = hash_of("pw-1");
        g_users->push_back({"root", h, {"*"}, "admin"});
        g_users->push_back({"alice", h, {"alice@example.com"}, "user"});
        g_users->push_back({"aud", h, {"*"}, "auditor"});
    }
    static void TearDownTestSuite() {
        delete g_users;
        g_users = nullptr;
    }

    void SetUp() override {
        fake = std::make_unique<graph::FakeGraph>(dir.path() / "fake", std::vector<std::string>{"--generate", "0", "--sign-in-user", "alice"});
        ASSERT_TRUE(fake->ok()) << fake->log();
        archive = dir.path() / "archive";
        write_file(dir.path() / "mail" / "m1.eml", k_mail);
        auto r = run_mailvault({"--archive", archive.string(), "--quiet", "import", (dir.path() / "mail").string(), "--mailbox",
                                "alice@example.com"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    SourceConfig oauth_source(const std::string& name, const std::string& type) const {
        SourceConfig s;
        s.name = name;
        s.type = type;
        s.strings = {{"host", "127.0.0.1"}, {"port", "993"}, {"user", "alice"}, {"auth", "xoauth2"},
                     {"tenant", graph::k_tenant}, {"client_id", graph::k_client_id}, {"authority_url", fake->url()}};
        return s;
    }

    void start(std::chrono::seconds ttl = std::chrono::seconds(600)) {
        web::AppConfig ac;
        ac.archive_dir = archive;
        ac.links.base_url = k_base_url;
        ac.connect.sources.push_back(oauth_source("mail", "imap"));
        ac.connect.sources.push_back(oauth_source("<b>\"pop\"&", "pop3"));
        SourceConfig app_only = oauth_source("apponly", "imap");
        app_only.strings["oauth"] = "app";
        ac.connect.sources.push_back(app_only);
        SourceConfig plain;
        plain.name = "local";
        plain.type = "maildir";
        ac.connect.sources.push_back(plain);
        ac.connect.smtp = oauth_source("smtp", "smtp");
        ac.connect.pending_ttl = ttl;
        auto app = web::App::create(ac, std::make_unique<web::LocalAuthenticator>(*g_users));
        ASSERT_TRUE(app) << app.error().message;
        app_ = std::move(*app);
        web::Limits limits;
        limits.threads = 2;
        web::App* a = app_.get();
        auto s = web::HttpServer::start("127.0.0.1", 0, limits, [a](const web::Request& r) { return a->handle(r); });
        ASSERT_TRUE(s) << s.error().message;
        server_ = std::move(*s);
        base = "http://127.0.0.1:" + std::to_string(server_->port());
    }

    struct Browser {
        std::map<std::string, std::string> cookies;
        std::string csrf;
    };
    Browser login(const std::string& user) {
        Browser b;
        Reply f = fetch("GET", base + "/login", &b.cookies);
        Reply r = fetch("POST", base + "/login", &b.cookies, form({{"username", user}, {"password", "pw-1"}, {"csrf", csrf_of(f.body)}, {"next", "/"}}));
        EXPECT_EQ(r.status, 303) << r.body;
        b.csrf = csrf_of(fetch("GET", base + "/search", &b.cookies).body);
        EXPECT_FALSE(b.csrf.empty());
        return b;
    }
    Reply get(Browser& b, const std::string& path) { return fetch("GET", base + path, &b.cookies); }
    Reply connect(Browser& b, const std::string& source) {
        return fetch("POST", base + "/admin/sources/" + web::url_component(source) + "/connect", &b.cookies, form({{"csrf", b.csrf}}));
    }
    // The browser at the identity platform: the authorize URL answers with a redirect to the
    // callback (the fake signs the user in at once). Returns that Location.
    std::string authorize(const std::string& authorize_url) {
        Reply r = fetch("GET", authorize_url, nullptr);
        EXPECT_EQ(r.status, 302) << r.body;
        return r.header("location");
    }
    // The callback path (on our server) of a redirect to the registered redirect URL.
    std::string callback_path(const std::string& location) {
        EXPECT_EQ(location.rfind(k_redirect + "?", 0), 0u) << location;
        return location.substr(k_base_url.size());
    }
    fs::path store_file(const std::string& source) const { return ingest::oauth::TokenStore(archive).file(source); }
    std::string audit_text() const { return read_file(web::audit_path(archive)); }

    TempDir dir;
    fs::path archive;
    std::unique_ptr<graph::FakeGraph> fake;
    std::unique_ptr<web::App> app_;
    std::unique_ptr<web::HttpServer> server_;
    std::string base;
};

TEST_F(ConnectTest, AdminSeesSourcesWithTheRedirectUrlAndEscapedNames) {
    start();
    Browser b = login("root");
    Reply r = get(b, "/admin/sources");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("<code id=\"redirect-url\">" + k_redirect + "</code>"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("data-source=\"mail\""), std::string::npos);
    EXPECT_NE(r.body.find("data-source=\"smtp\""), std::string::npos);
    EXPECT_NE(r.body.find("data-source=\"apponly\""), std::string::npos);
    EXPECT_EQ(r.body.find("data-source=\"local\""), std::string::npos);  // not xoauth2
    EXPECT_NE(r.body.find("not connected"), std::string::npos);
    EXPECT_NE(r.body.find("app-only (client credentials)"), std::string::npos);
    // Connect buttons are POST forms with the session's CSRF token, one per delegated account.
    EXPECT_NE(r.body.find("<form class=\"connect-form\" method=\"post\" action=\"/admin/sources/mail/connect\"><input type=\"hidden\" "
                          "name=\"csrf\" value=\"" + b.csrf + "\"><button type=\"submit\">Connect account</button></form>"),
              std::string::npos)
        << r.body;
    std::size_t buttons = 0;
    for (auto p = r.body.find("Connect account</button>"); p != std::string::npos; p = r.body.find("Connect account</button>", p + 1)) ++buttons;
    EXPECT_EQ(buttons, 3u);  // mail, the hostile pop3 name, smtp; not apponly
    // The hostile source name is escaped everywhere it is shown.
    EXPECT_EQ(r.body.find("<b>\"pop\""), std::string::npos);
    EXPECT_NE(r.body.find("&lt;b&gt;&quot;pop&quot;&amp;"), std::string::npos);
    // form-action allows the platform the Connect POST redirects to.
    EXPECT_NE(r.header("content-security-policy").find("form-action 'self' " + fake->url()), std::string::npos)
        << r.header("content-security-policy");
    EXPECT_EQ(r.header("cache-control"), "no-store");
}

TEST_F(ConnectTest, NonAdminsAndAnonymousGetNotFound) {
    start();
    Browser anon;
    Reply unknown = get(anon, "/no-such-page");
    ASSERT_EQ(unknown.status, 404);
    EXPECT_EQ(get(anon, "/admin/sources").status, 404);
    for (const char* user : {"alice", "aud"}) {
        Browser b = login(user);
        Reply r = get(b, "/admin/sources");
        EXPECT_EQ(r.status, 404) << user;
        EXPECT_EQ(r.body, unknown.body) << user;
        EXPECT_EQ(connect(b, "mail").status, 404) << user;
        EXPECT_EQ(get(b, "/oauth/callback?code=x&state=y").status, 404) << user;
    }
    // An admin's GET never starts a sign-in.
    Browser root = login("root");
    EXPECT_EQ(get(root, "/admin/sources/mail/connect").status, 404);
    EXPECT_EQ(get(root, "/admin/nothing").status, 404);
    EXPECT_EQ(connect(root, "local").status, 404);    // not an xoauth2 source
    EXPECT_EQ(connect(root, "apponly").status, 404);  // app-only: nothing to sign in
    EXPECT_EQ(connect(root, "missing").status, 404);
}

TEST_F(ConnectTest, ConnectWithoutCsrfIsRefused) {
    start();
    Browser b = login("root");
    Reply none = fetch("POST", base + "/admin/sources/mail/connect", &b.cookies, "");
    EXPECT_EQ(none.status, 403);
    EXPECT_TRUE(none.header("location").empty());
    Reply wrong = fetch("POST", base + "/admin/sources/mail/connect", &b.cookies, form({{"csrf", std::string(64, '0')}}));
    EXPECT_EQ(wrong.status, 403);
    EXPECT_TRUE(wrong.header("location").empty());
    // Another session's token is no good either.
    Browser other = login("root");
    EXPECT_EQ(fetch("POST", base + "/admin/sources/mail/connect", &b.cookies, form({{"csrf", other.csrf}})).status, 403);
    EXPECT_NE(audit_text().find("\"action\":\"connect_refused\""), std::string::npos);
}

TEST_F(ConnectTest, FullFlowStoresTheSignInAndShowsTheAccount) {
    start();
    Browser b = login("root");
    Reply r = connect(b, "mail");
    ASSERT_EQ(r.status, 303) << r.body;
    const std::string to = r.header("location");
    ASSERT_EQ(to.rfind(fake->url() + "/" + graph::k_tenant + "/oauth2/v2.0/authorize?", 0), 0u) << to;
    EXPECT_EQ(query_param(to, "redirect_uri"), k_redirect);
    EXPECT_EQ(query_param(to, "code_challenge_method"), "S256");
    EXPECT_FALSE(query_param(to, "code_challenge").empty());
    EXPECT_FALSE(query_param(to, "state").empty());
    EXPECT_EQ(to.find("code_verifier"), std::string::npos);
    std::string cb = callback_path(authorize(to));
    EXPECT_EQ(query_param(cb, "state"), query_param(to, "state"));
    Reply done = get(b, cb);
    ASSERT_EQ(done.status, 303) << done.body;
    EXPECT_EQ(done.header("location"), "/admin/sources?connected=mail");

    // The stored sign-in: 0600, with the refresh token and the account.
    struct stat st{};
    ASSERT_EQ(::stat(store_file("mail").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto stored = nlohmann::json::parse(read_file(store_file("mail")));
    const std::string refresh = stored.value("refresh_token", "");
    ASSERT_FALSE(refresh.empty()) << stored.dump();
    EXPECT_EQ(stored.value("account", ""), "alice");
    EXPECT_FALSE(fs::exists(store_file("smtp")));

    Reply page = get(b, "/admin/sources?connected=mail");
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("id=\"connected-notice\""), std::string::npos);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(page.body, m, std::regex("data-source=\"mail\">.*?</tr>"))) << page.body;
    EXPECT_NE(m.str().find("connected account: <span class=\"account-name\">alice</span>"), std::string::npos) << m.str();

    // Audit: who connected which source as whom; never a token.
    const std::string log = audit_text();
    EXPECT_NE(log.find("\"action\":\"connect\",\"user\":\"root\""), std::string::npos) << log;
    EXPECT_NE(log.find("\"source\":\"mail\",\"account\":\"alice\""), std::string::npos) << log;
    for (const std::string& text : {log, page.body, done.body, r.body}) {
        EXPECT_EQ(text.find(refresh), std::string::npos);
        EXPECT_EQ(text.find(query_param(cb, "code")), std::string::npos);
    }
    // The stored sign-in works: the refresh token trades for an access token.
    auto app = ingest::oauth::read_delegated_app(oauth_source("mail", "imap"), "imap");
    ASSERT_TRUE(app);
    auto t = ingest::oauth::delegated_access_token(*app, ingest::oauth::TokenStore(archive), ingest::oauth::default_transport());
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_FALSE(t->access_token.empty());
}

TEST_F(ConnectTest, WrongReplayedForeignAndExpiredStatesStoreNothing) {
    start();
    Browser b = login("root");
    // A made-up state.
    Reply r = connect(b, "mail");
    ASSERT_EQ(r.status, 303);
    std::string cb = callback_path(authorize(r.header("location")));
    std::string forged = std::regex_replace(cb, std::regex("state=[^&]*"), "state=forged");
    Reply bad = get(b, forged);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("id=\"callback-error\""), std::string::npos);
    EXPECT_NE(bad.body.find("Nothing was stored"), std::string::npos);
    EXPECT_FALSE(fs::exists(store_file("mail")));
    // The right state from another session (the same admin, another browser) is refused ...
    Browser other = login("root");
    EXPECT_EQ(get(other, cb).status, 400);
    EXPECT_FALSE(fs::exists(store_file("mail")));
    // ... and does not spend it: the session that started it completes.
    ASSERT_EQ(get(b, cb).status, 303);
    ASSERT_TRUE(fs::exists(store_file("mail")));
    const std::string first = read_file(store_file("mail"));
    // Replayed: the state is single-use.
    Reply again = get(b, cb);
    EXPECT_EQ(again.status, 400);
    EXPECT_EQ(read_file(store_file("mail")), first);
    EXPECT_NE(audit_text().find("\"reason\":\"state\""), std::string::npos);
}

TEST_F(ConnectTest, ExpiredStateIsRefused) {
    start(std::chrono::seconds(0));
    Browser b = login("root");
    Reply r = connect(b, "smtp");
    ASSERT_EQ(r.status, 303);
    EXPECT_EQ(query_param(r.header("location"), "scope").find("SMTP.Send") != std::string::npos, true) << r.header("location");
    std::string cb = callback_path(authorize(r.header("location")));
    EXPECT_EQ(get(b, cb).status, 400);
    EXPECT_FALSE(fs::exists(store_file("smtp")));
}

TEST_F(ConnectTest, WrongVerifierFailsCleanly) {
    start();
    Browser b = login("root");
    Reply r = connect(b, "mail");
    ASSERT_EQ(r.status, 303);
    // The code is issued for another challenge than the server's verifier answers.
    std::string to = std::regex_replace(r.header("location"), std::regex("code_challenge=[^&]*"),
                                        "code_challenge=" + ingest::oauth::make_pkce().challenge);
    Reply done = get(b, callback_path(authorize(to)));
    EXPECT_EQ(done.status, 502);
    EXPECT_NE(done.body.find("AADSTS501481"), std::string::npos) << done.body;
    EXPECT_NE(done.body.find("Nothing was stored"), std::string::npos);
    EXPECT_FALSE(fs::exists(store_file("mail")));
    EXPECT_NE(audit_text().find("\"action\":\"connect_failed\""), std::string::npos);
}

TEST_F(ConnectTest, PlatformErrorIsShownAndEscaped) {
    start();
    Browser b = login("root");
    Reply r = connect(b, "mail");
    ASSERT_EQ(r.status, 303);
    fake->control("device-script?outcomes=decline");  // the fake's authorize then answers access_denied
    std::string cb = callback_path(authorize(r.header("location")));
    Reply shown = get(b, cb);
    EXPECT_EQ(shown.status, 400);
    EXPECT_NE(shown.body.find("access_denied"), std::string::npos) << shown.body;
    EXPECT_NE(shown.body.find("AADSTS65004"), std::string::npos) << shown.body;
    EXPECT_FALSE(fs::exists(store_file("mail")));
    // A hostile error text is escaped (the state is spent: the page says so, escaped or not).
    Reply r2 = connect(b, "mail");
    std::string state = query_param(r2.header("location"), "state");
    Reply hostile = get(b, "/oauth/callback?state=" + web::url_component(state) + "&error=" + web::url_component("<script>x</script>"));
    EXPECT_EQ(hostile.status, 400);
    EXPECT_EQ(hostile.body.find("<script>x"), std::string::npos);
    EXPECT_NE(hostile.body.find("&lt;script&gt;x"), std::string::npos) << hostile.body;
}

TEST_F(ConnectTest, CallbackWithoutCookieHopsOnceSameSite) {
    start();
    Browser none;
    Reply hop = get(none, "/oauth/callback?code=abc&state=s1");
    EXPECT_EQ(hop.status, 200);
    EXPECT_NE(hop.body.find("/oauth/callback?hop=1&amp;code=abc&amp;state=s1"), std::string::npos) << hop.body;
    // After the hop, still nobody: not found.
    EXPECT_EQ(get(none, "/oauth/callback?hop=1&code=abc&state=s1").status, 404);
}

}  // namespace
}  // namespace mv::test
