// Delegated OAuth: device code polling, PKCE, refresh + rotation, the token store, the
// xoauth2 account modes; against a scripted token endpoint (no network).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <deque>

#include "ingest/oauth/delegated.hpp"
#include "support/testutil.hpp"

namespace mv::ingest::oauth {
namespace {

struct Call {
    std::string url, form;
};

// Answers each POST with the next scripted (status, body); records what was sent.
struct Script {
    std::deque<std::pair<long, std::string>> answers;
    std::vector<Call> calls;
    TokenTransport transport() {
        return [this](const std::string& url, const std::string& form) -> Result<HttpResponse> {
            calls.push_back({url, form});
            HttpResponse r;
            if (answers.empty()) {
                r.status = 500;
                return r;
            }
            r.status = answers.front().first;
            r.body = answers.front().second;
            answers.pop_front();
            return r;
        };
    }
};

std::string err(const std::string& error, long code) {
    return "{\"error\":\"" + error + "\",\"error_description\":\"AADSTS" + std::to_string(code) +
           ": text\\r\\nTrace ID: x\",\"error_codes\":[" + std::to_string(code) + "]}";
}

const std::string k_granted =
    R"({"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All","expires_in":3599,)"
    R"("access_token":"AT-1","refresh_token":"RT-2",)"
    // {"preferred_username":"alice@contoso.test"}
    R"("id_token":"eyJhbGciOiJub25lIn0.eyJwcmVmZXJyZWRfdXNlcm5hbWUiOiJhbGljZUBjb250b3NvLnRlc3QifQ."})";

DelegatedApp app() {
    DelegatedApp a;
    a.source = "mail";
    a.authority_url = "http://idp.test/";
    a.tenant = "contoso.test";
    a.client_id = "cid";
    a.scopes = default_scopes("imap");
    return a;
}

DeviceCode device() {
    DeviceCode d;
    d.device_code = "DC";
    d.user_code = "UC";
    d.interval = 5;
    d.expires_in = 900;
    return d;
}

TEST(OAuthDelegated, ScopesAndEndpoints) {
    EXPECT_EQ(app().scope_param(), "offline_access openid https://outlook.office.com/IMAP.AccessAsUser.All");
    EXPECT_EQ(default_scopes("pop3")[0], "https://outlook.office.com/POP.AccessAsUser.All");
    EXPECT_EQ(default_scopes("smtp")[0], "https://outlook.office.com/SMTP.Send");
    EXPECT_EQ(app().endpoint("devicecode"), "http://idp.test/contoso.test/oauth2/v2.0/devicecode");
}

TEST(OAuthDelegated, DeviceCodeStartSendsClientAndScopes) {
    Script s;
    s.answers.push_back({200, R"({"device_code":"DC","user_code":"ABCD","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"m"})"});
    auto d = start_device_code(app(), s.transport());
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->user_code, "ABCD");
    EXPECT_EQ(d->interval, 5);
    ASSERT_EQ(s.calls.size(), 1u);
    EXPECT_EQ(s.calls[0].url, "http://idp.test/contoso.test/oauth2/v2.0/devicecode");
    EXPECT_NE(s.calls[0].form.find("client_id=cid"), std::string::npos);
    EXPECT_NE(s.calls[0].form.find("scope=offline_access%20openid%20https%3A%2F%2Foutlook.office.com%2FIMAP.AccessAsUser.All"),
              std::string::npos);
}

TEST(OAuthDelegated, DeviceCodePollsPendingSlowDownThenGranted) {
    Script s;
    s.answers.push_back({400, err("authorization_pending", 70016)});
    s.answers.push_back({400, err("authorization_pending", 70016)});
    s.answers.push_back({400, err("slow_down", 70016)});
    s.answers.push_back({200, k_granted});
    std::vector<long> slept;
    std::vector<std::string> lines;
    auto t = run_device_code_flow(
        app(), device(), s.transport(), [&](std::chrono::milliseconds d) { slept.push_back(static_cast<long>(d.count() / 1000)); },
        [&](const std::string& l) { lines.push_back(l); });
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->access_token, "AT-1");
    EXPECT_EQ(t->refresh_token, "RT-2");
    EXPECT_EQ(t->account, "alice@contoso.test");
    EXPECT_EQ(slept, (std::vector<long>{5, 5, 5, 10}));  // slow_down: 5 s more from then on
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find("authorization_pending"), std::string::npos);
    EXPECT_NE(lines[1].find("slow_down"), std::string::npos);
    for (const auto& c : s.calls) {
        EXPECT_NE(c.form.find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"), std::string::npos);
        EXPECT_NE(c.form.find("device_code=DC"), std::string::npos);
    }
}

TEST(OAuthDelegated, DeviceCodeErrorsEachHaveTheirOwnLine) {
    struct Case {
        std::string error;
        long code;
        std::string expect;
    };
    std::vector<Case> cases = {{"authorization_declined", 70000, "declined"},
                               {"expired_token", 70020, "expired"},
                               {"bad_verification_code", 70019, "bad_verification_code"},
                               {"invalid_client", 7000215, "AADSTS7000215"}};
    std::set<std::string> messages;
    for (const auto& c : cases) {
        Script s;
        s.answers.push_back({400, err(c.error, c.code)});
        auto t = run_device_code_flow(app(), device(), s.transport(), [](auto) {}, {});
        ASSERT_FALSE(t) << c.error;
        EXPECT_EQ(t.error().kind, Error::Kind::auth) << c.error;
        EXPECT_NE(t.error().message.find(c.expect), std::string::npos) << t.error().message;
        EXPECT_EQ(t.error().message.find('\n'), std::string::npos);
        EXPECT_EQ(t.error().message.rfind("source 'mail': ", 0), 0u) << t.error().message;
        messages.insert(t.error().message);
    }
    EXPECT_EQ(messages.size(), cases.size());
}

TEST(OAuthDelegated, PkceS256MatchesRfc7636Example) {
    EXPECT_EQ(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    Pkce a = make_pkce(), b = make_pkce();
    EXPECT_NE(a.verifier, b.verifier);
    EXPECT_GE(a.verifier.size(), 43u);
    EXPECT_LE(a.verifier.size(), 128u);
    EXPECT_EQ(a.challenge, pkce_challenge(a.verifier));
    EXPECT_NE(random_state(), random_state());
    std::string url = authorize_url(app(), "https://vault.test/oauth/callback", "ST", a);
    EXPECT_EQ(url.rfind("http://idp.test/contoso.test/oauth2/v2.0/authorize?client_id=cid&response_type=code", 0), 0u);
    EXPECT_NE(url.find("redirect_uri=https%3A%2F%2Fvault.test%2Foauth%2Fcallback"), std::string::npos);
    EXPECT_NE(url.find("&state=ST"), std::string::npos);
    EXPECT_NE(url.find("&code_challenge=" + a.challenge + "&code_challenge_method=S256"), std::string::npos);
    EXPECT_EQ(url.find(a.verifier), std::string::npos);
}

TEST(OAuthDelegated, RedeemSendsVerifierAndExplainsRefusal) {
    Script s;
    s.answers.push_back({200, k_granted});
    s.answers.push_back({400, err("invalid_grant", 501481)});
    auto ok = redeem_authorization_code(app(), "CODE", "https://vault.test/oauth/callback", "VERIFIER", s.transport());
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_NE(s.calls[0].form.find("grant_type=authorization_code"), std::string::npos);
    EXPECT_NE(s.calls[0].form.find("code_verifier=VERIFIER"), std::string::npos);
    EXPECT_NE(s.calls[0].form.find("code=CODE"), std::string::npos);
    auto bad = redeem_authorization_code(app(), "CODE", "https://vault.test/oauth/callback", "WRONG", s.transport());
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("PKCE verifier"), std::string::npos);
    EXPECT_EQ(bad.error().message.find("WRONG"), std::string::npos);
}

TEST(OAuthDelegated, InvalidGrantSaysRunConnectAgainWithoutTheToken) {
    Script s;
    s.answers.push_back({400, err("invalid_grant", 50173)});
    auto t = refresh_tokens(app(), "RT-SECRET-1", s.transport());
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().kind, Error::Kind::auth);
    EXPECT_NE(t.error().message.find("run `mailvault connect mail` again"), std::string::npos) << t.error().message;
    EXPECT_EQ(t.error().message.find("RT-SECRET-1"), std::string::npos);
}

TEST(OAuthTokenStore, AtomicZeroSixHundredAndReplacedOnRotation) {
    test::TempDir dir;
    TokenStore store(dir.path());
    auto none = store.load("mail");
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    Grant g;
    g.refresh_token = "RT-1";
    g.account = "alice@contoso.test";
    g.client_id = "cid";
    ASSERT_TRUE(store.save("mail", g));
    struct stat st{};
    ASSERT_EQ(::stat(store.file("mail").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_EQ(::stat((dir.path() / "oauth").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(store.file("mail").c_str(), &st), 0);
    ino_t first = st.st_ino;

    // A refresh that rotates the token replaces the file (new inode: rename, not rewrite).
    Script s;
    s.answers.push_back({200, k_granted});
    auto app_ = app();
    auto t = delegated_access_token(app_, store, s.transport());
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->access_token, "AT-1");
    ASSERT_EQ(s.calls.size(), 1u);
    EXPECT_NE(s.calls[0].form.find("grant_type=refresh_token"), std::string::npos);
    EXPECT_NE(s.calls[0].form.find("refresh_token=RT-1"), std::string::npos);
    auto after = store.load("mail");
    ASSERT_TRUE(after && *after);
    EXPECT_EQ((*after)->refresh_token, "RT-2");
    EXPECT_EQ((*after)->account, "alice@contoso.test");
    ASSERT_EQ(::stat(store.file("mail").c_str(), &st), 0);
    EXPECT_NE(st.st_ino, first);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path() / "oauth")) {
        (void)e;
        ++files;
    }
    EXPECT_EQ(files, 1u);  // no temp file left
}

TEST(OAuthTokenStore, NotSignedInNamesConnect) {
    test::TempDir dir;
    Script s;
    auto t = delegated_access_token(app(), TokenStore(dir.path()), s.transport());
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message.find("mailvault connect mail"), std::string::npos);
    EXPECT_TRUE(s.calls.empty());
}

TEST(OAuthTokenStore, SourceNamesCannotEscapeTheDirectory) {
    test::TempDir dir;
    TokenStore store(dir.path());
    EXPECT_EQ(store.file("../x/y").parent_path(), dir.path() / "oauth");
    EXPECT_EQ(store.file("..").parent_path(), dir.path() / "oauth");
}

SourceConfig imap_config() {
    SourceConfig c;
    c.name = "mail";
    c.type = "imap";
    c.strings = {{"auth", "xoauth2"}, {"client_id", "cid"}, {"tenant", "contoso.test"}, {"authority_url", "http://idp.test"},
                 {"host", "h"}, {"username", "alice@contoso.test"}};
    return c;
}

TEST(OAuthAccount, Modes) {
    test::TempDir dir;
    auto c = imap_config();
    EXPECT_EQ(oauth_mode(c), OAuthMode::delegated);

    // A static token wins and nothing is fetched.
    auto st = c;
    st.strings["token_env"] = "X";
    Script none;
    auto same = with_access_token(st, "imap", dir.path(), none.transport());
    ASSERT_TRUE(same);
    EXPECT_EQ(same->strings.count("token"), 0u);
    EXPECT_TRUE(none.calls.empty());

    // Delegated: the stored grant is traded for an access token.
    Grant g;
    g.refresh_token = "RT-1";
    g.client_id = "cid";
    ASSERT_TRUE(TokenStore(dir.path()).save("mail", g));
    Script s;
    s.answers.push_back({200, k_granted});
    auto d = with_access_token(c, "imap", dir.path(), s.transport());
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->strings.at("token"), "AT-1");

    // App-only: client credentials for outlook.office365.com/.default.
    auto app_only = c;
    app_only.strings["oauth"] = "app";
    app_only.strings["client_secret"] = "S3";
    Script a;
    a.answers.push_back({200, R"({"token_type":"Bearer","expires_in":3599,"access_token":"APP-AT"})"});
    auto r = with_access_token(app_only, "imap", dir.path(), a.transport());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->strings.at("token"), "APP-AT");
    ASSERT_EQ(a.calls.size(), 1u);
    EXPECT_NE(a.calls[0].form.find("grant_type=client_credentials"), std::string::npos);
    EXPECT_NE(a.calls[0].form.find("scope=https%3A%2F%2Foutlook.office365.com%2F.default"), std::string::npos);

    // [smtp] without AUTH needs no token.
    auto smtp = c;
    smtp.name = "smtp";
    smtp.type = "smtp";
    smtp.strings["auth_required"] = "false";
    Script n;
    auto unchanged = with_access_token(smtp, "smtp", dir.path(), n.transport());
    ASSERT_TRUE(unchanged) << unchanged.error().message;
    EXPECT_TRUE(n.calls.empty());

    // Password sources and graph sources are left alone.
    auto pw = c;
    pw.strings["auth"] = "password";
    Script p;
    ASSERT_TRUE(with_access_token(pw, "imap", dir.path(), p.transport()));
    EXPECT_TRUE(p.calls.empty());
}

}  // namespace
}  // namespace mv::ingest::oauth
