// Issue 13: the completeness record of a sync (stats, stats --json, stats --prometheus) and
// `verify --source` against a private Dovecot, over IMAP and POP3.
#include <nlohmann/json.hpp>

#include <fstream>

#include "common.hpp"

namespace mv::test {
namespace {

using json = nlohmann::json;

class CompletenessDovecotTest : public DovecotTest {
  protected:
    void SetUp() override {
        if (mailvault_binary().empty() || !std::filesystem::exists(mailvault_binary()))
            GTEST_SKIP() << "no mailvault binary in this build";
        DovecotTest::SetUp();
    }
    void config(const std::vector<SourceConfig>& sources) {
        auto path = tmp / "mailvault.toml";
        std::ofstream out(path);
        for (auto& s : sources) {
            out << "[[source]]\nname = \"" << s.name << "\"\ntype = \"" << s.type << "\"\n";
            for (auto& [k, v] : s.strings) {
                bool number = k == "port" || k == "timeout";
                out << k << " = " << (number ? v : "\"" + v + "\"") << "\n";
            }
            out << "\n";
        }
        out.close();
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    RunResult mv(const std::vector<std::string>& args) {
        std::vector<std::string> a{"--archive", (tmp / "archive").string(), "--config", (tmp / "mailvault.toml").string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a);
    }
    // The completeness record of `source`'s last sync, folder by folder.
    json folders_of(const std::string& source) {
        auto r = mv({"stats", "--json"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        json j = json::parse(r.out, nullptr, false);
        if (!j.is_object()) return json::array();
        for (auto& s : j["last_sync"])
            if (s.value("source", "") == source) return s.value("folders", json::array());
        return json::array();
    }
    static json folder(const json& folders, const std::string& name) {
        for (auto& f : folders)
            if (f.value("folder", "") == name) return f;
        return json::object();
    }
    // What `verify --source --json` says is not archived: "folder id subject" each.
    std::set<std::string> not_archived(const std::string& source, int* exit_code) {
        auto r = mv({"verify", "--source", source, "--json"});
        *exit_code = r.exit_code;
        std::set<std::string> out;
        json j = json::parse(r.out, nullptr, false);
        EXPECT_TRUE(j.is_object()) << r.out << r.err;
        if (!j.is_object()) return out;
        for (auto& f : j["folders"])
            for (auto& m : f["not_archived"])
                out.insert(f.value("folder", "") + " " + m.value("id", "") + " " + m.value("subject", ""));
        return out;
    }
    TempDir tmp;
};

TEST_F(CompletenessDovecotTest, ImapRecordsPerFolderAndVerifyNamesWhatIsNotArchived) {
    for (int i = 0; i < 3; ++i) server->deliver("alice", "INBOX", message("inbox " + std::to_string(i)));
    server->deliver("alice", "Archiv", message("filed away"));
    config({server->source("mailhost", "imap", "alice")});

    auto r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json folders = folders_of("mailhost");
    ASSERT_EQ(folders.size(), 2u) << folders.dump();
    json inbox = folder(folders, "INBOX");
    EXPECT_EQ(inbox["mailbox"], "alice");
    EXPECT_EQ(inbox["listed"], 3);
    EXPECT_EQ(inbox["archived"], 3);
    EXPECT_EQ(inbox["new"], 3);
    EXPECT_EQ(inbox["failed"], 0);
    EXPECT_EQ(inbox["pending"], 0);
    EXPECT_EQ(inbox["complete"], true);
    EXPECT_EQ(folder(folders, "Archiv")["archived"], 1);

    int code = -1;
    EXPECT_TRUE(not_archived("mailhost", &code).empty());
    EXPECT_EQ(code, 0);

    // New on the server, and one archived message deleted there: verify names exactly the new one.
    server->deliver("alice", "INBOX", message("arrived later"));
    for (const char* sub : {"new", "cur"})  // the sync's SELECT may have moved it to cur/
        for (auto& e : std::filesystem::directory_iterator(server->maildir("alice", "Archiv") / sub))
            std::filesystem::remove(e.path());
    auto missing = not_archived("mailhost", &code);
    EXPECT_EQ(code, 1);
    EXPECT_EQ(missing, (std::set<std::string>{"INBOX 4 arrived later"}));
    auto text = mv({"verify", "--source", "mailhost"});
    EXPECT_EQ(text.exit_code, 1);
    EXPECT_NE(text.out.find("not archived: alice/INBOX UID 4 \"arrived later\" (Mon, 20 Nov 2023 10:00:00 +0000)"),
              std::string::npos) << text.out;
    EXPECT_NE(text.out.find("alice/Archiv: 0 on the server, 0 archived"), std::string::npos) << text.out;

    // An incremental sync: the three below the checkpoint count as archived, the new one is new.
    r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    inbox = folder(folders_of("mailhost"), "INBOX");
    EXPECT_EQ(inbox["listed"], 4);
    EXPECT_EQ(inbox["archived"], 4);
    EXPECT_EQ(inbox["new"], 1);
    EXPECT_TRUE(not_archived("mailhost", &code).empty());
    EXPECT_EQ(code, 0);

    // Something that is not mail cannot be archived: the run is partial and says what it skipped.
    server->deliver("alice", "INBOX", "this is not a mail message\nno header at all\n");
    r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("mailhost: skipped alice/INBOX: 1 failed (5: not mail"), std::string::npos) << r.err;
    inbox = folder(folders_of("mailhost"), "INBOX");
    EXPECT_EQ(inbox["listed"], 5);
    EXPECT_EQ(inbox["archived"], 4);
    EXPECT_EQ(inbox["failed"], 1);
    EXPECT_EQ(inbox["complete"], false);
    ASSERT_EQ(inbox["failures"].size(), 1u);
    EXPECT_EQ(inbox["failures"][0]["id"], "5");
    missing = not_archived("mailhost", &code);
    EXPECT_EQ(code, 1);
    EXPECT_EQ(missing.size(), 1u);
    EXPECT_EQ(missing.count("INBOX 5 "), 1u) << *missing.begin();

    auto stats = mv({"stats"});
    EXPECT_NE(stats.out.find("    INBOX: 5 listed, 4 archived, 1 failed INCOMPLETE\n      id 5: not mail"), std::string::npos)
        << stats.out;
    for (std::size_t pos = 0, end; pos < stats.out.size(); pos = end + 1) {
        end = stats.out.find('\n', pos);
        if (end == std::string::npos) end = stats.out.size();
        EXPECT_LE(end - pos, 80u) << stats.out.substr(pos, end - pos);
    }
    auto prom = mv({"stats", "--prometheus"});
    EXPECT_NE(prom.out.find("mailvault_folder_listed{source=\"mailhost\",mailbox=\"alice\",folder=\"INBOX\"} 5\n"),
              std::string::npos) << prom.out;
    EXPECT_NE(prom.out.find("mailvault_folder_archived{source=\"mailhost\",mailbox=\"alice\",folder=\"INBOX\"} 4\n"),
              std::string::npos);
    EXPECT_NE(prom.out.find("mailvault_folder_failed{source=\"mailhost\",mailbox=\"alice\",folder=\"INBOX\"} 1\n"),
              std::string::npos);
    EXPECT_NE(prom.out.find("mailvault_folder_pending{source=\"mailhost\",mailbox=\"alice\",folder=\"Archiv\"} 0\n"),
              std::string::npos);
}

TEST_F(CompletenessDovecotTest, ImapUidvalidityChangeMeansNothingIsMatchedUntilTheNextSync) {
    server->deliver("alice", "INBOX", message("one"));
    server->deliver("alice", "INBOX", message("two"));
    config({server->source("mailhost", "imap", "alice")});
    ASSERT_EQ(mv({"sync"}).exit_code, 0);
    server->reset_uidvalidity("alice", "INBOX", 777);
    auto r = mv({"verify", "--source", "mailhost"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("UIDVALIDITY is 777"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2 NOT archived"), std::string::npos) << r.out;
    ASSERT_EQ(mv({"sync"}).exit_code, 0);
    r = mv({"verify", "--source", "mailhost"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(CompletenessDovecotTest, Pop3RecordsAndVerifyByUidl) {
    for (int i = 0; i < 4; ++i) server->deliver("bob", "INBOX", message("pop " + std::to_string(i)));
    config({server->source("pop", "pop3", "bob", "starttls")});
    auto r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json inbox = folder(folders_of("pop"), "INBOX");
    EXPECT_EQ(inbox["mailbox"], "bob");
    EXPECT_EQ(inbox["listed"], 4);
    EXPECT_EQ(inbox["archived"], 4);
    EXPECT_EQ(inbox["complete"], true);
    int code = -1;
    EXPECT_TRUE(not_archived("pop", &code).empty());
    EXPECT_EQ(code, 0);

    server->deliver("bob", "INBOX", message("pop late"));
    auto missing = not_archived("pop", &code);
    EXPECT_EQ(code, 1);
    ASSERT_EQ(missing.size(), 1u);
    EXPECT_NE(missing.begin()->find(" pop late"), std::string::npos) << *missing.begin();
    EXPECT_EQ(missing.begin()->rfind("INBOX ", 0), 0u);

    r = mv({"sync"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    inbox = folder(folders_of("pop"), "INBOX");
    EXPECT_EQ(inbox["listed"], 5);
    EXPECT_EQ(inbox["archived"], 5);
    EXPECT_EQ(inbox["new"], 1);
    EXPECT_TRUE(not_archived("pop", &code).empty());
    EXPECT_EQ(code, 0);
}

TEST_F(CompletenessDovecotTest, ADeadlineLeavesMessagesPendingAndTheNextSyncCompletesThem) {
    for (int i = 0; i < 60; ++i) server->deliver("alice", "INBOX", message("bulk " + std::to_string(i)));
    DelayProxy proxy(server->imaps, 150);  // every round trip 150 ms: the deadline comes first
    ASSERT_GT(proxy.port, 0);
    auto s = server->source("mailhost", "imap", "alice");
    s.strings["port"] = std::to_string(proxy.port);
    s.strings["fetch_batch"] = "2";
    config({s});
    // fetch_batch is a number
    {
        std::string text = read_file(tmp / "mailvault.toml");
        auto p = text.find("fetch_batch = \"2\"");
        ASSERT_NE(p, std::string::npos);
        text.replace(p, std::string("fetch_batch = \"2\"").size(), "fetch_batch = 2");
        write_file(tmp / "mailvault.toml", text);
        std::filesystem::permissions(tmp / "mailvault.toml", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    auto r = mv({"sync", "--deadline", "2s"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    json inbox = folder(folders_of("mailhost"), "INBOX");
    EXPECT_EQ(inbox["complete"], false) << inbox.dump();
    EXPECT_NE(r.err.find("mailhost: skipped alice/INBOX: "), std::string::npos) << r.err;
    if (inbox["listed"].is_number()) {  // listed before the deadline: the rest is pending
        EXPECT_EQ(inbox["listed"], 60);
        EXPECT_GT(inbox["pending"].get<int>(), 0) << inbox.dump();
        EXPECT_EQ(inbox["archived"].get<int>() + inbox["pending"].get<int>(), 60) << inbox.dump();
        EXPECT_NE(r.err.find(" still to fetch"), std::string::npos) << r.err;
    }
    r = mv({"sync"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    inbox = folder(folders_of("mailhost"), "INBOX");
    EXPECT_EQ(inbox["listed"], 60);
    EXPECT_EQ(inbox["archived"], 60);
    EXPECT_EQ(inbox["pending"], 0);
    EXPECT_EQ(inbox["complete"], true);
}

TEST_F(CompletenessDovecotTest, UnreachableServerIsExit3AndUnknownSourceExit2) {
    auto s = server->source("mailhost", "imap", "alice");
    config({s});
    ASSERT_EQ(mv({"sync"}).exit_code, 0);  // an archive to compare with
    s.strings["port"] = "1";
    config({s});
    auto r = mv({"verify", "--source", "mailhost"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("source 'mailhost'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("pw-alice"), std::string::npos);
    EXPECT_EQ(mv({"verify", "--source", "nosuch"}).exit_code, 2);
}

}  // namespace
}  // namespace mv::test
