// `mailvault sync` end to end against Courier and Dovecot: folder: finds the same folders on
// both (no "INBOX." namespace in labels), folder:INBOX is the inbox, a repeat sync adds nothing.
#include <fstream>
#include <regex>

#include "servers.hpp"

namespace mv::test {
namespace {

class CliServers : public TwoServerTest {
  protected:
    void SetUp() override {
        if (mailvault_binary().empty() || !std::filesystem::exists(mailvault_binary()))
            GTEST_SKIP() << "no mailvault binary in this build";
        TwoServerTest::SetUp();
    }
    void config(const std::vector<SourceConfig>& sources) {
        std::ofstream out(tmp / "mailvault.toml");
        for (auto& s : sources) {
            out << "[[source]]\nname = \"" << s.name << "\"\ntype = \"" << s.type << "\"\n";
            for (auto& [k, v] : s.strings) {
                bool number = k == "port" || k == "timeout";
                out << k << " = " << (number ? v : "\"" + v + "\"") << "\n";
            }
            out << "\n";
        }
        out.close();
        // It holds passwords: the config loader refuses a file others can read.
        std::filesystem::permissions(tmp / "mailvault.toml",
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    RunResult mv(const std::vector<std::string>& args) {
        std::vector<std::string> a{"--archive", (tmp / "archive").string(), "--config", (tmp / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a);
    }
    TempDir tmp;
};

TEST_P(CliServers, FolderLabelsAreTheSameOnEveryServer) {
    for (int i = 0; i < 3; ++i) server->deliver("alice", "INBOX", message("inbox " + std::to_string(i)));
    server->deliver("alice", "Archiv", message("Grüße aus Köln", "Bärlauch"));
    server->deliver("alice", "Archiv", message("archived two"));
    server->deliver("alice", "Archiv/Übersicht", message("overview"));
    server->deliver("alice", "Entwürfe", message("draft"));
    for (int i = 0; i < 2; ++i) server->deliver("bob", "INBOX", message("pop " + std::to_string(i)));
    config({server->source("mailhost", "imap", "alice"), server->source("pop", "pop3", "bob", "starttls")});

    auto r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    struct Case {
        std::string query;
        std::string count;
    };
    for (const Case& c : std::vector<Case>{{"*", "9"},
                                           {"source:mailhost", "7"},
                                           {"folder:INBOX AND source:mailhost", "3"},
                                           {"folder:INBOX", "5"},  // the POP3 maildrop is an INBOX too
                                           {"folder:Archiv", "3"},  // Archiv and Archiv/Übersicht
                                           {"folder:Archiv/Übersicht", "1"},
                                           {"folder:Entwürfe", "1"},
                                           {"subject:Grüße", "1"}}) {
        SCOPED_TRACE(c.query);
        auto s = mv({"search", c.query, "--count"});
        EXPECT_EQ(s.out, c.count + "\n") << s.err;
    }
    auto stats = mv({"stats", "--json"});
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    for (std::string nested : {"INBOX/", "inbox/"}) EXPECT_EQ(stats.out.find(nested), std::string::npos) << stats.out;

    r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto s = mv({"search", "*", "--count"});
    EXPECT_EQ(s.out, "9\n") << r.err;
    EXPECT_FALSE(std::regex_search(r.err, std::regex("[^0-9][1-9][0-9]* new"))) << r.err;  // a repeat adds nothing
}

INSTANTIATE_TEST_SUITE_P(Servers, CliServers, ::testing::Values("courier", "dovecot"), server_name);

}  // namespace
}  // namespace mv::test
