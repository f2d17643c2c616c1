// `mailvault sync` and `mailvault check` end to end against a private Dovecot (IMAP and POP3).
#include <fstream>

#include "common.hpp"

namespace mv::test {
namespace {

class CliDovecotTest : public DovecotTest {
  protected:
    void SetUp() override {
        if (mailvault_binary().empty() || !std::filesystem::exists(mailvault_binary()))
            GTEST_SKIP() << "no mailvault binary in this build";
        DovecotTest::SetUp();
    }
    std::filesystem::path config(const std::vector<SourceConfig>& sources) {
        auto path = tmp / "mailvault.toml";
        std::ofstream out(path);
        for (auto& s : sources) {
            out << "[[source]]\nname = \"" << s.name << "\"\ntype = \"" << s.type << "\"\n";
            for (auto& [k, v] : s.strings) {
                bool number = k == "port" || k == "timeout";
                bool boolean = v == "true" || v == "false";
                out << k << " = " << (number || boolean ? v : "\"" + v + "\"") << "\n";
            }
            out << "\n";
        }
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);  // holds a password
        return path;
    }
    RunResult mv(const std::vector<std::string>& args) {
        std::vector<std::string> a{"--archive", (tmp / "archive").string(), "--config", (tmp / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a);
    }
    TempDir tmp;
};

TEST_F(CliDovecotTest, SyncImapAndPop3ThenIncremental) {
    if (!server->fill_from_corpus("alice", "INBOX", "varied.mbox.zst", 50)) GTEST_SKIP() << "corpus missing";
    server->deliver("alice", "Entwürfe", message("Grüße aus Köln"));
    for (int i = 0; i < 5; ++i) server->deliver("bob", "INBOX", message("pop " + std::to_string(i)));
    auto imap = server->source("mailhost", "imap", "alice");
    auto pop = server->source("pop", "pop3", "bob", "starttls");
    pop.strings["delete_after_archive"] = "true";
    config({imap, pop});

    auto r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = mv({"search", "*", "--count"});
    EXPECT_EQ(r.out, "56\n") << r.err;
    r = mv({"search", "folder:Entwürfe", "--count"});
    EXPECT_EQ(r.out, "1\n") << r.err;
    r = mv({"search", "source:pop", "--count"});
    EXPECT_EQ(r.out, "5\n") << r.err;

    auto check = mv({"check", "pop"});
    EXPECT_EQ(check.exit_code, 0) << check.err;
    EXPECT_NE(check.out.find("folder INBOX: 0 messages"), std::string::npos) << check.out;  // deleted after archive

    server->deliver("alice", "INBOX", message("one more"));
    r = mv({"sync", "mailhost"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = mv({"search", "*", "--count"});
    EXPECT_EQ(r.out, "57\n");
    r = mv({"search", "subject:\"one more\"", "--count"});
    EXPECT_EQ(r.out, "1\n");
}

TEST_F(CliDovecotTest, CheckPrintsAccountFoldersNewestAndFailsWithExit3) {
    server->deliver("alice", "INBOX", message("older"));
    server->deliver("alice", "Archiv/Übersicht", message("the newest one"));
    auto good = server->source("mailhost", "imap", "alice");
    auto bad_pw = good;
    bad_pw.name = "badpw";
    bad_pw.strings["password"] = "wrong-secret-123";
    auto bad_port = good;
    bad_port.name = "badport";
    bad_port.strings["port"] = "1";
    auto bad_host = good;
    bad_host.name = "badhost";
    bad_host.strings["host"] = "no-such-host.invalid";
    auto bad_tls = good;
    bad_tls.name = "badtls";
    bad_tls.strings.erase("ca_file");
    config({good, bad_pw, bad_port, bad_host, bad_tls});

    auto r = mv({"check", "mailhost"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("account: alice"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("folder INBOX: 1 messages"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("folder Archiv/Übersicht: 1 messages"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("newest message: \"the newest one\""), std::string::npos) << r.out;

    std::set<std::string> lines;
    for (std::string name : {"badpw", "badport", "badhost", "badtls"}) {
        SCOPED_TRACE(name);
        auto f = mv({"check", name});
        EXPECT_EQ(f.exit_code, 3) << f.out << f.err;
        EXPECT_NE(f.err.find("source '" + name + "'"), std::string::npos) << f.err;
        EXPECT_EQ(f.err.find("wrong-secret-123"), std::string::npos);
        lines.insert(f.err.substr(f.err.find("': ") + 3));
    }
    EXPECT_EQ(lines.size(), 4u);
}

}  // namespace
}  // namespace mv::test
