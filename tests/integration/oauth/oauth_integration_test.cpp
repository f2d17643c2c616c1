// Delegated OAuth end to end: `mailvault connect` (device code) against tools/fake-graph's
// identity platform, the token store in the archive, XOAUTH2 to the test Dovecot (IMAP, POP3)
// with the tokens it issues, rotation, invalid_grant, and the authorization code + PKCE flow.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>

#include "fake_graph_fixture.hpp"
#include "ingest/oauth/delegated.hpp"
#include "support/dovecot.hpp"
#include "support/testutil.hpp"

namespace mv::test {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

class OAuthTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string why;
        dovecot = Dovecot::start(&why);
        if (!dovecot) {
            if (servers_required()) FAIL() << why;
            GTEST_SKIP() << why;
        }
        // Delegated access tokens are "token-USER": what the test Dovecot's introspection accepts.
        fake = std::make_unique<graph::FakeGraph>(dir.path() / "fake", std::vector<std::string>{
                                                                             "--generate", "0", "--delegated-token-prefix", "token-",
                                                                             "--sign-in-user", "alice"});
        ASSERT_TRUE(fake->ok()) << fake->log();
    }

    // A [[source]] for alice on the Dovecot, signing in with xoauth2 through the fake.
    std::string source_toml(const std::string& name, const std::string& type, const std::string& extra = "") const {
        SourceConfig c = dovecot->source(name, type, "alice", "tls");
        std::string t = "[[source]]\nname = \"" + name + "\"\ntype = \"" + type + "\"\n";
        for (const auto& [k, v] : c.strings)
            if (k != "password") t += k + " = \"" + v + "\"\n";
        t += "auth = \"xoauth2\"\ntenant = \"" + graph::k_tenant + "\"\nclient_id = \"" + graph::k_client_id +
             "\"\nauthority_url = \"" + fake->url() + "\"\n" + extra + "\n";
        return t;
    }
    void config(const std::string& sources) {
        write_file(dir.path() / "mailvault.toml", "[archive]\npath = \"" + (dir.path() / "archive").string() + "\"\n\n" + sources);
    }
    RunResult mv(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
        std::vector<std::string> a = {"--archive", (dir.path() / "archive").string(), "--config", (dir.path() / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a, "", env);
    }
    RunResult connect(const std::string& name, const std::string& outcomes = "approve") {
        fake->control("device-script?outcomes=" + outcomes + "&interval=1");
        return mv({"connect", name});
    }
    fs::path store_file(const std::string& name) const { return dir.path() / "archive" / "oauth" / (name + ".json"); }
    json store(const std::string& name) const { return json::parse(read_file(store_file(name))); }
    json delegated() { return fake->get("/_delegated"); }

    TempDir dir;
    std::unique_ptr<Dovecot> dovecot;
    std::unique_ptr<graph::FakeGraph> fake;
};

std::string message(const std::string& subject) {
    return "From: a@example.com\r\nTo: alice@example.com\r\nSubject: " + subject +
           "\r\nDate: Mon, 20 Nov 2023 10:00:00 +0000\r\nMessage-ID: <" + subject + "@oauth.test>\r\n\r\nbody\r\n";
}

TEST_F(OAuthTest, DeviceCodeConnectStoresTheGrant0600) {
    config(source_toml("mail", "imap"));
    fake->control("device-script?outcomes=pending,pending,approve&interval=1");
    auto r = mv({"connect", "mail"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("open http://127\\.0\\.0\\.1:[0-9]+/devicelogin in a browser and enter the code FAKE[0-9]{5}")))
        << r.out;
    EXPECT_NE(r.out.find("scopes: offline_access openid https://outlook.office.com/IMAP.AccessAsUser.All"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("connect mail: signed in as alice;"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("authorization_pending"), std::string::npos) << r.err;
    EXPECT_EQ(delegated()["device_polls"], 3);

    struct stat st{};
    ASSERT_EQ(::stat(store_file("mail").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    json g = store("mail");
    std::string rt = g["refresh_token"];
    EXPECT_FALSE(rt.empty());
    EXPECT_EQ(g["account"], "alice");
    EXPECT_EQ(g["client_id"], graph::k_client_id);
    EXPECT_EQ(r.out.find(rt), std::string::npos);
    EXPECT_EQ(r.err.find(rt), std::string::npos);
}

TEST_F(OAuthTest, EachDeviceCodeErrorHasItsOwnLine) {
    config(source_toml("mail", "imap"));
    struct Case {
        std::string outcome, expect;
    };
    std::vector<Case> cases = {{"decline", "the sign-in was declined (authorization_declined)"},
                               {"expire", "the code expired before the sign-in was completed (expired_token)"},
                               {"bad_code", "the identity platform does not know this device code (bad_verification_code)"}};
    for (const auto& c : cases) {
        auto r = connect("mail", "pending," + c.outcome);
        EXPECT_EQ(r.exit_code, 3) << c.outcome << r.err;
        EXPECT_NE(r.err.find("mailvault: source 'mail': " + c.expect), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(store_file("mail")));
    }
}

TEST_F(OAuthTest, SlowDownPollsMoreSlowly) {
    config(source_toml("mail", "imap"));
    auto r = connect("mail", "slow_down,approve");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("slow_down"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("now every 6 s"), std::string::npos) << r.err;
    EXPECT_EQ(delegated()["device_polls"], 2);
}

TEST_F(OAuthTest, ConnectRefusesWhatNeedsNoSignIn) {
    config(source_toml("mail", "imap", "token_env = \"X\"\n") + "[[source]]\nname = \"files\"\ntype = \"maildir\"\npath = \"/nonexistent\"\n");
    auto r = mv({"connect", "files"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("needs no sign-in"), std::string::npos) << r.err;
    r = mv({"connect", "mail"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("token_env"), std::string::npos) << r.err;
    r = mv({"connect", "nosuch"});
    EXPECT_EQ(r.exit_code, 2);
}

TEST_F(OAuthTest, ImapAndPop3SyncWithRotatedTokens) {
    for (int i = 0; i < 3; ++i) dovecot->deliver("alice", "INBOX", message("oauth" + std::to_string(i)));
    dovecot->fix_owner();
    config(source_toml("mail", "imap") + source_toml("pop", "pop3"));
    ASSERT_EQ(connect("mail").exit_code, 0);
    ASSERT_EQ(connect("pop").exit_code, 0);
    EXPECT_NE(store("pop")["scope"].get<std::string>().find("POP.AccessAsUser.All"), std::string::npos);
    std::string rt_before = store("mail")["refresh_token"];
    struct stat before{};
    ASSERT_EQ(::stat(store_file("mail").c_str(), &before), 0);

    auto r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("mail: 3 new"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pop: 0 new, 3 duplicates"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("token-alice"), std::string::npos);

    // The platform rotated the refresh token: the store holds the new one, replaced by rename.
    std::string rt_after = store("mail")["refresh_token"];
    EXPECT_NE(rt_after, rt_before);
    struct stat after{};
    ASSERT_EQ(::stat(store_file("mail").c_str(), &after), 0);
    EXPECT_NE(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_mode & 0777, 0600u);
    EXPECT_GE(delegated()["rotations"].get<long>(), 2);
    std::size_t files = 0;
    for (auto& e : fs::directory_iterator(dir.path() / "archive" / "oauth")) files += e.is_regular_file();
    EXPECT_EQ(files, 2u);

    // The spent token no longer works; the newest does (a second sync, and check).
    ingest::oauth::DelegatedApp app;
    app.source = "mail";
    app.authority_url = fake->url();
    app.tenant = graph::k_tenant;
    app.client_id = graph::k_client_id;
    app.scopes = ingest::oauth::default_scopes("imap");
    auto old = ingest::oauth::refresh_tokens(app, rt_before, ingest::oauth::default_transport());
    ASSERT_FALSE(old);
    EXPECT_NE(old.error().message.find("run `mailvault connect mail` again"), std::string::npos);
    r = mv({"check", "mail"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("INBOX"), std::string::npos) << r.out;
}

TEST_F(OAuthTest, InvalidGrantFailsOnlyThatSource) {
    fs::path md = dir.path() / "md";
    for (const char* d : {"cur", "new", "tmp"}) fs::create_directories(md / d);
    write_file(md / "cur" / "a:2,S", "From: a@x.test\nSubject: local\nMessage-ID: <local@x>\n\nbody\n");
    std::string local = "[[source]]\nname = \"local\"\ntype = \"maildir\"\npath = \"" + md.string() + "\"\n\n";
    config(source_toml("mail", "imap") + local);
    ASSERT_EQ(connect("mail").exit_code, 0);
    fake->control("revoke-refresh-tokens");

    auto r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const std::string line = "mailvault: source 'mail': the stored sign-in is no longer valid (AADSTS50173 invalid_grant: expired, "
                             "revoked or the password changed): run `mailvault connect mail` again\n";
    EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("connect mail` again", r.err.find(line) + line.size()), std::string::npos) << "one line only:\n" << r.err;
    EXPECT_NE(r.err.find("local: 1 new"), std::string::npos) << r.err;

    r = mv({"sync", "mail"});
    EXPECT_EQ(r.exit_code, 3) << r.err;

    // Expiry (inactivity) reads the same way, with its own code; connect again mends it.
    ASSERT_EQ(connect("mail").exit_code, 0);
    fake->control("expire-refresh-tokens");
    r = mv({"sync", "mail"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("(AADSTS700082 invalid_grant"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("run `mailvault connect mail` again"), std::string::npos) << r.err;
    ASSERT_EQ(connect("mail").exit_code, 0);
    r = mv({"sync", "mail"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(OAuthTest, NotConnectedYet) {
    config(source_toml("mail", "imap"));
    auto r = mv({"check", "mail"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("source 'mail': not signed in"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("run `mailvault connect mail` first"), std::string::npos) << r.err;
}

TEST_F(OAuthTest, Xoauth2ErrorChallengeFromDovecot) {
    // A token Dovecot's introspection refuses: Dovecot sends the base64 JSON challenge, the client
    // answers with an empty line and reports the final NO / -ERR.
    config(source_toml("mail", "imap", "token_env = \"MV_TEST_TOKEN\"\n") + source_toml("pop", "pop3", "token_env = \"MV_TEST_TOKEN\"\n"));
    for (const char* name : {"mail", "pop"}) {
        auto r = mv({"check", name}, {"MV_TEST_TOKEN=token-nobody-x"});
        EXPECT_EQ(r.exit_code, 3) << name << r.err;
        EXPECT_NE(r.err.find("authentication failed for user 'alice'"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("token-nobody-x"), std::string::npos);
    }
    auto ok = mv({"check", "mail"}, {"MV_TEST_TOKEN=token-alice"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// The authorization code flow the web "Connect account" page drives: authorize (the fake signs
// the user in and redirects), redeem with the PKCE verifier, store; a wrong verifier is refused.
TEST_F(OAuthTest, AuthorizationCodeWithPkce) {
    config(source_toml("mail", "imap"));
    ingest::oauth::DelegatedApp app;
    app.source = "mail";
    app.authority_url = fake->url();
    app.tenant = graph::k_tenant;
    app.client_id = graph::k_client_id;
    app.scopes = ingest::oauth::default_scopes("imap");
    const std::string redirect = "http://127.0.0.1:8025/oauth/callback";
    auto authorize = [&](const ingest::oauth::Pkce& pkce, const std::string& state) {
        // The browser: one GET, the redirect's Location printed, not followed.
        const std::string py =
            "import sys, http.client, urllib.parse\n"
            "u = urllib.parse.urlsplit(sys.argv[1])\n"
            "c = http.client.HTTPConnection(u.netloc)\n"
            "c.request('GET', u.path + '?' + u.query)\n"
            "print(c.getresponse().getheader('Location') or '', end='')\n";
        auto r = run_program({"/usr/bin/python3", "-c", py, ingest::oauth::authorize_url(app, redirect, state, pkce)});
        std::smatch m;
        EXPECT_TRUE(std::regex_search(r.out, m, std::regex("[?&]code=([^&]+)&state=([^&]+)"))) << r.out;
        EXPECT_EQ(r.out.rfind(redirect + "?code=", 0), 0u) << r.out;
        EXPECT_EQ(m.size() > 2 ? m[2].str() : "", state);
        std::string code = m.size() > 1 ? m[1].str() : "";
        // The code is URL-encoded in the redirect.
        std::string out;
        for (std::size_t i = 0; i < code.size(); ++i) {
            if (code[i] == '%' && i + 2 < code.size()) {
                out += static_cast<char>(std::stoi(code.substr(i + 1, 2), nullptr, 16));
                i += 2;
            } else {
                out += code[i];
            }
        }
        return out;
    };
    auto transport = ingest::oauth::default_transport();
    auto pkce = ingest::oauth::make_pkce();
    std::string state = ingest::oauth::random_state();
    std::string code = authorize(pkce, state);
    auto wrong = ingest::oauth::redeem_authorization_code(app, code, redirect, ingest::oauth::make_pkce().verifier, transport);
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message.find("AADSTS501481"), std::string::npos) << wrong.error().message;
    // A code is single-use: even the right verifier cannot redeem the refused one.
    EXPECT_FALSE(ingest::oauth::redeem_authorization_code(app, code, redirect, pkce.verifier, transport));

    pkce = ingest::oauth::make_pkce();
    code = authorize(pkce, state);
    auto tokens = ingest::oauth::redeem_authorization_code(app, code, redirect, pkce.verifier, transport);
    ASSERT_TRUE(tokens) << tokens.error().message;
    EXPECT_EQ(tokens->account, "alice");
    ingest::oauth::TokenStore st(dir.path() / "archive");
    ASSERT_TRUE(ingest::oauth::store_sign_in(app, st, *tokens));
    auto r = mv({"check", "mail"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace mv::test
