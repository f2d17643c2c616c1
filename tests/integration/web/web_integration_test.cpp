// The web side over HTTP: login, sessions, CSRF, the access rule on every route, path tricks,
// widening queries, audit log, API tokens, bounds (body, headers, slow-loris, login flood),
// security headers and escaping. The server runs in-process on a random port.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "index/mime/parser.hpp"
#include "support/testutil.hpp"
#include "web/app.hpp"
#include "web/audit.hpp"
#include "web/auth.hpp"
#include "web/html.hpp"
#include "web/http.hpp"
#include "web/tokens.hpp"

namespace mv::test {
namespace {

using namespace std::chrono_literals;

// ---- fixture mail ----
const char* k_alice_plain =
    "From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: Quarterly report\r\n"
    "Date: Tue, 25 Apr 2023 10:02:11 +0000\r\nMessage-ID: <q1@example.com>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "The quarterly numbers are attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n--b1--\r\n";

const char* k_alice_hostile =
    "From: \"<img src=x onerror=alert(1)>\" <mallory@example.com>\r\nTo: alice@example.com\r\n"
    "Subject: <script>alert(1)</script> hostile\r\nDate: Wed, 26 Apr 2023 10:00:00 +0000\r\n"
    "Message-ID: <h1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n"
    "--m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n"
    "--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<html><body><p>Hello <b>there</b></p><script>alert('owned')</script>"
    "<img src=\"cid:logo@example.com\"><img src=\"http://remote.example/track.png\">"
    "<form action=\"http://evil.example/\"><input name=x></form><p onclick=\"alert(2)\">x</p></body></html>\r\n"
    "--r\r\nContent-Type: image/png\r\nContent-ID: <logo@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n"
    "--r--\r\n--m\r\nContent-Type: text/html; name=\"<script>x</script>.html\"\r\n"
    "Content-Disposition: attachment; filename=\"<script>x</script>.html\"\r\n\r\n"
    "<script>alert('attachment')</script>\r\n--m--\r\n";

const char* k_bob_secret =
    "From: Dave <dave@example.org>\r\nTo: bob@example.org\r\nSubject: Bob secret plans\r\n"
    "Date: Thu, 27 Apr 2023 09:00:00 +0000\r\nMessage-ID: <s1@example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n"
    "The secret plans, quarterly edition.\r\n--x\r\nContent-Type: text/plain; name=\"secret.txt\"\r\n"
    "Content-Disposition: attachment; filename=\"secret.txt\"\r\n\r\ntop secret\r\n--x--\r\n";

// ---- a small HTTP client (libcurl) with a cookie map ----
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
        while (!v.empty() && (v.front() == ' ')) v.erase(v.begin());
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
        static_cast<std::multimap<std::string, std::string>*>(u)->emplace(k, v);
    }
    return s * n;
}

class Client {
  public:
    explicit Client(std::string base) : base_(std::move(base)) {}
    std::map<std::string, std::string> cookies;
    bool insecure = false;

    Reply request(const std::string& method, const std::string& path, const std::string& body = "",
                  std::vector<std::string> extra = {}) {
        Reply r;
        CURL* c = curl_easy_init();
        std::string url = base_ + path;
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        if (insecure) {  // the TLS test's self-signed certificate
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        curl_slist* hs = nullptr;
        std::string cookie;
        for (const auto& [k, v] : cookies) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
        if (!cookie.empty()) extra.push_back("Cookie: " + cookie);
        for (const auto& h : extra) hs = curl_slist_append(hs, h.c_str());
        if (hs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
        if (method == "POST") {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
        } else if (method != "GET") {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
        }
        CURLcode rc = curl_easy_perform(c);
        EXPECT_EQ(rc, CURLE_OK) << method << " " << path << ": " << curl_easy_strerror(rc);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(hs);
        curl_easy_cleanup(c);
        auto range = r.headers.equal_range("set-cookie");
        for (auto it = range.first; it != range.second; ++it) {
            const std::string& v = it->second;
            auto eq = v.find('=');
            auto semi = v.find(';');
            std::string name = v.substr(0, eq), value = v.substr(eq + 1, semi - eq - 1);
            if (value.empty() || v.find("Max-Age=0") != std::string::npos) cookies.erase(name);
            else cookies[name] = value;
        }
        return r;
    }
    Reply get(const std::string& path, std::vector<std::string> extra = {}) { return request("GET", path, "", std::move(extra)); }
    Reply post(const std::string& path, const std::map<std::string, std::string>& form) {
        std::string body;
        for (const auto& [k, v] : form) body += (body.empty() ? "" : "&") + k + "=" + web::url_component(v);
        return request("POST", path, body, {"Content-Type: application/x-www-form-urlencoded"});
    }
    // GET /login (for its CSRF field), then POST the credentials.
    Reply login(const std::string& user, const std::string& password, const std::string& next = "/") {
        Reply form = get("/login");
        return post("/login", {{"username", user}, {"password", password}, {"csrf", csrf_of(form.body)}, {"next", next}});
    }
    static std::string csrf_of(const std::string& html) {
        std::smatch m;
        static const std::regex re("name=\"csrf\" value=\"([0-9a-f]+)\"");
        return std::regex_search(html, m, re) ? m[1].str() : std::string{};
    }

  private:
    std::string base_;
};

// ---- shared archive and users ----
struct Shared {
    TempDir dir;
    std::filesystem::path archive;
    std::uint64_t alice_plain = 0, alice_hostile = 0, bob_secret = 0;
    std::vector<UserConfig> users;
    std::filesystem::path config;
};
Shared* g = nullptr;

std::uint64_t docno_of(const std::string& query) {
    auto r = run_mailvault({"--archive", g->archive.string(), "search", query, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto nl = r.out.find('\n');
    if (nl == std::string::npos) return 0;
    return nlohmann::json::parse(r.out.substr(0, nl)).value("docno", std::uint64_t{0});
}

class WebTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        signal(SIGPIPE, SIG_IGN);
        index::init_mime();
        g = new Shared;
        g->archive = g->dir / "archive";
        write_file(g->dir / "alice" / "a1.eml", k_alice_plain);
        write_file(g->dir / "alice" / "a2.eml", k_alice_hostile);
        write_file(g->dir / "bob" / "b1.eml", k_bob_secret);
        auto a = run_mailvault({"--archive", g->archive.string(), "--quiet", "import", (g->dir / "alice").string(),
                                "--mailbox", "alice@example.com", "--folder", "Inbox"});
        ASSERT_EQ(a.exit_code, 0) << a.err;
        auto b = run_mailvault({"--archive", g->archive.string(), "--quiet", "import", (g->dir / "bob").string(),
                                "--mailbox", "bob@example.org", "--folder", "Inbox"});
        ASSERT_EQ(b.exit_code, 0) << b.err;
        g->alice_plain = docno_of("subject:quarterly mailbox:alice@example.com");
        g->alice_hostile = docno_of("subject:hostile");
        g->bob_secret = docno_of("subject:secret");
        ASSERT_TRUE(g->alice_plain && g->alice_hostile && g->bob_secret);
        // Hashes through `mailvault passwd`, as an administrator makes them.
        auto hash = [](const std::string& pw) {
            auto r = run_mailvault({"passwd"}, pw + "\n");
            EXPECT_EQ(r.exit_code, 0) << r.err;
            std::string h = r.out;
            while (!h.empty() && h.back() == '\n') h.pop_back();
            EXPECT_EQ(h.rfind("$argon2id$", 0), 0u) << h;
            return h;
        };
        g->users.push_back({"alice", hash("alice-pw"), {"alice@example.com"}, "user"});
        g->users.push_back({"bob", hash("bob-pw"), {"bob@*"}, "user"});
        g->users.push_back({"auditor", g->users[0].password_hash, {"*"}, "auditor"});
        g->users.push_back({"root", g->users[0].password_hash, {"*"}, "admin"});
        g->config = g->dir / "mailvault.toml";
        write_file(g->config, "[users.alice]\npassword_hash = \"" + g->users[0].password_hash +
                                  "\"\nmailboxes = [\"alice@example.com\"]\n[users.bob]\npassword_hash = \"" +
                                  g->users[1].password_hash + "\"\nmailboxes = [\"bob@*\"]\n");
    }
    static void TearDownTestSuite() {
        delete g;
        g = nullptr;
    }

    // The suite's archive unless `ac` names another; `threads` worker threads (1: every request
    // meets the same per-thread state, such as the result cache).
    void start(web::AppConfig ac = {}, web::Limits limits = {}, const web::TlsFiles& tls = {}, unsigned threads = 2) {
        if (ac.archive_dir.empty()) ac.archive_dir = g->archive;
        auto app = web::App::create(ac, std::make_unique<web::LocalAuthenticator>(g->users));
        ASSERT_TRUE(app) << app.error().message;
        app_ = std::move(*app);
        limits.threads = threads;
        web::App* a = app_.get();
        auto s = web::HttpServer::start("127.0.0.1", 0, limits, [a](const web::Request& r) { return a->handle(r); }, tls);
        ASSERT_TRUE(s) << s.error().message;
        server_ = std::move(*s);
        base_ = std::string(tls.cert_pem.empty() ? "http" : "https") + "://127.0.0.1:" + std::to_string(server_->port());
    }
    Client client() { return Client(base_); }
    Client logged_in(const std::string& user, const std::string& pw) {
        Client c = client();
        Reply r = c.login(user, pw);
        EXPECT_EQ(r.status, 303) << r.body;
        return c;
    }
    std::string csrf_of_page(Client& c) { return Client::csrf_of(c.get("/search").body); }

    std::unique_ptr<web::App> app_;
    std::unique_ptr<web::HttpServer> server_;
    std::string base_;
};

// ---- raw sockets for the bounds ----
int connect_from(const char* source, std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (source) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        inet_pton(AF_INET, source, &src.sin_addr);
        ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}
// True when the peer closed (EOF or reset) within `wait`; any bytes read go to `got`.
bool closed_within(int fd, std::chrono::milliseconds wait, std::string* got = nullptr) {
    auto end = std::chrono::steady_clock::now() + wait;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count());
        if (::poll(&p, 1, std::max(1, left)) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return true;
        if (got) got->append(buf, static_cast<std::size_t>(n));
    }
    return false;
}

std::vector<std::string> audit_actions(const std::string& user) {
    auto log = web::read_audit(g->archive);
    EXPECT_TRUE(log);
    std::vector<std::string> out;
    for (const auto& r : log->records)
        if (r.json.value("user", "") == user) out.push_back(r.json.value("action", ""));
    return out;
}

// ---- login, logout, sessions, CSRF ----

TEST_F(WebTest, LoginLogoutAndCookieFlags) {
    start();
    Client c = client();
    Reply r = c.get("/search?q=report");
    EXPECT_EQ(r.status, 303);
    EXPECT_EQ(r.header("location"), "/login?next=%2Fsearch%3Fq%3Dreport");
    Reply form = c.get("/login?next=%2Fsearch");
    EXPECT_EQ(form.status, 200);
    EXPECT_NE(form.body.find("<form id=\"login-form\" method=\"post\" action=\"/login\">"), std::string::npos);
    EXPECT_NE(form.body.find("name=\"next\" value=\"/search\""), std::string::npos);
    r = c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", Client::csrf_of(form.body)}, {"next", "/search"}});
    ASSERT_EQ(r.status, 303) << r.body;
    EXPECT_EQ(r.header("location"), "/search");
    std::string cookie;
    auto range = r.headers.equal_range("set-cookie");
    for (auto it = range.first; it != range.second; ++it)
        if (it->second.rfind("mv_session=", 0) == 0) cookie = it->second;
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("Path=/"), std::string::npos) << cookie;
    const std::string token = c.cookies["mv_session"];
    ASSERT_EQ(token.size(), 64u);

    Reply page = c.get("/search?q=quarterly");
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("id=\"hit-count\" data-total=\"1\""), std::string::npos) << page.body;
    EXPECT_NE(page.body.find("<form id=\"logout-form\" method=\"post\" action=\"/logout\">"), std::string::npos);
    const std::string csrf = Client::csrf_of(page.body);
    ASSERT_FALSE(csrf.empty());

    // Logout: GET does nothing, POST without / with a wrong CSRF token is refused.
    EXPECT_EQ(c.get("/logout").status, 405);
    EXPECT_EQ(c.post("/logout", {}).status, 403);
    EXPECT_EQ(c.post("/logout", {{"csrf", std::string(64, 'a')}}).status, 403);
    EXPECT_EQ(c.get("/search").status, 200);
    r = c.post("/logout", {{"csrf", csrf}});
    EXPECT_EQ(r.status, 303);
    EXPECT_EQ(r.header("location"), "/login");
    // The session ended on the server: the old cookie value no longer works.
    Client old = client();
    old.cookies["mv_session"] = token;
    EXPECT_EQ(old.get("/search").status, 303);
    EXPECT_EQ(old.get("/api/search?q=*").status, 401);
}

TEST_F(WebTest, LoginFormCsrfIsRequired) {
    start();
    Client c = client();
    Reply form = c.get("/login");
    const std::string csrf = Client::csrf_of(form.body);
    EXPECT_EQ(c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}}).status, 403);
    EXPECT_EQ(c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", std::string(64, '0')}}).status, 403);
    // A token that belongs to another browser's pre-login cookie.
    Client other = client();
    const std::string other_csrf = Client::csrf_of(other.get("/login").body);
    EXPECT_EQ(c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", other_csrf}}).status, 403);
    // Without the pre-login cookie at all.
    Client none = client();
    EXPECT_EQ(none.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", csrf}}).status, 403);
    EXPECT_TRUE(none.cookies.find("mv_session") == none.cookies.end());
    EXPECT_EQ(c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", csrf}}).status, 303);
}

TEST_F(WebTest, NextIsOnlyARelativePath) {
    start();
    for (const auto& [next, expected] : std::vector<std::pair<std::string, std::string>>{
             {"/m/1", "/m/1"}, {"//evil.example/x", "/"}, {"/\\evil.example", "/"}, {"https://evil.example/", "/"},
             {"evil", "/"}, {"", "/"}}) {
        Client c = client();
        Reply r = c.login("alice", "alice-pw", next);
        EXPECT_EQ(r.status, 303);
        EXPECT_EQ(r.header("location"), expected) << next;
    }
}

TEST_F(WebTest, DirectLinkGoesThroughLoginToTheMessage) {
    start();
    Client c = client();
    const std::string path = "/m/" + std::to_string(g->alice_plain);
    Reply r = c.get(path);
    ASSERT_EQ(r.status, 303);
    EXPECT_EQ(r.header("location"), "/login?next=" + web::url_component(path));
    Reply form = c.get(r.header("location"));
    EXPECT_NE(form.body.find("name=\"next\" value=\"" + path + "\""), std::string::npos);
    r = c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", Client::csrf_of(form.body)}, {"next", path}});
    ASSERT_EQ(r.status, 303);
    EXPECT_EQ(r.header("location"), path);
    Reply m = c.get(path);
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("<article id=\"message\" data-docno=\"" + std::to_string(g->alice_plain) + "\""), std::string::npos);
    EXPECT_NE(m.body.find("class=\"attachment-link\" href=\"" + path + "/attachment/1\""), std::string::npos);
    // Issue 14: the text status of the attachment (a PDF poppler cannot read).
    EXPECT_NE(m.body.find("<span class=\"attachment-text-status status-failed\">text: failed: "), std::string::npos);
    EXPECT_NE(m.body.find("id=\"download-raw\" href=\"" + path + "/raw\""), std::string::npos);
    EXPECT_NE(m.body.find("<button id=\"copy-link\" type=\"button\">"), std::string::npos);
}

TEST_F(WebTest, SessionsExpireIdleAndAbsolute) {
    web::AppConfig ac;
    ac.session_idle = 1s;
    ac.session_max = 60s;
    start(ac);
    Client c = logged_in("alice", "alice-pw");
    EXPECT_EQ(c.get("/search").status, 200);
    std::this_thread::sleep_for(2200ms);
    EXPECT_EQ(c.get("/search").status, 303);

    ac.session_idle = 60s;
    ac.session_max = 2s;
    server_.reset();
    start(ac);
    Client d = logged_in("alice", "alice-pw");
    for (int i = 0; i < 3; ++i) {  // used all along, still ends at the absolute expiry
        EXPECT_EQ(d.get("/search").status, 200);
        std::this_thread::sleep_for(500ms);
    }
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(d.get("/search").status, 303);
}

TEST_F(WebTest, UnknownUserAndWrongPasswordLookTheSame) {
    start();
    Client c = client();
    Reply form = c.get("/login");
    const std::string csrf = Client::csrf_of(form.body);
    Reply wrong = c.post("/login", {{"username", "alice"}, {"password", "nope"}, {"csrf", csrf}});
    Reply unknown = c.post("/login", {{"username", "nobody"}, {"password", "nope"}, {"csrf", csrf}});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_EQ(unknown.status, wrong.status);
    EXPECT_EQ(unknown.body, wrong.body);
    EXPECT_NE(wrong.body.find("<p class=\"error\">"), std::string::npos);
}

// ---- the access rule ----

TEST_F(WebTest, AnotherUsersDocnoIsNotFoundOnEveryRoute) {
    start();
    Client c = logged_in("alice", "alice-pw");
    const std::string bob = std::to_string(g->bob_secret);
    for (const std::string suffix : {"", "/raw", "/attachment/1", "/html", "/html/content", "/cid/logo@example.com"}) {
        Reply missing = c.get("/m/999999" + suffix);
        Reply other = c.get("/m/" + bob + suffix);
        EXPECT_EQ(other.status, 404) << suffix;
        EXPECT_EQ(missing.status, 404) << suffix;
        EXPECT_EQ(other.body, missing.body) << suffix;
        EXPECT_EQ(other.body.find("secret"), std::string::npos);
    }
    for (const std::string suffix : {"", "/raw"}) {
        Reply missing = c.get("/api/m/999999" + suffix);
        Reply other = c.get("/api/m/" + bob + suffix);
        EXPECT_EQ(other.status, 404);
        EXPECT_EQ(other.body, missing.body);
    }
    // Bob sees his own message; the auditor sees everything.
    Client b = logged_in("bob", "bob-pw");
    EXPECT_EQ(b.get("/m/" + bob).status, 200);
    EXPECT_EQ(b.get("/m/" + bob + "/attachment/1").body, "top secret");
    EXPECT_EQ(b.get("/m/" + std::to_string(g->alice_plain)).status, 404);
    Client au = logged_in("auditor", "alice-pw");
    EXPECT_EQ(au.get("/m/" + bob).status, 200);
    EXPECT_EQ(au.get("/m/" + std::to_string(g->alice_plain)).status, 200);
}

TEST_F(WebTest, MalformedDocnosAndPathTricksAreNotFound) {
    start();
    Client c = logged_in("alice", "alice-pw");
    const std::string a = std::to_string(g->alice_plain), bob = std::to_string(g->bob_secret);
    const std::string not_found_body = c.get("/m/999999").body;
    for (const std::string& path : std::vector<std::string>{"/m/0", "/m/-1", "/m/abc", "/m/1e3", "/m/01", "/m/99999999999999999999999", "/m/" + a + "x",
          "/m/" + a + "/attachment/0", "/m/" + a + "/attachment/2", "/m/" + a + "/attachment/99", "/m/" + a + "/attachment/-1",
          "/m/" + a + "%2F..%2F" + bob, "/m/" + a + "/../" + bob, "/m/%2e%2e/" + bob, "//m/" + bob, "/m//" + bob,
          "/m/" + a + "/raw/x", "/m/" + a + "/unknown", "/m/" + bob + "%00", "/api/m/-1", "/api/m/abc",
          "/m/" + a + "/html" /* plain message: no HTML part */}) {
        Reply r = c.get(path);
        EXPECT_EQ(r.status, 404) << path;
        if (path.rfind("/api/", 0) != 0) {
            EXPECT_EQ(r.body, not_found_body) << path;
        }
        EXPECT_EQ(r.body.find("secret"), std::string::npos) << path;
    }
}

TEST_F(WebTest, QueriesCannotWidenTheFilter) {
    start();
    Client c = logged_in("alice", "alice-pw");
    for (const std::string q : {"*", "OR mailbox:bob@example.org", "quarterly OR mailbox:bob@example.org",
                                "NOT mailbox:alice@example.com", "(secret) OR (mailbox:bob*)", "secret",
                                "mailbox:bob@example.org", "* OR *", "(* OR mailbox:bob@example.org)"}) {
        Reply r = c.get("/api/search?q=" + web::url_component(q) + "&limit=100");
        if (r.status == 400) continue;  // a query the parser refuses widens nothing either
        ASSERT_EQ(r.status, 200) << q << r.body;
        auto j = nlohmann::json::parse(r.body);
        for (const auto& h : j["hits"]) {
            EXPECT_NE(h["docno"].get<std::uint64_t>(), g->bob_secret) << q;
            for (const auto& m : h["mailboxes"]) EXPECT_EQ(m.get<std::string>(), "alice@example.com") << q;
        }
        EXPECT_LE(j["total"].get<std::uint64_t>(), 2u) << q;
        Reply page = c.get("/search?q=" + web::url_component(q));
        EXPECT_EQ(page.body.find("data-docno=\"" + std::to_string(g->bob_secret) + "\""), std::string::npos) << q;
        EXPECT_EQ(page.body.find("bob@example.org <span"), std::string::npos) << q;  // no facet for bob's mailbox
    }
    Reply all = c.get("/api/search?q=*");
    EXPECT_EQ(nlohmann::json::parse(all.body)["total"], 2);
    EXPECT_EQ(nlohmann::json::parse(all.body)["total_exact"], true);
}

TEST_F(WebTest, SearchPageHasHitsFacetsAndQueryErrors) {
    start();
    Client c = logged_in("alice", "alice-pw");
    Reply r = c.get("/search?q=*");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("<p id=\"hit-count\" data-total=\"2\" data-exact=\"true\">2 messages</p>"), std::string::npos);
    EXPECT_NE(r.body.find("<li class=\"hit\" data-docno=\"" + std::to_string(g->alice_plain) + "\">"), std::string::npos);
    EXPECT_NE(r.body.find("class=\"hit-attachment\""), std::string::npos);
    EXPECT_NE(r.body.find("<aside id=\"facets\">"), std::string::npos);
    EXPECT_NE(r.body.find("data-facet=\"mailbox\""), std::string::npos);
    EXPECT_NE(r.body.find("data-facet=\"year\""), std::string::npos);
    // A facet link narrows the query.
    std::smatch m;
    std::regex re("class=\"facet-link\" href=\"(/search\\?q=date%3A2023[^\"]*)\"");
    ASSERT_TRUE(std::regex_search(r.body, m, re)) << r.body;
    std::string href = std::regex_replace(m[1].str(), std::regex("&amp;"), "&");
    Reply narrowed = c.get(href);
    EXPECT_NE(narrowed.body.find("data-total=\"2\""), std::string::npos);
    Reply bad = c.get("/search?q=" + web::url_component("(unbalanced"));
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("<p class=\"error\" id=\"query-error\">"), std::string::npos);
    EXPECT_EQ(c.get("/search?q=*&sort=sideways").status, 400);
    EXPECT_EQ(c.get("/search?q=*&sort=oldest").status, 200);
}

// ---- escaping and headers ----

TEST_F(WebTest, MailDerivedStringsAreEscapedAndHeadersSet) {
    start();
    Client c = logged_in("alice", "alice-pw");
    const std::string n = std::to_string(g->alice_hostile);
    Reply search = c.get("/search?q=hostile");
    Reply page = c.get("/m/" + n);
    for (const Reply* r : {&search, &page}) {
        ASSERT_EQ(r->status, 200);
        EXPECT_EQ(r->body.find("<script>alert"), std::string::npos);
        EXPECT_EQ(r->body.find("<img src=x"), std::string::npos);
        EXPECT_NE(r->body.find("&lt;script&gt;alert(1)&lt;/script&gt; hostile"), std::string::npos);
        EXPECT_EQ(r->header("content-security-policy").rfind(
                      "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'", 0),
                  0u);
        EXPECT_EQ(r->header("x-content-type-options"), "nosniff");
    }
    EXPECT_NE(page.body.find("&lt;script&gt;x&lt;/script&gt;.html"), std::string::npos);  // attachment name
    EXPECT_NE(page.body.find("id=\"show-html\" href=\"/m/" + n + "/html\""), std::string::npos);
    // The attachment is a download, never rendered.
    Reply att = c.get("/m/" + n + "/attachment/2");
    ASSERT_EQ(att.status, 200);
    EXPECT_EQ(att.header("content-disposition").rfind("attachment;", 0), 0u) << att.header("content-disposition");
    EXPECT_EQ(att.header("content-type"), "application/octet-stream");
    EXPECT_EQ(att.header("x-content-type-options"), "nosniff");
    // The HTML view: a sandboxed frame; its content under the sandbox CSP, without script.
    Reply frame = c.get("/m/" + n + "/html");
    EXPECT_NE(frame.body.find("<iframe id=\"html-frame\" sandbox src=\"/m/" + n + "/html/content\" referrerpolicy=\"no-referrer\""),
              std::string::npos);
    Reply content = c.get("/m/" + n + "/html/content");
    ASSERT_EQ(content.status, 200);
    EXPECT_EQ(content.header("content-security-policy").rfind("sandbox; default-src 'none'; img-src 'self' data:", 0), 0u);
    EXPECT_EQ(content.body.find("<script"), std::string::npos);
    EXPECT_EQ(content.body.find("onclick=\""), std::string::npos);
    // The cid: image comes from the archive behind the same rule.
    Reply cid = c.get("/m/" + n + "/cid/" + web::url_component("logo@example.com"));
    EXPECT_EQ(cid.status, 200);
    EXPECT_EQ(cid.header("content-type"), "image/png");
    EXPECT_EQ(cid.body.substr(1, 3), "PNG");
}

TEST_F(WebTest, OriginalDownloadIsByteExact) {
    start();
    Client c = logged_in("alice", "alice-pw");
    const std::string n = std::to_string(g->alice_plain);
    auto show = run_mailvault({"--archive", g->archive.string(), "show", n, "--raw"});
    ASSERT_EQ(show.exit_code, 0);
    Reply raw = c.get("/m/" + n + "/raw");
    EXPECT_EQ(raw.status, 200);
    EXPECT_EQ(raw.body, show.out);
    EXPECT_EQ(raw.header("content-disposition").rfind("attachment;", 0), 0u);
    Reply api = c.get("/api/m/" + n + "/raw");
    EXPECT_EQ(api.body, show.out);
    Reply pdf = c.get("/m/" + n + "/attachment/1");
    EXPECT_EQ(pdf.body.rfind("%PDF-1.4", 0), 0u);
}

// ---- audit ----

TEST_F(WebTest, AuditLogRecordsEveryActionInAChain) {
    start();
    Client bad = client();
    bad.login("bob", "wrong");
    Client c = logged_in("bob", "bob-pw");
    const std::string n = std::to_string(g->bob_secret);
    c.get("/search?q=plans");
    c.get("/m/" + n);
    c.get("/m/" + n + "/raw");
    c.get("/m/" + n + "/attachment/1");
    c.get("/m/" + std::to_string(g->alice_plain));  // denied
    c.get("/api/search?q=secret");
    c.post("/logout", {{"csrf", csrf_of_page(c)}});
    auto actions = audit_actions("bob");
    for (const char* want : {"login_failed", "login", "search", "view", "raw", "attachment", "denied", "api_search", "logout"})
        EXPECT_NE(std::find(actions.begin(), actions.end(), want), actions.end()) << want;
    auto log = web::read_audit(g->archive);
    ASSERT_TRUE(log);
    EXPECT_FALSE(log->broken_at);
    bool saw_query = false;
    for (const auto& r : log->records) {
        EXPECT_FALSE(r.json.value("client", "").empty());
        EXPECT_GT(r.time, 0);
        if (r.json.value("action", "") == "search" && r.json.value("query", "") == "plans") saw_query = true;
    }
    EXPECT_TRUE(saw_query);
    EXPECT_EQ(std::filesystem::status(web::audit_path(g->archive)).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // `mailvault audit` reads it; a rewritten line breaks the chain and is reported.
    auto out = run_mailvault({"--archive", g->archive.string(), "audit", "--user", "bob"});
    EXPECT_EQ(out.exit_code, 0) << out.err;
    EXPECT_NE(out.out.find("search query=plans"), std::string::npos) << out.out;
    auto js = run_mailvault({"--archive", g->archive.string(), "audit", "--json", "--since", "1d"});
    EXPECT_NE(js.out.find("\"action\":\"login\""), std::string::npos);
}

TEST_F(WebTest, AuditReportsARewrittenLog) {
    TempDir d;
    {
        auto log = web::AuditLog::open(d.path());
        ASSERT_TRUE(log);
        for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->append("search", "alice", "127.0.0.1", {{"query", "q" + std::to_string(i)}}));
    }
    {  // reopened: the chain goes on
        auto log = web::AuditLog::open(d.path());
        ASSERT_TRUE((*log)->append("view", "alice", "127.0.0.1", {{"docno", 1}}));
    }
    auto ok = web::read_audit(d.path());
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->records.size(), 4u);
    EXPECT_FALSE(ok->broken_at);
    std::string text = read_file(web::audit_path(d.path()));
    text.replace(text.find("\"q1\""), 4, "\"qX\"");
    write_file(web::audit_path(d.path()), text);
    auto broken = web::read_audit(d.path());
    ASSERT_TRUE(broken);
    ASSERT_TRUE(broken->broken_at);
    EXPECT_EQ(*broken->broken_at, 3u);  // the line after the rewritten one no longer matches
    auto out = run_mailvault({"--archive", d.path().string(), "audit"});
    EXPECT_EQ(out.exit_code, 1);
    EXPECT_NE(out.err.find("chain broken at line 3"), std::string::npos) << out.err;
}

// ---- API ----

TEST_F(WebTest, ApiWithoutWithAndWithRevokedToken) {
    start();
    Client c = client();
    EXPECT_EQ(c.get("/api/search?q=*").status, 401);
    EXPECT_EQ(c.get("/api/m/" + std::to_string(g->alice_plain)).status, 401);
    EXPECT_EQ(c.get("/api/search?q=*", {"Authorization: Bearer mv_0000000000000000"}).status, 401);
    auto created = run_mailvault({"--archive", g->archive.string(), "--config", g->config.string(), "token", "create", "alice"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    std::string token = created.out.substr(0, created.out.find('\n'));
    const std::string bearer = "Authorization: Bearer " + token;
    Reply r = c.get("/api/search?q=quarterly", {bearer});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["total"], 1);
    ASSERT_EQ(j["hits"].size(), 1u);
    EXPECT_EQ(j["hits"][0]["docno"], g->alice_plain);
    EXPECT_EQ(j["hits"][0]["attachments"][0], "report.pdf");
    Reply m = c.get("/api/m/" + std::to_string(g->alice_plain), {bearer});
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(nlohmann::json::parse(m.body)["subject"], "Quarterly report");
    EXPECT_EQ(c.get("/api/m/" + std::to_string(g->bob_secret), {bearer}).status, 404);
    // A browser page of another origin cannot use it.
    EXPECT_EQ(c.get("/api/search?q=*", {bearer, "Origin: http://evil.example"}).status, 403);
    EXPECT_EQ(c.get("/api/search?q=*", {bearer, "Origin: " + base_}).status, 200);
    EXPECT_EQ(c.get("/api/search?q=*&limit=x", {bearer}).status, 400);
    EXPECT_EQ(c.get("/api/search?q=" + web::url_component("(broken"), {bearer}).status, 400);
    auto list = run_mailvault({"--archive", g->archive.string(), "token", "list"});
    EXPECT_EQ(list.out.find(token), std::string::npos);  // only hashes are stored
    EXPECT_EQ(read_file(web::tokens_path(g->archive)).find(token), std::string::npos);
    const std::string id = list.out.substr(0, list.out.find(' '));
    auto revoke = run_mailvault({"--archive", g->archive.string(), "token", "revoke", id});
    ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
    EXPECT_EQ(c.get("/api/search?q=*", {bearer}).status, 401);
    EXPECT_NE(run_mailvault({"--archive", g->archive.string(), "--config", g->config.string(), "token", "create", "mallory"}).exit_code, 0);
}

// ---- bounds ----

TEST_F(WebTest, OversizedBodyIsRefusedWithoutReadingIt) {
    web::Limits l;
    l.max_body = 4096;
    start({}, l);
    int fd = connect_from(nullptr, server_->port());
    ASSERT_GE(fd, 0);
    std::string head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: 104857600\r\n\r\n";
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    std::string got;
    EXPECT_TRUE(closed_within(fd, 5000ms, &got));
    EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
    ::close(fd);
    // Chunked (no Content-Length): cut off once past the bound.
    Client c = client();
    std::string big(20000, 'a');
    Reply r = c.request("POST", "/login", "username=" + big, {"Content-Type: application/x-www-form-urlencoded", "Transfer-Encoding: chunked"});
    EXPECT_EQ(r.status, 413);
    // Headers beyond the connection's memory.
    fd = connect_from(nullptr, server_->port());
    std::string huge = "GET /login HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'b') + "\r\n\r\n";
    ::send(fd, huge.data(), huge.size(), MSG_NOSIGNAL);
    got.clear();
    EXPECT_TRUE(closed_within(fd, 5000ms, &got));
    EXPECT_TRUE(got.empty() || got.rfind("HTTP/1.1 4", 0) == 0) << got.substr(0, 100);
    ::close(fd);
    EXPECT_EQ(client().get("/login").status, 200);
}

TEST_F(WebTest, SlowLorisIsCutOffAndOthersAreServed) {
    web::Limits l;
    l.request_deadline_s = 2;
    l.idle_timeout_s = 30;
    l.per_ip_connections = 4;
    start({}, l);
    // A client dribbling its headers (one byte every 200 ms keeps it from ever being idle).
    int fd = connect_from("127.0.0.2", server_->port());
    ASSERT_GE(fd, 0);
    const std::string head = "GET /login HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    auto start_time = std::chrono::steady_clock::now();
    bool cut = false;
    for (int i = 0; i < 60 && !cut; ++i) {
        char byte = i < static_cast<int>(head.size()) ? head[i] : 'a';
        if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) cut = true;
        if (!cut && closed_within(fd, 200ms)) cut = true;
    }
    auto took = std::chrono::steady_clock::now() - start_time;
    EXPECT_TRUE(cut);
    EXPECT_LT(took, 8s);
    ::close(fd);
    EXPECT_EQ(client().get("/login").status, 200);
    // Connections per address are bounded; another address is still served at once. (A long
    // deadline here: the held connections must not be cut while the test looks.)
    server_.reset();
    l.request_deadline_s = 60;
    start({}, l);
    std::vector<int> held;
    for (int i = 0; i < 4; ++i) held.push_back(connect_from("127.0.0.2", server_->port()));
    std::this_thread::sleep_for(200ms);
    int extra = connect_from("127.0.0.2", server_->port());
    EXPECT_TRUE(extra < 0 || closed_within(extra, 5000ms));
    if (extra >= 0) ::close(extra);
    EXPECT_EQ(client().get("/login").status, 200);
    for (int h : held) ::close(h);
}

TEST_F(WebTest, LoginFloodIsThrottledPerUserAndPerAddress) {
    web::AppConfig ac;
    ac.throttle.free_failures = 3;
    ac.throttle.base_delay = 30s;
    start(ac);
    Client c = client();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(c.login("alice", "wrong" + std::to_string(i)).status, 401);
    // Now refused without checking, even with the right password.
    Reply r = c.login("alice", "alice-pw");
    EXPECT_EQ(r.status, 429);
    EXPECT_FALSE(r.header("retry-after").empty());
    EXPECT_TRUE(c.cookies.find("mv_session") == c.cookies.end());
    // The same address trying other names is throttled too (bob's password is right).
    EXPECT_EQ(c.login("bob", "bob-pw").status, 429);
    auto actions = audit_actions("alice");
    EXPECT_NE(std::find(actions.begin(), actions.end(), "login_throttled"), actions.end());
}

TEST_F(WebTest, TlsCookiesAreSecureWithHostPrefix) {
    TempDir d;
    auto r = run_program({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                          "-keyout", (d / "key.pem").string(), "-out", (d / "cert.pem").string(), "-days", "1", "-subj",
                          "/CN=127.0.0.1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    web::AppConfig ac;
    ac.tls = true;
    start(ac, {}, {read_file(d / "cert.pem"), read_file(d / "key.pem")});
    ASSERT_EQ(base_.rfind("https://", 0), 0u);
    Client c = client();
    c.insecure = true;
    Reply form = c.get("/login");
    ASSERT_EQ(form.status, 200);
    EXPECT_NE(form.header("set-cookie").find("__Host-mv_login="), std::string::npos);
    EXPECT_NE(form.header("set-cookie").find("; Secure"), std::string::npos);
    Reply in = c.post("/login", {{"username", "alice"}, {"password", "alice-pw"}, {"csrf", Client::csrf_of(form.body)}, {"next", "/search"}});
    ASSERT_EQ(in.status, 303) << in.body;
    const std::string cookie = in.header("set-cookie");
    EXPECT_EQ(cookie.rfind("__Host-mv_session=", 0), 0u) << cookie;
    EXPECT_NE(cookie.find("; Secure"), std::string::npos);
    EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
    EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
    EXPECT_EQ(cookie.find("Domain"), std::string::npos);
    EXPECT_EQ(c.get("/search").status, 200);
    // The plain-HTTP cookie name means nothing here.
    Client plain = client();
    plain.insecure = true;
    plain.cookies["mv_session"] = c.cookies["__Host-mv_session"];
    EXPECT_EQ(plain.get("/search").status, 303);
}

TEST_F(WebTest, NoMailIsShownWhenTheAuditLogCannotBeWritten) {
    TempDir d;
    const auto archive = d / "archive";
    write_file(d / "in" / "1.eml", k_alice_plain);
    ASSERT_EQ(run_mailvault({"--archive", archive.string(), "-q", "import", (d / "in").string(), "--mailbox", "alice@example.com"}).exit_code, 0);
    std::filesystem::create_directories(archive / "audit");
    std::filesystem::create_symlink("/dev/full", web::audit_path(archive));  // every write fails (ENOSPC)
    web::AppConfig ac;
    ac.archive_dir = archive;
    start(ac, {}, {}, 1);
    Client c = client();
    ASSERT_EQ(c.login("alice", "alice-pw").status, 303);
    for (const std::string path : {"/m/1", "/m/1/raw", "/m/1/attachment/1", "/search?q=*", "/api/search?q=*", "/api/m/1", "/api/m/1/raw"}) {
        Reply r = c.get(path);
        EXPECT_EQ(r.status, 503) << path;
        EXPECT_EQ(r.body.find("Quarterly"), std::string::npos) << path;
        EXPECT_EQ(r.body.find("%PDF"), std::string::npos) << path;
    }
}

// ---- live index, the real binary ----

TEST_F(WebTest, NewMailShowsUpWithoutRestart) {
    TempDir d;
    const auto archive = d / "archive";
    write_file(d / "in1" / "1.eml", k_alice_plain);
    ASSERT_EQ(run_mailvault({"--archive", archive.string(), "-q", "import", (d / "in1").string(), "--mailbox", "alice@example.com"}).exit_code, 0);
    web::AppConfig ac;
    ac.archive_dir = archive;
    start(ac, {}, {}, 1);
    Client c = client();
    ASSERT_EQ(c.login("alice", "alice-pw").status, 303);
    EXPECT_EQ(nlohmann::json::parse(c.get("/api/search?q=*").body)["total"], 1);
    write_file(d / "in2" / "2.eml", k_alice_hostile);
    ASSERT_EQ(run_mailvault({"--archive", archive.string(), "-q", "import", (d / "in2").string(), "--mailbox", "alice@example.com"}).exit_code, 0);
    EXPECT_EQ(nlohmann::json::parse(c.get("/api/search?q=*").body)["total"], 2);
}

// serve's worker thread keeps index blocks (query/block_cache.hpp, on by default): through a
// dozen commits that each add mail to an index of a few thousand words (B-trees of several
// levels, whose blocks glass reuses from one revision to the next), with searches between
// them that fill the cache, every answer is the one of the state just committed — each
// round's word found in its messages only, the totals right, the newest message's page there.
TEST_F(WebTest, SearchesThroughTheBlockCacheFollowEveryCommit) {
    TempDir d;
    const auto archive = d / "archive";
    constexpr int first = 600, per_round = 40, rounds = 12;
    int next = 0;
    // Messages with words of their own (v<n>, w<n % 97>) and the word of their round.
    auto import = [&](int round, int count) {
        const auto dir = d / ("in" + std::to_string(round));
        for (int i = 0; i < count; ++i, ++next) {
            std::string body = "round" + std::to_string(round) + "x shared";
            for (int j = 0; j < 30; ++j) body += " v" + std::to_string(next * 31 + j) + " w" + std::to_string((next + j) % 97);
            write_file(dir / (std::to_string(next) + ".eml"),
                       "From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: round " + std::to_string(round) +
                           " number " + std::to_string(next) + "\r\nDate: Tue, 25 Apr 2023 10:02:11 +0000\r\nMessage-ID: <m" +
                           std::to_string(next) + "@example.com>\r\n\r\n" + body + "\r\n");
        }
        ASSERT_EQ(run_mailvault({"--archive", archive.string(), "-q", "import", dir.string(), "--mailbox", "alice@example.com"}).exit_code, 0);
    };
    import(0, first);
    web::AppConfig ac;
    ac.archive_dir = archive;
    ac.result_cache = 0;  // every request searches
    ASSERT_GT(ac.block_cache, 0u) << "the block cache is on by default";
    start(ac, {}, {}, 1);
    Client c = client();
    ASSERT_EQ(c.login("alice", "alice-pw").status, 303);
    auto total = [&](const std::string& q) { return nlohmann::json::parse(c.get("/api/search?q=" + q + "&limit=5").body)["total"].get<int>(); };
    EXPECT_EQ(total("*"), first);
    for (int round = 1; round <= rounds; ++round) {
        import(round, per_round);
        const int all = first + round * per_round;
        EXPECT_EQ(total("*"), all) << "round " << round;
        EXPECT_EQ(total("shared"), all) << "round " << round;
        for (int r = 0; r <= round; ++r) EXPECT_EQ(total("round" + std::to_string(r) + "x"), r == 0 ? first : per_round) << "round " << round << ", word of round " << r;
        EXPECT_EQ(total("round" + std::to_string(round + 1) + "x"), 0) << "round " << round;
        for (int w = 0; w < 97; w += 7) EXPECT_GT(total("w" + std::to_string(w)), 0) << "round " << round;
        EXPECT_EQ(total("v" + std::to_string((next - 1) * 31)), 1) << "round " << round;
        auto hits = nlohmann::json::parse(c.get("/api/search?q=v" + std::to_string((next - 1) * 31)).body)["hits"];
        ASSERT_EQ(hits.size(), 1u);
        Reply page = c.get("/api/m/" + std::to_string(hits[0]["docno"].get<std::uint64_t>()));
        EXPECT_EQ(page.status, 200);
        EXPECT_NE(page.body.find("number " + std::to_string(next - 1)), std::string::npos) << page.body;
    }
}

// serve keeps recent results per worker thread (query/result_cache.hpp). With one thread every
// request meets the same cache: a user never gets the cached results of another user's same
// query, and the cached answer is the answer a new search gives.
TEST_F(WebTest, CachedResultsAreOnlyEverTheAskingUsers) {
    start({}, {}, {}, 1);
    Client alice = client(), bob = client();
    ASSERT_EQ(alice.login("alice", "alice-pw").status, 303);
    ASSERT_EQ(bob.login("bob", "bob-pw").status, 303);
    auto docnos = [](Client& c, const std::string& q) {
        auto j = nlohmann::json::parse(c.get("/api/search?q=" + q).body);
        std::set<std::uint64_t> out;
        for (const auto& h : j["hits"]) out.insert(h["docno"].get<std::uint64_t>());
        return out;
    };
    for (const std::string q : {"*", "NOT%20zzznothing", "subject%3Asecret%20OR%20subject%3Aquarterly"}) {
        auto first = docnos(alice, q);
        auto again = docnos(alice, q);  // from the cache
        EXPECT_EQ(again, first) << q;
        auto theirs = docnos(bob, q);
        EXPECT_FALSE(first.empty()) << q;
        EXPECT_FALSE(theirs.empty()) << q;
        for (auto d : theirs) EXPECT_EQ(first.count(d), 0u) << q << ": bob got alice's docno " << d;
        EXPECT_EQ(first.count(g->bob_secret), 0u) << q;
        EXPECT_EQ(theirs.count(g->bob_secret), 1u) << q;
    }
}

// ---- header link, time zone ----

TEST_F(WebTest, AdminLinkInTheHeaderOnlyForAdmins) {
    start();
    Client admin = logged_in("root", "alice-pw");
    Reply page = admin.get("/search?q=quarterly");
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("<a id=\"admin-link\" href=\"/admin/sources\">Admin</a>"), std::string::npos) << page.body;
    Reply msg = admin.get("/m/" + std::to_string(g->alice_plain));
    ASSERT_EQ(msg.status, 200);
    EXPECT_NE(msg.body.find("id=\"admin-link\""), std::string::npos);
    EXPECT_EQ(admin.get("/admin/sources").status, 200);
    for (const char* user : {"alice", "auditor"}) {
        Client c = logged_in(user, "alice-pw");
        Reply p = c.get("/search?q=quarterly");
        ASSERT_EQ(p.status, 200);
        EXPECT_EQ(p.body.find("admin-link"), std::string::npos) << user;
        EXPECT_EQ(p.body.find("/admin/"), std::string::npos) << user;
        EXPECT_EQ(c.get("/admin/sources").status, 404) << user;
    }
}

// TZ for one test (a POSIX rule: no tzdata needed), restored after.
class ScopedTz {
  public:
    explicit ScopedTz(const char* tz) {
        if (const char* old = std::getenv("TZ")) old_ = old, had_ = true;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~ScopedTz() {
        if (had_) setenv("TZ", old_.c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }

  private:
    std::string old_;
    bool had_ = false;
};

TEST_F(WebTest, PagesShowDatesInTheArchiveTimeZoneAndTheApiInUtc) {
    // UTC+14: alice's report of 2023-04-25T10:02:11Z is 2023-04-26 00:02:11 there, and the
    // hostile mail of 2023-04-26T10:00:00Z is already 2023-04-27.
    const char* tz = "<+14>-14";
    ScopedTz zone(tz);
    start();
    Client c = logged_in("alice", "alice-pw");
    const std::string n = std::to_string(g->alice_plain);
    Reply page = c.get("/search?q=quarterly");
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("<span class=\"hit-date\"><time datetime=\"2023-04-25T10:02:11Z\">2023-04-26 00:02 +1400</time></span>"),
              std::string::npos) << page.body;
    Reply msg = c.get("/m/" + n);
    ASSERT_EQ(msg.status, 200);
    EXPECT_NE(msg.body.find("<dd id=\"message-date\"><time datetime=\"2023-04-25T10:02:11Z\">2023-04-26 00:02:11 +1400</time></dd>"),
              std::string::npos) << msg.body;
    // The JSON API stays ISO 8601 UTC.
    auto api = nlohmann::json::parse(c.get("/api/search?q=quarterly").body);
    ASSERT_EQ(api["hits"].size(), 1u);
    EXPECT_EQ(api["hits"][0]["date"], "2023-04-25T10:02:11Z");
    EXPECT_EQ(nlohmann::json::parse(c.get("/api/m/" + n).body)["date"], "2023-04-25T10:02:11Z");
    // date: typed in the search box is the same local day as on the CLI.
    auto day = nlohmann::json::parse(c.get("/api/search?q=" + web::url_component("date:2023-04-26")).body);
    ASSERT_EQ(day["total"], 1) << day.dump();
    EXPECT_EQ(day["hits"][0]["docno"], g->alice_plain);
    Reply box = c.get("/search?q=" + web::url_component("date:2023-04-26"));
    EXPECT_NE(box.body.find("id=\"hit-count\" data-total=\"1\""), std::string::npos) << box.body;
    EXPECT_NE(box.body.find("data-docno=\"" + n + "\""), std::string::npos);
    auto cli = run_mailvault({"--archive", g->archive.string(), "search", "--json", "date:2023-04-26 mailbox:alice@example.com"}, "",
                             {std::string("TZ=") + tz});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    ASSERT_NE(cli.out.find('\n'), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(cli.out.substr(0, cli.out.find('\n')))["docno"], g->alice_plain);
    EXPECT_EQ(cli.out.find('\n'), cli.out.size() - 1) << cli.out;  // one hit
    // The explicit UTC form means the UTC day on both.
    auto utc = nlohmann::json::parse(c.get("/api/search?q=" + web::url_component("date:2023-04-26Z")).body);
    ASSERT_EQ(utc["total"], 1);
    EXPECT_EQ(utc["hits"][0]["docno"], g->alice_hostile);
}

TEST_F(WebTest, ServeCommandListensAndStopsOnSigterm) {
    TempDir d;
    write_file(d / "mailvault.toml", read_file(g->config) + "[serve]\nlisten = \"127.0.0.1:0\"\n");
    int err_pipe[2];
    ASSERT_EQ(::pipe(err_pipe), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(err_pipe[1], 2);
        ::close(err_pipe[0]);
        std::string bin = mailvault_binary(), arch = g->archive.string(), cfg = (d / "mailvault.toml").string();
        ::execl(bin.c_str(), bin.c_str(), "--archive", arch.c_str(), "--config", cfg.c_str(), "serve", nullptr);
        ::_exit(127);
    }
    ::close(err_pipe[1]);
    std::string err;
    std::smatch m;
    const std::regex re("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!std::regex_search(err, m, re) && std::chrono::steady_clock::now() < deadline) {
        pollfd p{err_pipe[0], POLLIN, 0};
        if (::poll(&p, 1, 500) <= 0) continue;
        char buf[512];
        ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
        if (n <= 0) break;
        err.append(buf, static_cast<std::size_t>(n));
    }
    ASSERT_TRUE(std::regex_search(err, m, re)) << err;
    Client c("http://127.0.0.1:" + m[1].str());
    Reply r = c.get("/login");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(c.login("alice", "alice-pw").status, 303);
    EXPECT_EQ(c.get("/m/" + std::to_string(g->alice_plain)).status, 200);
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(err_pipe[0]);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace mv::test
