// verify catches each kind of damage; stats counts; export writes mboxrd and .eml files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "query/export.hpp"
#include "query/search.hpp"
#include "query/stats.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

std::filesystem::path pack_file(const std::filesystem::path& arc) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(arc))
        if (e.is_regular_file() && e.path().parent_path().filename() == "originals") return e.path();
    return {};
}

std::vector<std::uint64_t> damaged(const std::filesystem::path& arc) {
    auto a = index::Archive::open(arc, index::OpenMode::read);
    EXPECT_TRUE(a) << a.error().message;
    if (!a) return {};
    auto r = verify_archive(**a, 2, nullptr);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_EQ(r->checked, 16u);
    std::vector<std::uint64_t> v;
    for (const auto& i : r->issues) v.push_back(i.docno);
    return v;
}

// Offset of the middle of docno's compressed payload inside the pack file.
std::uint64_t payload_middle(const std::filesystem::path& arc, std::uint64_t docno) {
    auto a = index::Archive::open(arc, index::OpenMode::read);
    std::uint64_t at = 0;
    auto r = (*a)->store().scan([&](const index::RecordHeader& h, const index::StoredRef& ref, std::string_view) {
        if (h.type == index::RecordType::original && h.docno == docno) {
            at = ref.offset + index::k_record_header_size + h.meta_size + h.payload_size / 2;
            return false;
        }
        return true;
    });
    EXPECT_TRUE(r);
    return at;
}

TEST(Verify, CleanArchiveHasNoIssues) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    EXPECT_EQ(damaged(dir / "arc"), std::vector<std::uint64_t>{});
}

TEST(Verify, FlippedBitIsReportedByDocno) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    std::uint64_t at = payload_middle(dir / "arc", 3);
    ASSERT_GT(at, 0u);
    auto pack = pack_file(dir / "arc");
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
    f.close();
    EXPECT_EQ(damaged(dir / "arc"), std::vector<std::uint64_t>{3});
}

TEST(Verify, TruncatedOriginalIsReported) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    std::uint64_t at = payload_middle(dir / "arc", 16);
    ASSERT_GT(at, 0u);
    std::filesystem::resize_file(pack_file(dir / "arc"), at);
    EXPECT_EQ(damaged(dir / "arc"), std::vector<std::uint64_t>{16});
}

TEST(Verify, MissingOriginalsAreReported) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    std::filesystem::remove(pack_file(dir / "arc"));
    auto d = damaged(dir / "arc");
    EXPECT_EQ(d.size(), 16u);
}

TEST(Verify, IndexEntryWithoutOriginalIsReported) {
    test::TempDir dir;
    test::FixtureOptions o;
    o.without_original = 5;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc", o));
    auto a = index::Archive::open(dir / "arc", index::OpenMode::read);
    ASSERT_TRUE(a);
    auto r = verify_archive(**a, 1, nullptr);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->issues.size(), 1u);
    EXPECT_EQ(r->issues[0].docno, 5u);
    EXPECT_NE(r->issues[0].what.find("no original"), std::string::npos) << r->issues[0].what;
    EXPECT_GT(r->bytes, 0u);
}

TEST(Stats, CountsPerSourceAndMailboxAndLastSync) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    auto a = index::Archive::open(dir / "arc", index::OpenMode::read);
    ASSERT_TRUE(a);
    auto s = compute_stats(**a);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->messages, 16u);
    std::uint64_t total = 0;
    for (const auto& f : test::query_fixture_files()) total += std::filesystem::file_size(f);
    EXPECT_EQ(s->bytes, total);
    auto find = [](const std::vector<GroupStats>& g, const std::string& name) {
        for (const auto& x : g)
            if (x.name == name) return x;
        return GroupStats{};
    };
    EXPECT_EQ(find(s->sources, "import").messages, 8u);
    EXPECT_EQ(find(s->sources, "imap1").messages, 9u);  // q09..q16 and q01's second copy
    EXPECT_EQ(find(s->mailboxes, "alice@example.com").messages, 8u);
    EXPECT_EQ(find(s->mailboxes, "bob@example.org").messages, 9u);
    EXPECT_EQ(find(s->mailboxes, "alice@example.com").bytes,
              [&] {
                  std::uint64_t b = 0;
                  auto files = test::query_fixture_files();
                  for (int i = 0; i < 8; ++i) b += std::filesystem::file_size(files[i]);
                  return b;
              }());
    EXPECT_GT(s->disk_bytes, 0u);
    ASSERT_EQ(s->syncs.size(), 1u);
    EXPECT_EQ(s->syncs[0].source, "imap1");
    EXPECT_EQ(s->syncs[0].result, "partial");
    EXPECT_EQ(s->syncs[0].time, "2023-11-14T22:13:20Z");
    EXPECT_EQ(s->syncs[0].added, 8u);
    ASSERT_EQ(s->syncs[0].errors.size(), 1u);
    auto j = nlohmann::json::parse(stats_json(*s));
    EXPECT_EQ(j["messages"], 16);
    EXPECT_EQ(j["last_sync"][0]["result"], "partial");
    EXPECT_NE(stats_text(*s).find("imap1"), std::string::npos);
}

// Splits an mboxrd file the way a reader does: From_ after a blank line, one '>' less.
std::vector<std::string> read_mboxrd(const std::string& mbox) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    bool prev_blank = true;
    while (pos < mbox.size()) {
        auto eol = mbox.find('\n', pos);
        std::string line = mbox.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos + 1);
        pos = eol == std::string::npos ? mbox.size() : eol + 1;
        if (prev_blank && line.rfind("From ", 0) == 0) {
            if (!out.empty()) out.back().pop_back();  // the separator line
            out.emplace_back();
            prev_blank = false;
            continue;
        }
        prev_blank = line == "\n";
        std::size_t q = 0;
        while (q < line.size() && line[q] == '>') ++q;
        if (q > 0 && line.compare(q, 5, "From ") == 0) line.erase(0, 1);
        out.back() += line;
    }
    if (!out.empty()) out.back().pop_back();
    return out;
}

TEST(Export, MboxrdQuotesFromLines) {
    std::string out;
    append_mboxrd(out, "Subject: x\n\nFrom here\n>From there\n>>From far\nFromage\n", 0);
    EXPECT_EQ(out,
              "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From here\n>>From there\n>>>From far\nFromage\n\n");
    out.clear();
    append_mboxrd(out, "Subject: y\n\nno newline at end", 0);
    EXPECT_EQ(out, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: y\n\nno newline at end\n\n");
}

// Regression: every entry began "From mboxrd@z Thu Jan  1 00:00:00 1970" whatever the message.
TEST(Export, FromLineHasEnvelopeSenderAndAsctimeDate) {
    struct Case {
        std::string msg;
        std::string sender;
    } cases[] = {
        {"Return-Path: <bounce+x@lists.example.org>\nFrom: Alice <alice@example.com>\n\nb\n", "bounce+x@lists.example.org"},
        {"return-path:\n <folded@example.org>\nFrom: a@example.com\n\nb\n", "folded@example.org"},
        {"Return-Path: <>\nFrom: Mail Delivery <postmaster@example.com>\n\nb\n", "MAILER-DAEMON"},
        {"Subject: s\nFrom: \"Bob, B.\" <bob@example.com>\n\nb\n", "bob@example.com"},
        {"From: carol@example.com (Carol C)\n\nb\n", "carol@example.com"},
        {"Subject: no sender\n\nReturn-Path: <body@example.com>\n", "MAILER-DAEMON"},
        {"From: Dave <d a v e@example.com>\n\nb\n", "dave@example.com"},
    };
    for (const auto& c : cases) EXPECT_EQ(envelope_sender(c.msg), c.sender) << c.msg;
    // 2023-08-08 08:08:08 UTC was a Tuesday; single-digit days are space-padded as asctime does.
    EXPECT_EQ(from_line(cases[0].msg, 1691482088), "From bounce+x@lists.example.org Tue Aug  8 08:08:08 2023");
    EXPECT_EQ(from_line(cases[4].msg, 1703980800), "From carol@example.com Sun Dec 31 00:00:00 2023");
}

TEST(Export, MboxAndEmlHoldTheOriginals) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    auto a = index::Archive::open(dir / "arc", index::OpenMode::read);
    ASSERT_TRUE(a);
    auto docnos = all_matches(**a, "*", ParseOptions{});
    ASSERT_TRUE(docnos);
    ASSERT_EQ(docnos->size(), 16u);
    std::uint64_t calls = 0;
    auto r = export_messages(**a, *docnos, ExportFormat::mbox, dir / "all.mbox",
                             [&](const ExportProgress& p) { calls = p.done; });
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->done, 16u);
    EXPECT_EQ(calls, 16u);
    EXPECT_TRUE(r->errors.empty());
    auto msgs = read_mboxrd(test::read_file(dir / "all.mbox"));
    ASSERT_EQ(msgs.size(), 16u);
    std::set<std::string> want, got(msgs.begin(), msgs.end());
    for (const auto& f : test::query_fixture_files()) want.insert(test::read_file(f));
    EXPECT_EQ(got, want);

    auto e = export_messages(**a, {15, 1}, ExportFormat::eml, dir / "eml", nullptr);
    ASSERT_TRUE(e);
    EXPECT_EQ(test::read_file(dir / "eml" / "15.eml"), test::read_file(test::query_fixture_dir() / "q15.eml"));
    EXPECT_EQ(test::read_file(dir / "eml" / "1.eml"), test::read_file(test::query_fixture_dir() / "q01.eml"));
}

}  // namespace
}  // namespace mv::query
