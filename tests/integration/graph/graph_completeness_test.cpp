// Issue 13 for Graph: the completeness record of a sync (totalItemCount against what is
// archived, per mailbox and folder) and `verify --source` against tools/fake-graph.
#include <set>

#include "fake_graph_fixture.hpp"

namespace mv::test::graph {
namespace {

std::string fake_args_error(FakeGraph& f) { return "fake-graph did not start: " + f.log(); }

json last_sync(const fs::path& dir, const std::string& source) {
    auto r = run_mailvault(mv_args(dir, {"stats", "--json"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) return json::object();
    for (auto& s : j["last_sync"])
        if (s.value("source", "") == source) return s;
    return json::object();
}

json folder(const json& run, const std::string& mailbox, const std::string& name) {
    for (auto& f : run.value("folders", json::array()))
        if (f.value("mailbox", "") == mailbox && f.value("folder", "") == name) return f;
    return json::object();
}

RunResult verify(const fs::path& dir, bool as_json) {
    std::vector<std::string> a{"verify", "--source", "office"};
    if (as_json) a.push_back("--json");
    return run_mailvault(mv_args(dir, a), "", {"MV_TEST_GRAPH_SECRET=" + k_secret});
}

TEST(GraphCompleteness, RecordsPerFolderAndVerifyNamesWhatIsNotArchived) {
    TempDir t;
    FakeGraph fake(t / "fake", {"--generate", "12", "--folders", "Inbox,Archive"});
    ASSERT_TRUE(fake.ok()) << fake_args_error(fake);
    write_config(t.path(), fake, {{"user0@contoso.test"}, "page_size = 5\n"});
    auto r = sync(t.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json run = last_sync(t.path(), "office");
    EXPECT_EQ(run["complete"], true) << run.dump();
    std::uint64_t listed = 0, archived = 0;
    for (auto& f : run["folders"]) {
        EXPECT_EQ(f["mailbox"], "user0@contoso.test");
        EXPECT_EQ(f["listed"], f["archived"]) << f.dump();
        EXPECT_EQ(f["failed"], 0);
        EXPECT_EQ(f["pending"], 0);
        listed += f["listed"].get<std::uint64_t>();
        archived += f["archived"].get<std::uint64_t>();
    }
    EXPECT_EQ(listed, 12u);
    EXPECT_EQ(archived, 12u);
    auto v = verify(t.path(), false);
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

    // One new message on the server, one archived message deleted there.
    auto added = fake.control("add?mailbox=user0@contoso.test&folder=Inbox",
                              "From: a@example.org\nSubject: not yet archived\nMessage-ID: <late@example.org>\n\nx\n");
    ASSERT_TRUE(added.is_object());
    const std::string new_id = added["id"];
    auto victim = fake.dump()[2];
    ASSERT_TRUE(fake.control("remove?mailbox=user0@contoso.test&id=" + ingest::oauth::url_encode(victim["id"])).is_object());
    v = verify(t.path(), true);
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    json j = json::parse(v.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << v.out;
    EXPECT_EQ(j["not_archived"], 1);
    EXPECT_EQ(j["listed"], 12);
    std::set<std::string> named;
    for (auto& f : j["folders"])
        for (auto& m : f["not_archived"]) named.insert(f["folder"].get<std::string>() + " " + m["id"].get<std::string>() + " " + m["subject"].get<std::string>());
    EXPECT_EQ(named, (std::set<std::string>{"Inbox " + new_id + " not yet archived"}));
    auto text = verify(t.path(), false);
    EXPECT_NE(text.out.find("not archived: user0@contoso.test/Inbox id " + new_id + " \"not yet archived\""), std::string::npos)
        << text.out;

    r = sync(t.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json inbox = folder(last_sync(t.path(), "office"), "user0@contoso.test", "Inbox");
    EXPECT_EQ(inbox["new"], 1) << inbox.dump();
    EXPECT_EQ(inbox["complete"], true) << inbox.dump();
    v = verify(t.path(), false);
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

TEST(GraphCompleteness, AMailboxThatRefusesAccessMakesTheRunPartialAndIsNamed) {
    TempDir t;
    FakeGraph fake(t / "fake", {"--generate", "6", "--mailboxes", "2", "--folders", "Inbox"});
    ASSERT_TRUE(fake.ok()) << fake_args_error(fake);
    write_config(t.path(), fake, {{"user0@contoso.test", "user1@contoso.test"}, ""});
    ASSERT_EQ(sync(t.path()).exit_code, 0);
    ASSERT_TRUE(fake.control("deny?mailbox=user1@contoso.test").is_object());
    ASSERT_TRUE(fake.control("add?mailbox=user1@contoso.test&folder=Inbox",
                             "From: a@example.org\nSubject: behind a closed door\nMessage-ID: <door@example.org>\n\nx\n")
                    .is_object());
    auto r = sync(t.path());
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("office: skipped user1@contoso.test/"), std::string::npos) << r.err;
    json run = last_sync(t.path(), "office");
    EXPECT_EQ(run["result"], "partial");
    EXPECT_EQ(run["complete"], false);
    EXPECT_EQ(folder(run, "user0@contoso.test", "Inbox")["complete"], true) << run.dump();
    bool named = false;
    for (auto& f : run["folders"])
        if (f["mailbox"] == "user1@contoso.test" && f["failed"].get<int>() > 0) named = true;
    EXPECT_TRUE(named) << run.dump();
    auto v = verify(t.path(), false);
    EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
    EXPECT_NE(v.out.find("user1@contoso.test/"), std::string::npos) << v.out;
    auto prom = run_mailvault(mv_args(t.path(), {"stats", "--prometheus"}));
    EXPECT_NE(prom.out.find("mailvault_folder_complete{source=\"office\",mailbox=\"user0@contoso.test\",folder=\"Inbox\"} 1"),
              std::string::npos) << prom.out;
}

}  // namespace
}  // namespace mv::test::graph
