// GET /m/{docno}/attachments.zip over HTTP: the zip unpacked by Python's zipfile and every
// member compared with `show --attachment N`; the link on the message page; the access rule
// (another user's docno is the same 404 as a missing one), the audit record, the headers.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "index/mime/parser.hpp"
#include "query/export.hpp"
#include "support/testutil.hpp"
#include "web/app.hpp"
#include "web/audit.hpp"
#include "web/auth.hpp"
#include "web/http.hpp"

namespace mv::test {
namespace {

std::string attachment(const std::string& params, const std::string& type, const std::string& body) {
    return "--b\r\nContent-Type: " + type + "\r\nContent-Disposition: attachment" + params + "\r\n\r\n" + body + "\r\n";
}

std::string alice_mail() {
    std::string m =
        "From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: Many files\r\n"
        "Date: Tue, 25 Apr 2023 10:02:11 +0000\r\nMessage-ID: <zip1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFiles attached.\r\n";
    m += attachment("; filename=\"report.pdf\"", "application/pdf", "%PDF-1.4 one");
    m += attachment("; filename=\"report.pdf\"", "application/pdf", "%PDF-1.4 two");
    m += attachment("; filename=\"../../../etc/passwd\"", "text/plain", "root:x:0:0");
    m += attachment("; filename*=UTF-8''..%5C..%5CCON", "text/plain", "device");
    m += attachment("; filename*=UTF-8''Gr%C3%BC%C3%9Fe%0A.txt", "text/plain", "hallo");
    m += attachment("", "image/png", "not really a png");
    std::string big;
    for (int i = 0; i < 5000; ++i) big += "line " + std::to_string(i) + " of a long text attachment\r\n";
    m += attachment("; filename=\"big.txt\"", "text/plain", big);
    m += "--b--\r\n";
    return m;
}

const char* k_alice_plain =
    "From: Carol <carol@example.com>\r\nTo: alice@example.com\r\nSubject: No files\r\n"
    "Date: Wed, 26 Apr 2023 10:02:11 +0000\r\nMessage-ID: <plain1@example.com>\r\n\r\nJust text.\r\n";

const char* k_bob_mail =
    "From: Dave <dave@example.org>\r\nTo: bob@example.org\r\nSubject: Bob secret plans\r\n"
    "Date: Thu, 27 Apr 2023 09:00:00 +0000\r\nMessage-ID: <s1@example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nplans\r\n"
    "--x\r\nContent-Type: text/plain; name=\"secret.txt\"\r\nContent-Disposition: attachment; filename=\"secret.txt\"\r\n\r\n"
    "top secret\r\n--x--\r\n";

struct Reply {
    long status = 0;
    std::multimap<std::string, std::string> headers;
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

class Client {
  public:
    explicit Client(std::string base) : base_(std::move(base)) {}
    Reply request(const std::string& path, const std::string& post = "", bool is_post = false) {
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
        curl_slist* hs = nullptr;
        std::string cookie;
        for (const auto& [k, v] : cookies_) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
        if (!cookie.empty()) hs = curl_slist_append(hs, ("Cookie: " + cookie).c_str());
        if (is_post) {
            hs = curl_slist_append(hs, "Content-Type: application/x-www-form-urlencoded");
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, post.c_str());
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(post.size()));
        }
        if (hs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
        CURLcode rc = curl_easy_perform(c);
        EXPECT_EQ(rc, CURLE_OK) << path << ": " << curl_easy_strerror(rc);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(hs);
        curl_easy_cleanup(c);
        auto range = r.headers.equal_range("set-cookie");
        for (auto it = range.first; it != range.second; ++it) {
            const std::string& v = it->second;
            auto eq = v.find('=');
            auto semi = v.find(';');
            cookies_[v.substr(0, eq)] = v.substr(eq + 1, semi - eq - 1);
        }
        return r;
    }
    Reply get(const std::string& path) { return request(path); }
    void login(const std::string& user, const std::string& pw) {
        Reply form = get("/login");
        std::smatch m;
        static const std::regex re("name=\"csrf\" value=\"([0-9a-f]+)\"");
        ASSERT_TRUE(std::regex_search(form.body, m, re));
        Reply r = request("/login", "username=" + user + "&password=" + pw + "&csrf=" + m[1].str() + "&next=/", true);
        ASSERT_EQ(r.status, 303) << r.body;
    }

  private:
    std::string base_;
    std::map<std::string, std::string> cookies_;
};

struct Shared {
    TempDir dir;
    std::filesystem::path archive;
    std::uint64_t alice_files = 0, alice_plain = 0, bob = 0;
    std::vector<UserConfig> users;
};
Shared* g = nullptr;

std::uint64_t docno_of(const std::string& msgid) {
    auto r = run_mailvault({"--archive", g->archive.string(), "search", "--json", "msgid:" + msgid});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto nl = r.out.find('\n');
    if (nl == std::string::npos) return 0;
    return nlohmann::json::parse(r.out.substr(0, nl)).value("docno", std::uint64_t{0});
}

// Unpacks a zip with Python's zipfile into `dest` (member i as file "i") and returns the
// member names in order; fails the test when a CRC or the structure is wrong.
std::vector<std::string> unzip(const std::string& zip, const std::filesystem::path& dest) {
    std::filesystem::create_directories(dest);
    write_file(dest / "in.zip", zip);
    const std::string script =
        "import json, os, sys, zipfile\n"
        "z = zipfile.ZipFile(sys.argv[1])\n"
        "assert z.testzip() is None\n"
        "names = []\n"
        "for i, info in enumerate(z.infolist()):\n"
        "    open(os.path.join(sys.argv[2], str(i)), 'wb').write(z.read(info))\n"
        "    names.append(info.filename)\n"
        "print(json.dumps(names))\n";
    auto r = run_program({"/usr/bin/python3", "-c", script, (dest / "in.zip").string(), dest.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return {};
    return nlohmann::json::parse(r.out).get<std::vector<std::string>>();
}

class ZipRoute : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        signal(SIGPIPE, SIG_IGN);
        index::init_mime();
        g = new Shared;
        g->archive = g->dir / "archive";
        write_file(g->dir / "alice" / "a1.eml", alice_mail());
        write_file(g->dir / "alice" / "a2.eml", k_alice_plain);
        write_file(g->dir / "bob" / "b1.eml", k_bob_mail);
        for (const auto& [who, mailbox] : {std::pair<std::string, std::string>{"alice", "alice@example.com"}, {"bob", "bob@example.org"}}) {
            auto r = run_mailvault({"--archive", g->archive.string(), "--quiet", "import", (g->dir / who).string(),
                                    "--mailbox", mailbox, "--folder", "Inbox"});
            ASSERT_EQ(r.exit_code, 0) << r.err;
        }
        g->alice_files = docno_of("zip1@example.com");
        g->alice_plain = docno_of("plain1@example.com");
        g->bob = docno_of("s1@example.org");
        ASSERT_TRUE(g->alice_files && g->alice_plain && g->bob);
        auto hash = run_mailvault({"passwd"}, "pw\n");
        ASSERT_EQ(hash.exit_code, 0) << hash.err;
        std::string h = hash.out.substr(0, hash.out.find('\n'));
        g->users.push_back({"alice", h, {"alice@example.com"}, "user"});
        g->users.push_back({"bob", h, {"bob@*"}, "user"});
        g->users.push_back({"auditor", h, {"*"}, "auditor"});
    }
    static void TearDownTestSuite() {
        delete g;
        g = nullptr;
    }
    void SetUp() override {
        web::AppConfig ac;
        ac.archive_dir = g->archive;
        auto app = web::App::create(ac, std::make_unique<web::LocalAuthenticator>(g->users));
        ASSERT_TRUE(app) << app.error().message;
        app_ = std::move(*app);
        web::Limits limits;
        limits.threads = 2;
        web::App* a = app_.get();
        auto s = web::HttpServer::start("127.0.0.1", 0, limits, [a](const web::Request& r) { return a->handle(r); });
        ASSERT_TRUE(s) << s.error().message;
        server_ = std::move(*s);
        base_ = "http://127.0.0.1:" + std::to_string(server_->port());
    }
    Client logged_in(const std::string& user) {
        Client c(base_);
        c.login(user, "pw");
        return c;
    }
    std::unique_ptr<web::App> app_;
    std::unique_ptr<web::HttpServer> server_;
    std::string base_;
};

TEST_F(ZipRoute, EveryMemberIsShowsAttachmentByteForByte) {
    Client c = logged_in("alice");
    const std::string n = std::to_string(g->alice_files);
    Reply page = c.get("/m/" + n);
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("href=\"/m/" + n + "/attachments.zip\""), std::string::npos);

    Reply r = c.get("/m/" + n + "/attachments.zip");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/zip");
    EXPECT_EQ(r.header("content-disposition").rfind("attachment; filename=\"" + n + "-attachments.zip\"", 0), 0u)
        << r.header("content-disposition");
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_LT(r.body.size(), 100000u);  // the big text was deflated

    TempDir dir;
    auto names = unzip(r.body, dir.path());
    auto listed = run_mailvault({"--archive", g->archive.string(), "show", "--json", n});
    auto atts = nlohmann::json::parse(listed.out)["attachments"];
    ASSERT_EQ(names.size(), atts.size());
    ASSERT_EQ(names.size(), 7u);
    for (std::size_t i = 0; i < names.size(); ++i) {
        SCOPED_TRACE(names[i]);
        auto show = run_mailvault({"--archive", g->archive.string(), "show", n, "--attachment", std::to_string(i + 1)});
        ASSERT_EQ(show.exit_code, 0) << show.err;
        EXPECT_EQ(read_file(dir / std::to_string(i)), show.out);
        // The names export --attachments gives them: safe, unique.
        EXPECT_EQ(names[i].rfind(n + "-" + std::to_string(i + 1) + "-", 0), 0u);
        EXPECT_EQ(names[i].find('/'), std::string::npos);
        EXPECT_EQ(names[i].find('\\'), std::string::npos);
        EXPECT_EQ(names[i].find('\n'), std::string::npos);
    }
    EXPECT_EQ(names[0], n + "-1-report.pdf");
    EXPECT_EQ(names[1], n + "-2-report.pdf");
    EXPECT_EQ(names[2], n + "-3-passwd");
    EXPECT_EQ(names[3], n + "-4-_CON");
    EXPECT_EQ(names[4], n + "-5-Grüße_.txt");
    EXPECT_EQ(names[5], n + "-6-attachment.png");

    // On record like an attachment download.
    auto log = web::read_audit(g->archive);
    ASSERT_TRUE(log);
    bool seen = false;
    for (const auto& rec : log->records)
        if (rec.json.value("action", "") == "attachments_zip" && rec.json.value("user", "") == "alice" &&
            rec.json.value("docno", std::uint64_t{0}) == g->alice_files && rec.json.value("files", 0) == 7)
            seen = true;
    EXPECT_TRUE(seen);
}

TEST_F(ZipRoute, AnotherUsersDocnoIsTheSameNotFoundAsAMissingOne) {
    Client alice = logged_in("alice");
    const std::string bob = std::to_string(g->bob);
    Reply missing = alice.get("/m/999999/attachments.zip");
    Reply other = alice.get("/m/" + bob + "/attachments.zip");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(other.status, 404);
    EXPECT_EQ(other.body, missing.body);
    EXPECT_EQ(other.body.find("secret"), std::string::npos);
    for (const std::string& path : std::vector<std::string>{"/m/" + bob + "/attachments.zip/x", "/m/abc/attachments.zip", "/m/0/attachments.zip",
                                   "/m/" + std::to_string(g->alice_files) + "/attachments.zip/../../" + bob}) {
        EXPECT_EQ(alice.get(path).status, 404) << path;
    }
    // A message without attachments: no link, no zip.
    const std::string plain = std::to_string(g->alice_plain);
    EXPECT_EQ(alice.get("/m/" + plain).body.find("attachments.zip"), std::string::npos);
    EXPECT_EQ(alice.get("/m/" + plain + "/attachments.zip").status, 404);
    // Bob and the auditor get Bob's.
    for (const std::string user : {"bob", "auditor"}) {
        Client c = logged_in(user);
        Reply r = c.get("/m/" + bob + "/attachments.zip");
        ASSERT_EQ(r.status, 200) << user;
        TempDir dir;
        auto names = unzip(r.body, dir.path());
        EXPECT_EQ(names, std::vector<std::string>{bob + "-1-secret.txt"});
        EXPECT_EQ(read_file(dir / "0"), "top secret");
    }
    // Without a session: the login page, no bytes.
    Client anon(base_);
    Reply r = anon.get("/m/" + bob + "/attachments.zip");
    EXPECT_EQ(r.status, 303);
    EXPECT_EQ(r.body.find("top secret"), std::string::npos);
    // The refusal is on record.
    auto log = web::read_audit(g->archive);
    ASSERT_TRUE(log);
    bool denied = false;
    for (const auto& rec : log->records)
        if (rec.json.value("action", "") == "denied" && rec.json.value("user", "") == "alice" &&
            rec.json.value("path", "") == "/m/" + bob + "/attachments.zip")
            denied = true;
    EXPECT_TRUE(denied);
}

}  // namespace
}  // namespace mv::test
