// `mail-test`, run reports and SMTP XOAUTH2 through the mailvault binary against a real SMTP
// server (python3-aiosmtpd, tools/testservers/smtp) on loopback.
#include <gmime/gmime.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_server.hpp"

namespace mv::test {
namespace {

using json = nlohmann::json;

const std::string k_password = "pw-Alice-7f3";

struct SmtpConfig {
    std::string security = "starttls";
    bool ca = true;           // ca_file = the server's self-signed certificate
    bool trust_all = false;
    bool auth_required = true;
    std::string auth = "password";
    std::string extra;        // more [smtp] lines
    std::string sources;      // [[source]] tables
    std::vector<std::string> report_recipients;
};

class SmtpTest : public ::testing::Test {
  protected:
    void start(const std::vector<std::string>& args) {
        std::string why;
        server = SmtpServer::start(dir.path() / "smtpd", args, &why);
        if (!server) {
            if (servers_required()) FAIL() << why;
            GTEST_SKIP() << why;
        }
    }
    fs::path config(const SmtpConfig& c, int port = 0) {
        std::string t = "[archive]\npath = \"" + (dir.path() / "archive").string() + "\"\n\n" + c.sources + "\n[smtp]\n" +
                        "host = \"127.0.0.1\"\nport = " + std::to_string(port ? port : server->port) + "\nsecurity = \"" +
                        c.security + "\"\n" + (c.ca ? "ca_file = \"" + server->cert().string() + "\"\n" : "") +
                        "trust_all_certificates = " + (c.trust_all ? "true" : "false") + "\nauth_required = " +
                        (c.auth_required ? "true" : "false") + "\nauth = \"" + c.auth + "\"\nusername = \"alice\"\n" +
                        (c.auth == "password" ? "password_env = \"MV_TEST_SMTP_PW\"\n" : "") +
                        "sender = \"archive@vault.test\"\ntest_recipients = [\"admin@vault.test\", \"ops@vault.test\"]\n" +
                        "timeout = 10\n" + c.extra;
        if (!c.report_recipients.empty()) t += "report_recipients = " + graph::toml_list(c.report_recipients) + "\n";
        fs::path p = dir.path() / "mailvault.toml";
        write_file(p, t);
        fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);  // may hold a password: 0600 or refused
        return p;
    }
    RunResult mv(std::vector<std::string> args, const std::string& password = k_password) {
        std::vector<std::string> a = {"--archive", (dir.path() / "archive").string(), "--config", (dir.path() / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a, "", {"MV_TEST_SMTP_PW=" + password});
    }
    static std::vector<std::string> auth_args() { return {"--auth-required", "--user", "alice=" + k_password}; }

    TempDir dir;
    std::unique_ptr<SmtpServer> server;
};

int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// The parts of a received message, parsed with GMime.
struct Parsed {
    std::string subject, from, to, content_type;
    std::vector<std::string> part_types;
    std::vector<std::string> part_texts;
};
Parsed parse(const std::string& bytes) {
    g_mime_init();
    Parsed out;
    GMimeStream* st = g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size());
    GMimeParser* p = g_mime_parser_new_with_stream(st);
    GMimeMessage* msg = g_mime_parser_construct_message(p, nullptr);
    if (msg) {
        out.subject = g_mime_message_get_subject(msg) ? g_mime_message_get_subject(msg) : "";
        char* f = internet_address_list_to_string(g_mime_message_get_from(msg), nullptr, FALSE);
        out.from = f ? f : "";
        g_free(f);
        char* t = internet_address_list_to_string(g_mime_message_get_to(msg), nullptr, FALSE);
        out.to = t ? t : "";
        g_free(t);
        GMimeObject* body = g_mime_message_get_mime_part(msg);
        char* ct = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(body));
        out.content_type = ct;
        g_free(ct);
        auto add = [&](GMimeObject* part) {
            char* pt = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(part));
            out.part_types.push_back(pt);
            g_free(pt);
            if (GMIME_IS_TEXT_PART(part)) {
                char* tx = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
                out.part_texts.push_back(tx ? tx : "");
                g_free(tx);
            }
        };
        if (GMIME_IS_MULTIPART(body)) {
            for (int i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(body)); ++i)
                add(g_mime_multipart_get_part(GMIME_MULTIPART(body), i));
        } else {
            add(body);
        }
        g_object_unref(msg);
    }
    g_object_unref(p);
    g_object_unref(st);
    return out;
}

TEST_F(SmtpTest, StartTlsVerifiedPlainAuthDelivers) {
    auto args = auth_args();
    start(args);
    config({});
    auto r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("sent to 2 of 2 recipient(s) via 127.0.0.1:" + std::to_string(server->port) + " (TLS, AUTH PLAIN): 250 2.0.0 Ok: queued as 0001"),
              std::string::npos)
        << r.out;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].envelope["mail_from"], "archive@vault.test");
    EXPECT_EQ(got[0].envelope["rcpt_tos"], json({"admin@vault.test", "ops@vault.test"}));
    EXPECT_EQ(got[0].envelope["auth_user"], "alice");
    EXPECT_EQ(got[0].envelope["tls"], true);
    Parsed m = parse(got[0].bytes);
    EXPECT_EQ(m.subject.rfind("mailvault test message from ", 0), 0u) << m.subject;
    EXPECT_NE(m.from.find("archive@vault.test"), std::string::npos);
    EXPECT_NE(m.to.find("admin@vault.test"), std::string::npos);
    EXPECT_NE(m.to.find("ops@vault.test"), std::string::npos);
    ASSERT_EQ(m.part_texts.size(), 1u);
    EXPECT_NE(m.part_texts[0].find("This is a test message from mailvault"), std::string::npos);
    EXPECT_NE(got[0].bytes.find("Message-Id: <"), std::string::npos);
    EXPECT_NE(got[0].bytes.find("Date: "), std::string::npos);
    EXPECT_EQ(r.out.find(k_password), std::string::npos);
    EXPECT_EQ(r.err.find(k_password), std::string::npos);
}

TEST_F(SmtpTest, SelfSignedCertificateRefusedUnlessTrusted) {
    start(auth_args());
    SmtpConfig c;
    c.ca = false;
    config(c);
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("nothing sent: smtp: TLS handshake failed: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("certificate verification failed: self-signed certificate"), std::string::npos) << r.err;
    EXPECT_TRUE(server->received().empty());

    c.trust_all = true;
    config(c);
    r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("WARNING: trust_all_certificates = true"), std::string::npos) << r.err;
    EXPECT_EQ(server->received().size(), 1u);
}

TEST_F(SmtpTest, ImplicitTls) {
    auto args = auth_args();
    args.insert(args.end(), {"--security", "tls"});
    start(args);
    SmtpConfig c;
    c.security = "tls";
    config(c);
    auto r = mv({"mail-test", "--to", "x@vault.test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].envelope["tls"], true);
    EXPECT_EQ(got[0].envelope["rcpt_tos"], json({"x@vault.test"}));
}

TEST_F(SmtpTest, NoneAndAutoWithoutStartTls) {
    start({"--security", "none", "--auth-mechs", ""});
    SmtpConfig c;
    c.security = "none";
    c.auth_required = false;
    config(c);
    auto r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(no TLS, no AUTH)"), std::string::npos) << r.out;

    c.security = "auto";
    config(c);
    r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("does not offer STARTTLS, continuing WITHOUT TLS"), std::string::npos) << r.err;

    c.security = "starttls";
    config(c);
    r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("STARTTLS failed: server 127.0.0.1:" + std::to_string(server->port) + " does not offer STARTTLS"),
              std::string::npos)
        << r.err;
    auto got = server->received();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].envelope["tls"], false);
}

TEST_F(SmtpTest, AutoUsesStartTlsWhenOffered) {
    start(auth_args());
    SmtpConfig c;
    c.security = "auto";
    config(c);
    auto r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("offers STARTTLS, using it"), std::string::npos) << r.err;
    EXPECT_EQ(server->received().at(0).envelope["tls"], true);
}

TEST_F(SmtpTest, WrongPasswordNamesTheReplyNeverTheSecret) {
    start(auth_args());
    config({});
    auto r = mv({"mail-test"}, "wrong-Secret-99");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("authentication failed: server refused user 'alice' at 127.0.0.1:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("535 5.7.8 Authentication credentials invalid"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("wrong-Secret-99"), std::string::npos);
    EXPECT_TRUE(server->received().empty());
}

TEST_F(SmtpTest, LoginWhenOnlyLoginOffered) {
    auto args = auth_args();
    args.insert(args.end(), {"--auth-mechs", "LOGIN"});
    start(args);
    config({});
    auto r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("AUTH LOGIN"), std::string::npos) << r.out;
    EXPECT_EQ(server->sasl().at(0)["mech"], "LOGIN");
}

TEST_F(SmtpTest, NoAuthAgainstAServerThatRequiresIt) {
    start(auth_args());
    SmtpConfig c;
    c.auth_required = false;
    config(c);
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("sender (MAIL FROM) failed: server refused sender <archive@vault.test>: 530"), std::string::npos) << r.err;
}

TEST_F(SmtpTest, RefusedSender) {
    auto args = auth_args();
    args.insert(args.end(), {"--refuse-sender", "archive@vault.test"});
    start(args);
    config({});
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("sender (MAIL FROM) failed: server refused sender <archive@vault.test>: 553 5.7.1"), std::string::npos) << r.err;
}

TEST_F(SmtpTest, RefusedRecipientIsPartial) {
    auto args = auth_args();
    args.insert(args.end(), {"--refuse", "ops@vault.test"});
    start(args);
    config({});
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("recipient <ops@vault.test> refused: 550 5.1.1"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("sent to 1 of 2 recipient(s)"), std::string::npos) << r.out;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].envelope["rcpt_tos"], json({"admin@vault.test"}));

    r = mv({"mail-test", "--to", "ops@vault.test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("recipients (RCPT TO) failed: every recipient was refused: <ops@vault.test>: 550"), std::string::npos) << r.err;
}

TEST_F(SmtpTest, UnreachableHost) {
    start(auth_args());
    config({}, closed_port());
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("nothing sent: smtp: connect failed: cannot connect to 127.0.0.1:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("connection refused"), std::string::npos) << r.err;
}

TEST_F(SmtpTest, NoSmtpSectionIsAUsageError) {
    write_file(dir.path() / "mailvault.toml", "[archive]\npath = \"" + (dir.path() / "archive").string() + "\"\n");
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("no [smtp]"), std::string::npos) << r.err;
}

// A Maildir with `n` messages, as a [[source]] table.
std::string maildir_source(const fs::path& root, const std::string& name, int n) {
    for (const char* d : {"cur", "new", "tmp"}) fs::create_directories(root / d);
    for (int i = 0; i < n; ++i)
        write_file(root / "cur" / ("m" + std::to_string(i) + ":2,S"),
                   "From: a@x.test\nTo: b@x.test\nSubject: report test " + std::to_string(i) +
                       "\nDate: Mon, 20 Nov 2023 10:00:00 +0000\nMessage-ID: <r" + std::to_string(i) + "@" + name + ">\n\nbody\n");
    return "[[source]]\nname = \"" + name + "\"\ntype = \"maildir\"\npath = \"" + root.string() + "\"\nmailbox = \"ops@x.test\"\n\n";
}

TEST_F(SmtpTest, SyncMailsAReportWithTextAndHtmlTable) {
    start(auth_args());
    SmtpConfig c;
    c.sources = maildir_source(dir.path() / "md", "local", 3);
    c.report_recipients = {"boss@vault.test"};
    config(c);
    auto r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u) << r.err;
    EXPECT_EQ(got[0].envelope["rcpt_tos"], json({"boss@vault.test"}));
    Parsed m = parse(got[0].bytes);
    EXPECT_EQ(m.subject.rfind("[mailvault] OK: sync on ", 0), 0u) << m.subject;
    EXPECT_NE(m.subject.find("3 new, 0 failed"), std::string::npos) << m.subject;
    EXPECT_EQ(m.content_type, "multipart/alternative");
    ASSERT_EQ(m.part_types, (std::vector<std::string>{"text/plain", "text/html"}));
    EXPECT_NE(m.part_texts[0].find("local: ok - 3 new, 0 duplicates, 0 failed"), std::string::npos) << m.part_texts[0];
    EXPECT_NE(m.part_texts[0].find("ops@x.test: 3 fetched"), std::string::npos) << m.part_texts[0];
    EXPECT_NE(m.part_texts[0].find("archive holds 3 messages"), std::string::npos) << m.part_texts[0];
    EXPECT_NE(m.part_texts[1].find("<table"), std::string::npos);
    EXPECT_NE(m.part_texts[1].find("name=\"viewport\""), std::string::npos);
    EXPECT_NE(m.part_texts[1].find("<b>local</b>"), std::string::npos);
    EXPECT_NE(got[0].bytes.find("Auto-Submitted: auto-generated"), std::string::npos);
}

TEST_F(SmtpTest, ReportOfAPartialRunListsTheFailure) {
    start(auth_args());
    SmtpConfig c;
    c.sources = maildir_source(dir.path() / "md", "local", 2) + "[[source]]\nname = \"down\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = " +
                std::to_string(closed_port()) + "\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\nreconnect_attempts = 0\n\n";
    c.report_recipients = {"boss@vault.test"};
    config(c);
    auto r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u) << r.err;
    Parsed m = parse(got[0].bytes);
    EXPECT_EQ(m.subject.rfind("[mailvault] PARTIAL: sync", 0), 0u) << m.subject;
    EXPECT_NE(m.part_texts[0].find("down: failed"), std::string::npos) << m.part_texts[0];
    EXPECT_NE(m.part_texts[0].find("connection refused"), std::string::npos) << m.part_texts[0];
}

TEST_F(SmtpTest, UnsendableReportNeverChangesTheExitCode) {
    start(auth_args());
    SmtpConfig c;
    c.sources = maildir_source(dir.path() / "md", "local", 1);
    c.report_recipients = {"boss@vault.test"};
    config(c, closed_port());
    auto r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("run report not sent: smtp: connect failed"), std::string::npos) << r.err;

    config(c);  // reachable, wrong password
    write_file(dir.path() / "md" / "cur" / "late:2,S", "From: a@x.test\nSubject: late\nMessage-ID: <late@x>\n\nlate\n");
    r = mv({"sync"}, "wrong");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("run report not sent: smtp: authentication failed"), std::string::npos) << r.err;
}

TEST_F(SmtpTest, ImportReportOnlyWhenAsked) {
    start(auth_args());
    SmtpConfig c;
    c.report_recipients = {"boss@vault.test"};
    config(c);
    maildir_source(dir.path() / "md", "x", 2);
    auto r = mv({"import", (dir.path() / "md").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(server->received().empty());
    write_file(dir.path() / "one.eml", "From: a@x.test\nSubject: one\nMessage-ID: <one@x>\n\none\n");
    r = mv({"import", "--report", (dir.path() / "one.eml").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = server->received();
    ASSERT_EQ(got.size(), 1u) << r.err;
    Parsed m = parse(got[0].bytes);
    EXPECT_EQ(m.subject.rfind("[mailvault] OK: import", 0), 0u) << m.subject;
    EXPECT_NE(m.part_texts[0].find("archive holds 3 messages"), std::string::npos) << m.part_texts[0];
}

// ---- XOAUTH2: a token from the device code flow, checked by the server with the identity platform.

class SmtpOAuthTest : public SmtpTest {
  protected:
    void SetUp() override {
        fake = std::make_unique<graph::FakeGraph>(dir.path() / "fake", std::vector<std::string>{"--generate", "0"});
        ASSERT_TRUE(fake->ok()) << fake->log();
    }
    std::string oauth_keys() const {
        return "tenant = \"" + graph::k_tenant + "\"\nclient_id = \"" + graph::k_client_id + "\"\nauthority_url = \"" + fake->url() + "\"\n";
    }
    std::unique_ptr<graph::FakeGraph> fake;
};

TEST_F(SmtpOAuthTest, ConnectSmtpThenXoauth2) {
    start({"--auth-required", "--introspect", fake->url() + "/_introspect", "--xoauth2-error-challenge"});
    SmtpConfig c;
    c.auth = "xoauth2";
    c.extra = oauth_keys();
    config(c);
    // Before connect: a clear line, nothing sent.
    auto r = mv({"mail-test"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("run `mailvault connect smtp` first"), std::string::npos) << r.err;

    fake->control("device-script?outcomes=approve&interval=1&user=alice%40contoso.test");
    r = mv({"connect", "smtp"});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_NE(r.out.find("signed in as alice@contoso.test"), std::string::npos) << r.out;
    // username in the config is "alice"; XOAUTH2 user= must be the signed-in mailbox.
    std::string t = read_file(dir.path() / "mailvault.toml");
    auto pos = t.find("username = \"alice\"");
    t.replace(pos, 18, "username = \"alice@contoso.test\"");
    write_file(dir.path() / "mailvault.toml", t);
    r = mv({"mail-test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("AUTH XOAUTH2"), std::string::npos) << r.out;
    auto sasl = server->sasl();
    ASSERT_EQ(sasl.size(), 1u);
    std::string initial = sasl[0]["initial"];
    EXPECT_EQ(initial.rfind(std::string("user=alice@contoso.test\x01" "auth=Bearer "), 0), 0u) << initial;
    EXPECT_EQ(initial.substr(initial.size() - 2), "\x01\x01");
    EXPECT_EQ(sasl[0]["initial_response_inline"], true);
    EXPECT_EQ(sasl[0]["result"], "ok");
    EXPECT_EQ(server->received().at(0).envelope["auth_user"], "alice@contoso.test");
    std::string token = initial.substr(std::string("user=alice@contoso.test\x01" "auth=Bearer ").size());
    token.resize(token.size() - 2);
    EXPECT_EQ(r.out.find(token), std::string::npos);
    EXPECT_EQ(r.err.find(token), std::string::npos);
}

TEST_F(SmtpOAuthTest, ErrorChallengeIsAnsweredWithAnEmptyLine) {
    start({"--auth-required", "--introspect", fake->url() + "/_introspect", "--xoauth2-error-challenge"});
    SmtpConfig c;
    c.auth = "xoauth2";
    c.extra = "token_env = \"MV_TEST_SMTP_PW\"\n";  // a token nobody issued
    config(c);
    auto r = mv({"mail-test"}, "not-a-real-token");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("authentication failed: server refused the OAuth token of user 'alice' at 127.0.0.1:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("535 5.7.3 Authentication unsuccessful"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\"status\": \"401\""), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not-a-real-token"), std::string::npos);
    auto sasl = server->sasl();
    ASSERT_EQ(sasl.size(), 1u);
    EXPECT_EQ(sasl[0]["client_answer"], "");
    EXPECT_EQ(sasl[0]["result"], "refused");
}

}  // namespace
}  // namespace mv::test
