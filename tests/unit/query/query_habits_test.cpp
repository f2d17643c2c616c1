// Issue 10 (the habits of mu and notmuch users), at the library level: dates in the user's
// time zone, flags and state findable, notices for words that look like fields, links and
// titles of messages without Message-ID or subject.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <set>

#include "index/document/builder.hpp"
#include "query/parser.hpp"
#include "query/search.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

using Set = std::set<std::uint64_t>;

// Sets TZ for the scope of a test.
class ScopedTz {
  public:
    explicit ScopedTz(const char* tz) {
        if (const char* old = std::getenv("TZ")) old_ = old, had_ = true;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~ScopedTz() {
        if (had_) setenv("TZ", old_.c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }

  private:
    std::string old_;
    bool had_ = false;
};

constexpr std::int64_t k_2023_05_01 = 1682899200;  // 2023-05-01T00:00:00Z

TEST(DateZone, ADayIsThatDayInTheLocalZone) {
    ScopedTz tz("Europe/Berlin");  // CEST, +0200 in May
    auto local = parse_date_range("2023-05-01", 0, DateZone::local);
    ASSERT_TRUE(local) << local.error().message;
    EXPECT_EQ(*local->lo, k_2023_05_01 - 7200);
    EXPECT_EQ(*local->hi, k_2023_05_01 + 86400 - 7200 - 1);
    auto utc = parse_date_range("2023-05-01z", 0, DateZone::local);  // "Z" (folded): UTC on request
    ASSERT_TRUE(utc);
    EXPECT_EQ(*utc->lo, k_2023_05_01);
    EXPECT_EQ(*utc->hi, k_2023_05_01 + 86399);
    auto library_default = parse_date_range("2023-05-01", 0);
    ASSERT_TRUE(library_default);
    EXPECT_EQ(*library_default->lo, k_2023_05_01);
    // A time of day and a month, local too; winter time (+0100) in January.
    auto t = parse_date_range("2023-05-01t01:30", 0, DateZone::local);
    ASSERT_TRUE(t);
    EXPECT_EQ(*t->lo, k_2023_05_01 - 7200 + 5400);
    auto jan = parse_date_range("2023-01", 0, DateZone::local);
    ASSERT_TRUE(jan);
    EXPECT_EQ(*jan->lo, 1672531200 - 3600);
    // today: the local day of `now` (2023-05-01T23:30Z is 2 May in Berlin)
    auto today = parse_date_range("today", k_2023_05_01 + 84600, DateZone::local);
    ASSERT_TRUE(today);
    EXPECT_EQ(*today->lo, k_2023_05_01 + 86400 - 7200);
}

TEST(DateZone, DisplayIsLocalJsonIsUtc) {
    ScopedTz tz("Europe/Berlin");
    const std::int64_t sent = k_2023_05_01 - 7200 + 5400;  // 01:30 +0200 = 2023-04-30T23:30Z
    EXPECT_EQ(local_date(sent), "2023-05-01 01:30");
    EXPECT_EQ(local_date(sent, DateStyle::full), "2023-05-01 01:30:00 +0200");
    EXPECT_EQ(iso_date(sent), "2023-04-30T23:30:00Z");
    Hit h;
    h.docno = 7;
    h.data.date = sent;
    EXPECT_NE(hit_json(h).find("\"date\":\"2023-04-30T23:30:00Z\""), std::string::npos) << hit_json(h);
    EXPECT_EQ(hit_line(h).rfind("2023-05-01 01:30", 0), 0u) << hit_line(h);
}

TEST(Flags, SourceFlagsAreNormalised) {
    EXPECT_EQ(index::flag_name("\\Seen"), "seen");
    EXPECT_EQ(index::flag_name("S"), "seen");
    EXPECT_EQ(index::flag_name("F"), "flagged");
    EXPECT_EQ(index::flag_name("\\Flagged"), "flagged");
    EXPECT_EQ(index::flag_name("R"), "answered");
    EXPECT_EQ(index::flag_name("$Forwarded"), "$forwarded");
}

// The fixture archive, with flags on some locations (as IMAP sync and Maildir import give
// them) and one message seen a second time with other flags.
class StateArchive : public ::testing::Test {
  protected:
    void SetUp() override {
        index::init_mime();
        auto a = index::Archive::open(dir_ / "arc", index::OpenMode::write);
        ASSERT_TRUE(a) << a.error().message;
        index::DocumentBuilder builder("english");
        int n = 0;
        for (const auto& file : test::query_fixture_files()) {
            if (++n > 4) break;
            std::string raw = test::read_file(file);
            auto where = test::fixture_location(n);
            if (n == 1) where.flags = {"\\Seen", "\\Flagged"};
            if (n == 2) where.flags = {"S", "R"};
            auto parsed = index::parse_message(raw, index::ParseLimits{}, 0);
            ASSERT_TRUE(parsed);
            Digest key = index::dedupe_key(raw);
            auto docno = (*a)->allocate_docno(key);
            auto doc = builder.build(*parsed, where, sha256(raw), key, raw.size());
            ASSERT_TRUE((*a)->add_document(docno, std::move(doc)));
        }
        index::Location again{"imap1", "bob@example.org", "Flagged", "x3", "", 0, {"\\Flagged"}};
        ASSERT_TRUE((*a)->add_location(3, again));
        ASSERT_TRUE((*a)->commit());
        a->reset();
        auto r = index::Archive::open(dir_ / "arc", index::OpenMode::read);
        ASSERT_TRUE(r);
        archive_ = std::move(*r);
    }
    Set run(const std::string& q) {
        ParseOptions p;
        auto all = all_matches(*archive_, q, p);
        EXPECT_TRUE(all) << q << ": " << all.error().message;
        return all ? Set(all->begin(), all->end()) : Set{};
    }
    test::TempDir dir_;
    std::unique_ptr<index::Archive> archive_;
};

TEST_F(StateArchive, FlagsAreFindableAndShown) {
    EXPECT_EQ(run("is:unread"), (Set{3, 4}));
    EXPECT_EQ(run("is:read"), (Set{1, 2}));
    EXPECT_EQ(run("is:flagged"), (Set{1, 3}));  // 3: flagged where it was seen again
    EXPECT_EQ(run("flag:flagged"), (Set{1, 3}));
    EXPECT_EQ(run("flag:\\Flagged"), (Set{1, 3}));
    EXPECT_EQ(run("is:answered"), (Set{2}));
    EXPECT_EQ(run("is:replied"), (Set{2}));
    EXPECT_EQ(run("is:unread and is:flagged"), (Set{3}));
    EXPECT_EQ(run("not is:unread"), (Set{1, 2}));
    LinkBuilder links(LinkConfig{});
    SearchOptions o;
    auto r = search(*archive_, "is:flagged", o, links);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->hits.size(), 2u);
    for (const auto& h : r->hits) {
        const std::string j = hit_json(h);
        EXPECT_NE(j.find("\"flagged\""), std::string::npos) << j;
        EXPECT_NE(j.find("\"broken\":false"), std::string::npos) << j;
        EXPECT_NE(j.find("\"message_id\":\"q0"), std::string::npos) << j;
    }
}

TEST_F(StateArchive, ReplyCarriesItsThreadAndCc) {
    LinkBuilder links(LinkConfig{});
    SearchOptions o;
    auto r = search(*archive_, "msgid:q02@fixture.example", o, links);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->hits.size(), 1u);
    const std::string j = hit_json(r->hits[0]);
    EXPECT_NE(j.find("\"thread\":\"q01@fixture.example\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"cc\":[\"Carol Singer <carol@example.net>\"]"), std::string::npos) << j;
    EXPECT_EQ(r->hits[0].data.references, std::vector<std::string>{"q01@fixture.example"});
}

TEST(Notices, AWordThatLooksLikeAMistypedFieldIsSearchedAndNamed) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir / "arc"));
    auto a = index::Archive::open(dir / "arc", index::OpenMode::read);
    ASSERT_TRUE(a);
    ParseOptions o;
    auto p = parse("form:alice kernel", (*a)->database(), o);
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_EQ(p->notices.size(), 1u);
    EXPECT_NE(p->notices[0].find("did you mean from:?"), std::string::npos) << p->notices[0];
    auto cpp = parse("std::vector", (*a)->database(), o);
    ASSERT_TRUE(cpp) << cpp.error().message;
    EXPECT_TRUE(cpp->notices.empty());
}

TEST(Titles, NoSubjectAndNoMessageId) {
    LinkConfig c;
    c.templ = "{base_url}/msg/{msgid}";
    LinkBuilder links(c);
    index::DocData d;
    EXPECT_EQ(links.title(12, d, {}), "12: (no subject)");
    EXPECT_EQ(links.link(12, d), "http://127.0.0.1:8025/m/12");  // no Message-ID: the docno link
    d.message_id = "a@b";
    EXPECT_EQ(links.link(12, d), "http://127.0.0.1:8025/msg/a%40b");
}

}  // namespace
}  // namespace mv::query
