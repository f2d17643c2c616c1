// Network faults for every source and for SMTP (issue 13): tools/tcp-delay-proxy sits between
// mailvault and a real server and accepts-then-never-answers, stalls mid-reply, resets,
// trickles a byte a second, or answers garbage. Each run must end (timeout = 2 s) with an
// error naming the source and the step, the other source must go on, and the next run without
// the fault must archive exactly the server's messages (SHA-256 compared), nothing duplicated.
#include <chrono>
#include <fstream>

#include "fake_graph_fixture.hpp"
#include "faults_common.hpp"
#include "smtp_server.hpp"
#include "support/dovecot.hpp"

namespace mv::test::faults {
namespace {

struct Fault {
    std::string name;
    std::vector<std::string> args;  // proxy arguments
    std::string expect;             // a piece of the error line
};

std::string print(const ::testing::TestParamInfo<Fault>& i) { return i.param.name; }
// What ctest's test list shows for a parameter (instead of gtest's byte dump).
void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

// `tls`: implicit TLS verified against the test server's certificate (issued for localhost).
std::string toml_source(const std::string& name, const std::string& type, int port, const std::string& user,
                        const std::string& ca_file = "") {
    std::string transport = ca_file.empty() ? "host = \"127.0.0.1\"\nsecurity = \"none\"\n"
                                            : "host = \"localhost\"\nsecurity = \"tls\"\nca_file = \"" + ca_file + "\"\n";
    return "[[source]]\nname = \"" + name + "\"\ntype = \"" + type + "\"\n" + transport + "port = " + std::to_string(port) +
           "\nusername = \"" + user + "\"\npassword = \"pw-" + user + "\"\ntimeout = 2\nconnect_timeout = 2\nreconnect_attempts = 1\n\n";
}

// The error lines of one source, for the test log.
void print_lines(const std::string& err, const std::string& needle) {
    std::size_t pos = 0;
    while (pos < err.size()) {
        auto nl = err.find('\n', pos);
        std::string line = err.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (line.find(needle) != std::string::npos) std::cout << "    " << line << "\n";
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
}

class Timer {
  public:
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

  private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// ---- IMAP and POP3 against Dovecot ------------------------------------------------------------

class DovecotFaults : public ::testing::TestWithParam<Fault> {
  protected:
    void SetUp() override {
        std::string why;
        server = Dovecot::start(&why);
        if (!server) {
            if (servers_required()) FAIL() << why;
            GTEST_SKIP() << why;
        }
        // alice: 12 messages, the first two of 300 kB (a fault at 60,000 bytes is mid-literal /
        // mid-RETR body); bob: 8 small ones. Written with CRLF: served byte for byte.
        for (auto [user, n] : {std::pair<std::string, int>{"alice", 12}, {"bob", 8}}) {
            auto dir = server->maildir(user);
            for (auto sub : {"cur", "new", "tmp"}) fs::create_directories(dir / sub);
            for (int i = 0; i < n; ++i) {
                std::string m = make_message(user, i, user == "alice" && i < 2 ? 300000 : 2000);
                expected[user].insert(sha_hex(m));
                write_file(dir / "new" / (std::to_string(1000 + i) + ".m" + std::to_string(i) + ".faults"), m);
            }
        }
        server->fix_owner();
    }

    // `faulty` (type) for alice through the proxy, the other protocol for bob directly.
    void config(const std::string& faulty_type, int faulty_port, bool tls = false) {
        std::string other_type = faulty_type == "imap" ? "pop3" : "imap";
        int other_port = other_type == "imap" ? server->imap : server->pop3;
        write_file(tmp / "mailvault.toml", "[archive]\npath = \"" + (tmp / "archive").string() + "\"\n\n" +
                                               toml_source("work", faulty_type, faulty_port, "alice",
                                                           tls ? server->cert().string() : "") +
                                               toml_source("other", other_type, other_port, "bob"));
        fs::permissions(tmp / "mailvault.toml", fs::perms::owner_read | fs::perms::owner_write);
    }
    RunResult mv(const std::vector<std::string>& args) {
        std::vector<std::string> a{"--config", (tmp / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a);
    }
    long count(const std::string& q) {
        auto r = mv({"search", q, "--count"});
        return r.exit_code == 0 ? std::atol(r.out.c_str()) : -1;
    }

    void run(const std::string& type, bool tls = false) {
        const Fault& f = GetParam();
        int target = type == "imap" ? (tls ? server->imaps : server->imap) : (tls ? server->pop3s : server->pop3);
        FaultProxy proxy(target, f.args);
        ASSERT_GT(proxy.port, 0);
        config(type, proxy.port, tls);
        Timer t;
        auto r = mv({"sync"});
        std::cout << "[ fault " << type << " " << f.name << " ] sync ended after " << t.seconds() << " s, exit "
                  << r.exit_code << "\n";
        print_lines(r.err, "source 'work'");
        EXPECT_EQ(r.exit_code, 1) << r.err;  // partial: "other" archived, "work" failed
        // One line naming the source and the step.
        EXPECT_NE(r.err.find("source 'work': "), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(f.expect), std::string::npos) << "expected '" << f.expect << "' in:\n" << r.err;
        EXPECT_EQ(r.err.find("pw-alice"), std::string::npos);
        // The other source went on.
        EXPECT_EQ(count("source:other"), 8) << r.err;
        auto st = mv({"stats", "--json"});
        EXPECT_NE(st.out.find("\"work\""), std::string::npos) << st.out;

        // The next run, without the fault, resumes: exactly the server's messages.
        config(type, target, tls);
        r = mv({"sync"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto c = archive_contents(tmp / "archive");
        std::multiset<std::string> want(expected["alice"].begin(), expected["alice"].end());
        want.insert(expected["bob"].begin(), expected["bob"].end());
        EXPECT_EQ(c.docs, 20u);
        EXPECT_EQ(c.digests, want);
        EXPECT_EQ(count("source:work"), 12);
        auto v = mv({"verify"});
        EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    }

    std::unique_ptr<Dovecot> server;
    std::map<std::string, std::set<std::string>> expected;
    TempDir tmp;
};

class ImapFaults : public DovecotFaults {};
class Pop3Faults : public DovecotFaults {};

TEST_P(ImapFaults, EndsNamingTheStepOtherSourceGoesOnNextRunResumes) { run("imap"); }
TEST_P(Pop3Faults, EndsNamingTheStepOtherSourceGoesOnNextRunResumes) { run("pop3"); }

// Over implicit TLS the proxy cuts inside TLS records: the same errors, the same recovery.
class ImapTlsFaults : public DovecotFaults {};
class Pop3TlsFaults : public DovecotFaults {};
TEST_P(ImapTlsFaults, EndsNamingTheStepNextRunResumes) { run("imap", true); }
TEST_P(Pop3TlsFaults, EndsNamingTheStepNextRunResumes) { run("pop3", true); }

INSTANTIATE_TEST_SUITE_P(
    Modes, ImapTlsFaults,
    ::testing::Values(Fault{"blackhole", {"--fault", "blackhole"}, "no TLS handshake from"},
                      Fault{"stall_mid_record", {"--fault", "stall", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"},
                      Fault{"reset_mid_record", {"--fault", "reset", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"},
                      Fault{"trickle_handshake", {"--fault", "trickle", "--after", "0"}, "no TLS handshake from"},
                      Fault{"trickle_mid_record", {"--fault", "trickle", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"},
                      Fault{"garbage_handshake", {"--fault", "garbage", "--after", "0"}, "TLS failure with"},
                      Fault{"garbage_mid_record", {"--fault", "garbage", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"}),
    print);

INSTANTIATE_TEST_SUITE_P(
    Modes, Pop3TlsFaults,
    ::testing::Values(Fault{"stall_mid_record", {"--fault", "stall", "--after", "60000"}, "POP3 RETR 1: timeout:"},
                      Fault{"trickle_mid_record", {"--fault", "trickle", "--after", "60000"}, "POP3 RETR 1: timeout:"},
                      Fault{"garbage_mid_record", {"--fault", "garbage", "--after", "60000"}, "POP3 RETR 1: "}),
    print);

INSTANTIATE_TEST_SUITE_P(
    Modes, ImapFaults,
    ::testing::Values(Fault{"blackhole", {"--fault", "blackhole"}, "IMAP greeting: timeout: no answer from"},
                      Fault{"stall_mid_literal", {"--fault", "stall", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"},
                      Fault{"reset_mid_literal", {"--fault", "reset", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"},
                      Fault{"trickle_greeting", {"--fault", "trickle", "--after", "0"}, "IMAP greeting: timeout:"},
                      Fault{"trickle_mid_literal", {"--fault", "trickle", "--after", "60000"}, "sent only"},
                      Fault{"garbage_greeting", {"--fault", "garbage", "--after", "0"}, "is not an IMAP server"},
                      Fault{"garbage_mid_literal", {"--fault", "garbage", "--after", "60000"}, "IMAP UID FETCH 1 (literal of"}),
    print);

INSTANTIATE_TEST_SUITE_P(
    Modes, Pop3Faults,
    ::testing::Values(Fault{"blackhole", {"--fault", "blackhole"}, "POP3 greeting: timeout: no answer from"},
                      Fault{"stall_mid_retr", {"--fault", "stall", "--after", "60000"}, "POP3 RETR 1: timeout:"},
                      Fault{"reset_mid_retr", {"--fault", "reset", "--after", "60000"}, "POP3 RETR 1: "},
                      Fault{"trickle_greeting", {"--fault", "trickle", "--after", "0"}, "POP3 greeting: timeout:"},
                      Fault{"trickle_mid_retr", {"--fault", "trickle", "--after", "60000"}, "POP3 RETR 1: timeout:"},
                      Fault{"garbage_greeting", {"--fault", "garbage", "--after", "0"}, "is not a POP3 server"},
                      Fault{"garbage_mid_retr", {"--fault", "garbage", "--after", "60000"}, "POP3 RETR 1: timeout:"}),
    print);

// ---- Graph against tools/fake-graph -------------------------------------------------------------

class GraphFaults : public ::testing::TestWithParam<Fault> {};

TEST_P(GraphFaults, EndsNamingTheStepNextRunResumes) {
    const Fault& f = GetParam();
    TempDir t;
    // The server's copies: a Maildir the fake serves verbatim, the first one large.
    fs::path md = t / "mail";
    for (auto sub : {"cur", "new", "tmp"}) fs::create_directories(md / sub);
    std::multiset<std::string> want;
    for (int i = 0; i < 15; ++i) {
        std::string m = make_message("graph", i, i == 0 ? 300000 : 3000);
        want.insert(sha_hex(m));
        write_file(md / "cur" / (std::to_string(i + 1) + ".graph:2,S"), m);
    }
    graph::FakeGraph fake(t / "fake", {"--maildir", md.string(), "--folders", "Inbox"});
    ASSERT_TRUE(fake.ok()) << fake.log();
    auto port_of = [](const std::string& url) { return std::atoi(url.substr(url.rfind(':') + 1).c_str()); };
    FaultProxy proxy(port_of(fake.url()), f.args);
    ASSERT_GT(proxy.port, 0);
    // A second source that is not faulted: a local Maildir.
    fs::path local = t / "local";
    for (auto sub : {"cur", "new", "tmp"}) fs::create_directories(local / sub);
    for (int i = 0; i < 4; ++i) write_file(local / "cur" / ("l" + std::to_string(i) + ":2,S"), make_message("local", i, 500));
    auto write = [&](const std::string& graph_url) {
        write_file(t / "mailvault.toml",
                   "[archive]\npath = \"" + (t / "archive").string() + "\"\n\n[[source]]\nname = \"office\"\ntype = \"graph\"\n" +
                       "tenant = \"" + graph::k_tenant + "\"\nclient_id = \"" + graph::k_client_id +
                       "\"\nclient_secret_env = \"MV_TEST_GRAPH_SECRET\"\nmailboxes = [\"user0@contoso.test\"]\n" +
                       "authority_url = \"" + fake.url() + "\"\ngraph_url = \"" + graph_url +
                       "\"\nretry_base_ms = 20\ntimeout = 2\nconnect_timeout = 2\nconcurrency = 2\n\n" +
                       "[[source]]\nname = \"other\"\ntype = \"maildir\"\npath = \"" + local.string() +
                       "\"\nmailbox = \"ops@example.com\"\n");
    };
    write("http://127.0.0.1:" + std::to_string(proxy.port));
    Timer timer;
    auto r = run_mailvault(graph::mv_args(t.path(), {"sync"}), "", {"MV_TEST_GRAPH_SECRET=" + graph::k_secret});
    std::cout << "[ fault graph " << f.name << " ] sync ended after " << timer.seconds() << " s, exit " << r.exit_code << "\n";
    print_lines(r.err, "source 'office'");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("source 'office': "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(f.expect), std::string::npos) << "expected '" << f.expect << "' in:\n" << r.err;
    EXPECT_EQ(r.err.find(graph::k_secret), std::string::npos);
    EXPECT_EQ(graph::count(t.path(), "source:other"), 4);

    write(fake.url());
    r = run_mailvault(graph::mv_args(t.path(), {"sync"}), "", {"MV_TEST_GRAPH_SECRET=" + graph::k_secret});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(graph::count(t.path(), "source:office"), 15);
    auto c = archive_contents(t / "archive");
    EXPECT_EQ(c.docs, 19u);
    std::multiset<std::string> office;
    for (auto& d : c.digests)
        if (want.count(d)) office.insert(d);
    EXPECT_EQ(office, want);
    auto v = run_mailvault(graph::mv_args(t.path(), {"verify"}));
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

// after 300 bytes: mid-JSON of the first answer on each connection (the folder list).
INSTANTIATE_TEST_SUITE_P(
    Modes, GraphFaults,
    ::testing::Values(Fault{"blackhole", {"--fault", "blackhole"}, "Timeout was reached"},
                      Fault{"stall_mid_json", {"--fault", "stall", "--after", "300"}, "Timeout was reached"},
                      Fault{"reset_mid_json", {"--fault", "reset", "--after", "300"}, "cannot reach"},
                      Fault{"trickle", {"--fault", "trickle", "--after", "0"}, "Timeout was reached"},
                      Fault{"garbage", {"--fault", "garbage", "--after", "0"}, "cannot reach"}),
    print);

// One stalled $value among good connections: retried on a fresh connection, nothing lost.
TEST(GraphFaultsOnce, StalledMessageBodyIsRetried) {
    TempDir t;
    fs::path md = t / "mail";
    for (auto sub : {"cur", "new", "tmp"}) fs::create_directories(md / sub);
    std::multiset<std::string> want;
    for (int i = 0; i < 6; ++i) {
        std::string m = make_message("retry", i, 200000);
        want.insert(sha_hex(m));
        write_file(md / "cur" / (std::to_string(i + 1) + ".retry:2,S"), m);
    }
    graph::FakeGraph fake(t / "fake", {"--maildir", md.string(), "--folders", "Inbox"});
    ASSERT_TRUE(fake.ok()) << fake.log();
    auto port = std::atoi(fake.url().substr(fake.url().rfind(':') + 1).c_str());
    // The second connection (a fetch worker's) stalls after 50,000 bytes: mid-$value.
    FaultProxy proxy(port, {"--fault", "stall", "--after", "50000", "--skip", "1", "--faults", "1"});
    ASSERT_GT(proxy.port, 0);
    graph::write_config(t.path(), fake, {{"user0@contoso.test"}, "timeout = 2\nconcurrency = 2\n"});
    auto text = read_file(t / "mailvault.toml");
    auto pos = text.find("graph_url = \"" + fake.url());
    text.replace(pos, 13 + fake.url().size(), "graph_url = \"http://127.0.0.1:" + std::to_string(proxy.port));
    write_file(t / "mailvault.toml", text);
    auto r = graph::sync(t.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(archive_contents(t / "archive").digests, want);
}

// ---- SMTP: the run report ---------------------------------------------------------------------

class SmtpFaults : public ::testing::TestWithParam<Fault> {};

TEST_P(SmtpFaults, ReportFailureIsLoggedArchiveRunKeepsItsResult) {
    const Fault& f = GetParam();
    TempDir t;
    std::string why;
    auto server = SmtpServer::start(t / "smtpd", {}, &why);
    if (!server) {
        if (servers_required()) FAIL() << why;
        GTEST_SKIP() << why;
    }
    FaultProxy proxy(server->port, f.args);
    ASSERT_GT(proxy.port, 0);
    fs::path local = t / "local";
    for (auto sub : {"cur", "new", "tmp"}) fs::create_directories(local / sub);
    for (int i = 0; i < 5; ++i) write_file(local / "cur" / ("l" + std::to_string(i) + ":2,S"), make_message("smtp", i, 500));
    write_file(t / "mailvault.toml", "[archive]\npath = \"" + (t / "archive").string() +
                                         "\"\n\n[[source]]\nname = \"local\"\ntype = \"maildir\"\npath = \"" + local.string() +
                                         "\"\nmailbox = \"ops@example.com\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = " +
                                         std::to_string(proxy.port) + "\nsecurity = \"none\"\nauth_required = false\n" +
                                         "sender = \"archive@vault.test\"\nreport_recipients = [\"boss@vault.test\"]\ntimeout = 2\n");
    Timer timer;
    auto r = run_mailvault({"--config", (t / "mailvault.toml").string(), "sync"});
    std::cout << "[ fault smtp " << f.name << " ] sync ended after " << timer.seconds() << " s, exit " << r.exit_code << "\n";
    print_lines(r.err, "run report");
    EXPECT_EQ(r.exit_code, 0) << r.err;  // the archive run succeeded; the report is one log line
    EXPECT_NE(r.err.find("run report not sent: smtp: " + f.expect), std::string::npos) << r.err;
    EXPECT_EQ(server->received().size(), 0u);
    EXPECT_EQ(archive_contents(t / "archive").docs, 5u);
    auto st = run_mailvault({"--config", (t / "mailvault.toml").string(), "stats"});
    EXPECT_EQ(st.exit_code, 0) << st.err;
}

INSTANTIATE_TEST_SUITE_P(
    Modes, SmtpFaults,
    ::testing::Values(Fault{"blackhole", {"--fault", "blackhole"}, "greeting failed: "},
                      Fault{"stall_after_greeting", {"--fault", "stall", "--after", "40"}, "EHLO failed: "},
                      Fault{"reset_after_greeting", {"--fault", "reset", "--after", "40"}, "EHLO failed: "},
                      Fault{"trickle", {"--fault", "trickle", "--after", "0"}, "greeting failed: "},
                      Fault{"garbage", {"--fault", "garbage", "--after", "0"}, "greeting failed: "}),
    print);

}  // namespace
}  // namespace mv::test::faults
