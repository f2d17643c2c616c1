// mailvault search/link/show/export/stats/verify through the binary, on data/mail/query.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "index/archive.hpp"
#include "index/document/builder.hpp"
#include "index/util/sha256.hpp"
#include "support/testutil.hpp"

namespace mv::test {
namespace {

std::filesystem::path fixtures() { return data_dir() / "mail" / "query"; }

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

class QueryE2E : public ::testing::Test {
  protected:
    void SetUp() override {
        arc_ = dir_ / "arc";
        std::vector<std::string> args{"import"};
        std::vector<std::string> files;
        for (const auto& f : std::filesystem::directory_iterator(fixtures()))
            if (f.path().extension() == ".eml") files.push_back(f.path().string());
        std::sort(files.begin(), files.end());
        args.insert(args.end(), files.begin(), files.end());
        args.insert(args.end(), {"--mailbox", "alice@example.com", "--folder", "Inbox"});
        auto r = mv(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    RunResult mv(std::vector<std::string> args, const std::string& archive = "") {
        args.insert(args.begin(), {"--archive", archive.empty() ? arc_.string() : archive, "--quiet"});
        return run_mailvault(args);
    }
    std::uint64_t docno_of(const std::string& msgid) {
        auto r = mv({"search", "--json", "msgid:" + msgid});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        auto l = lines(r.out);
        if (l.size() != 1) {
            ADD_FAILURE() << msgid << ": " << r.out;
            return 0;
        }
        return nlohmann::json::parse(l[0])["docno"].get<std::uint64_t>();
    }
    // SHA-256 and dedupe-key terms of every document of an archive.
    static std::set<std::string> identities(const std::filesystem::path& arc) {
        std::set<std::string> out;
        auto a = index::Archive::open(arc, index::OpenMode::read);
        EXPECT_TRUE(a) << a.error().message;
        if (!a) return out;
        Xapian::Database db = (*a)->database();
        for (auto p = db.postlist_begin(""); p != db.postlist_end(""); ++p) {
            Xapian::Document d = db.get_document(*p);
            std::string key;
            for (auto t = d.termlist_begin(); t != d.termlist_end(); ++t)
                if ((*t).rfind("Q", 0) == 0) key = *t;
            out.insert(index::DocData::from_json(d.get_data()).sha256 + " " + key);
        }
        return out;
    }
    TempDir dir_;
    std::filesystem::path arc_;
};

TEST_F(QueryE2E, SearchJsonCountSortLimitOffset) {
    auto all = mv({"search", "--json", "--limit", "100", "*"});
    ASSERT_EQ(all.exit_code, 0) << all.err;
    auto l = lines(all.out);
    ASSERT_EQ(l.size(), 16u);
    std::int64_t prev = INT64_MAX;
    for (const auto& line : l) {
        auto j = nlohmann::ordered_json::parse(line);
        ASSERT_EQ(j.size(), 16u) << line;  // DESIGN.md's 11 keys, then cc, message_id, thread, flags, broken
        EXPECT_EQ(j.begin().key(), "docno");
        EXPECT_EQ(std::next(j.begin(), 10).key(), "link");
        EXPECT_EQ(j["link"], "http://127.0.0.1:8025/m/" + std::to_string(j["docno"].get<int>()));
        EXPECT_TRUE(j["mailboxes"] == nlohmann::ordered_json::array({"alice@example.com"})) << line;
        auto date = j["date"].get<std::string>();
        std::tm tm{};
        strptime(date.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
        std::int64_t t = timegm(&tm);
        EXPECT_LE(t, prev) << "newest first";
        prev = t;
    }
    auto count = mv({"search", "--count", "has:attachment"});
    EXPECT_EQ(count.exit_code, 0);
    EXPECT_EQ(count.out, "3\n");
    auto page = mv({"search", "--json", "--sort", "oldest", "--limit", "2", "--offset", "1", "date:2023"});
    ASSERT_EQ(page.exit_code, 0) << page.err;
    auto p = lines(page.out);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(nlohmann::json::parse(p[0])["subject"], "会議の議事録");
    auto words = mv({"search", "--count", "kernel", "-panic"});  // several arguments form one query
    EXPECT_EQ(words.out, "1\n") << words.err;
    auto text = mv({"search", "quarterly report"});
    ASSERT_EQ(text.exit_code, 0);
    EXPECT_EQ(lines(text.out).size(), 2u);
    EXPECT_NE(text.out.find("Quarterly report"), std::string::npos);
}

TEST_F(QueryE2E, BadQueriesExitTwoWithOneLine) {
    for (std::vector<std::string> q : {std::vector<std::string>{"*rupt"}, {"(kernel"}, {"date:2023-13"},
                                       {"kernel", "AND"}, {"size:huge"}, {"has:picture"}, {"--sort", "sideways", "x"}}) {
        std::vector<std::string> args{"search"};
        args.insert(args.end(), q.begin(), q.end());
        auto r = mv(args);
        EXPECT_EQ(r.exit_code, 2) << q[0];
        EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
        EXPECT_EQ(r.err.rfind("mailvault: ", 0), 0u) << r.err;
        EXPECT_EQ(r.err.find("what()"), std::string::npos);
        EXPECT_TRUE(r.out.empty());
    }
    auto leading = mv({"search", "kernel *rupt"});
    EXPECT_NE(leading.err.find("a leading * is not supported"), std::string::npos) << leading.err;
    EXPECT_NE(leading.err.find("column 8"), std::string::npos) << leading.err;
    auto nodoc = mv({"show", "999"});
    EXPECT_EQ(nodoc.exit_code, 3);
    auto notnum = mv({"link", "abc"});
    EXPECT_EQ(notnum.exit_code, 2);
}

TEST_F(QueryE2E, LinkAndTitleFromConfig) {
    std::uint64_t d = docno_of("q01@fixture.example");
    auto plain = mv({"link", std::to_string(d)});
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(plain.out, "http://127.0.0.1:8025/m/" + std::to_string(d) + "\n" + std::to_string(d) + ": Quarterly report\n");
    write_file(arc_ / "mailvault.toml", "[links]\nbase_url = \"https://mail.example.com/\"\n"
                                        "template = \"{base_url}/msg/{msgid}?n={docno}\"\ntitle_field = \"X-Customer-Id\"\n");
    auto custom = mv({"link", "--json", std::to_string(d)});
    ASSERT_EQ(custom.exit_code, 0) << custom.err;
    auto j = nlohmann::json::parse(custom.out);
    EXPECT_EQ(j["link"], "https://mail.example.com/msg/q01%40fixture.example?n=" + std::to_string(d));
    EXPECT_EQ(j["title"], "C-1001");
    auto hit = mv({"search", "--json", "msgid:q01@fixture.example"});
    auto h = nlohmann::json::parse(lines(hit.out).at(0));
    EXPECT_EQ(h["title"], "C-1001");
    EXPECT_EQ(h["link"], j["link"]);
    write_file(arc_ / "mailvault.toml", "[links]\ntemplate = \"{base_url}/m/{nope}\"\n");
    auto bad = mv({"search", "x"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("links.template"), std::string::npos) << bad.err;
}

TEST_F(QueryE2E, ShowRawJsonAndAttachment) {
    std::uint64_t d = docno_of("q01@fixture.example");
    auto raw = mv({"show", "--raw", std::to_string(d)});
    ASSERT_EQ(raw.exit_code, 0) << raw.err;
    std::string original = read_file(fixtures() / "q01.eml");
    EXPECT_EQ(to_hex(sha256(raw.out)), to_hex(sha256(original)));
    auto text = mv({"show", std::to_string(d)});
    EXPECT_NE(text.out.find("Subject: Quarterly report"), std::string::npos);
    EXPECT_NE(text.out.find("report.pdf"), std::string::npos);
    EXPECT_NE(text.out.find("numbers are running late"), std::string::npos);
    auto json = mv({"show", "--json", std::to_string(d)});
    auto j = nlohmann::json::parse(json.out);
    EXPECT_EQ(j["attachments"][0]["filename"], "report.pdf");
    EXPECT_EQ(j["sha256"], to_hex(sha256(original)));
    auto out = dir_ / "report.pdf";
    auto att = mv({"show", std::to_string(d), "--attachment", "1", "-o", out.string()});
    ASSERT_EQ(att.exit_code, 0) << att.err;
    std::string pdf = read_file(out);
    EXPECT_EQ(pdf.rfind("%PDF-1.4", 0), 0u);
    EXPECT_EQ(pdf.size(), j["attachments"][0]["size"].get<std::size_t>());
    auto none = mv({"show", std::to_string(d), "--attachment", "7"});
    EXPECT_EQ(none.exit_code, 2);
}

TEST_F(QueryE2E, ExportReimportYieldsTheSameDocuments) {
    auto mbox = dir_ / "all.mbox";
    auto e = mv({"export", "*", "--mbox", mbox.string()});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    auto r = mv({"import", mbox.string()}, (dir_ / "from-mbox").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(identities(dir_ / "from-mbox"), identities(arc_));

    auto eml = dir_ / "eml";
    e = mv({"export", "date:2023", "--eml", eml.string()});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& f : std::filesystem::directory_iterator(eml)) ++files;
    EXPECT_EQ(files, 10u);
    r = mv({"import", eml.string()}, (dir_ / "from-eml").string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto sub = identities(dir_ / "from-eml");
    auto all = identities(arc_);
    EXPECT_EQ(sub.size(), 10u);
    for (const auto& id : sub) EXPECT_TRUE(all.count(id)) << id;
    // Re-importing into the source archive adds nothing.
    r = mv({"import", mbox.string()});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(mv({"search", "--count", "*"}).out, "16\n");
}

TEST_F(QueryE2E, StatsAndVerify) {
    auto s = mv({"stats", "--json"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto j = nlohmann::json::parse(s.out);
    EXPECT_EQ(j["messages"], 16);
    EXPECT_EQ(j["mailboxes"][0]["name"], "alice@example.com");
    EXPECT_EQ(j["mailboxes"][0]["messages"], 16);
    EXPECT_GT(j["disk_bytes"].get<std::uint64_t>(), 0u);
    auto text = mv({"stats"});
    EXPECT_NE(text.out.find("messages: 16"), std::string::npos) << text.out;

    auto ok = run_mailvault({"--archive", arc_.string(), "verify"});
    EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
    EXPECT_NE(ok.err.find("MiB/s"), std::string::npos) << ok.err;

    // Flip one byte in the middle of the originals: exactly the message stored there is named.
    std::filesystem::path pack;
    for (const auto& f : std::filesystem::recursive_directory_iterator(arc_))
        if (f.is_regular_file() && f.path().parent_path().filename() == "originals") pack = f.path();
    ASSERT_FALSE(pack.empty());
    auto size = std::filesystem::file_size(pack);
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 40));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(static_cast<std::streamoff>(size - 40));
    f.write(&c, 1);
    f.close();
    auto bad = run_mailvault({"--archive", arc_.string(), "verify"});
    EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
    auto l = lines(bad.out);
    ASSERT_EQ(l.size(), 1u) << bad.out;
    EXPECT_EQ(l[0].rfind("damaged ", 0), 0u);

    std::filesystem::resize_file(pack, size / 2);
    auto cut = run_mailvault({"--archive", arc_.string(), "verify"});
    EXPECT_EQ(cut.exit_code, 1);
    EXPECT_GE(lines(cut.out).size(), 2u);
}

}  // namespace
}  // namespace mv::test
