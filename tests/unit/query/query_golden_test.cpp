// Golden tests: every query form of DESIGN.md against the fixture archive, whose expected
// matching sets are known (data/mail/query/README.md: qNN.eml is docno NN).
#include <gtest/gtest.h>

#include <set>

#include "query/parser.hpp"
#include "query/search.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

using Set = std::set<std::uint64_t>;

class Golden : public test::FixtureArchiveTest {
  protected:
    static Result<Set> run(const std::string& q) {
        ParseOptions p;
        p.stemmer = "english";
        p.now = 1700000000;  // 2023-11-14T22:13:20Z
        auto all = all_matches(*archive_, q, p);
        if (!all) return fail(all.error());
        return Set(all->begin(), all->end());
    }
    static Set all_but(Set out) {
        Set s;
        for (std::uint64_t i = 1; i <= 16; ++i)
            if (!out.count(i)) s.insert(i);
        return s;
    }
};

struct Case {
    const char* query;
    Set expected;
};

TEST_F(Golden, EveryQueryFormMatchesItsKnownSet) {
    const Set all = all_but({});
    const std::vector<Case> cases = {
        // everything, free words, phrases
        {"*", all},
        {"report", {1, 2}},
        {"quarterly report", {1, 2}},
        {"\"quarterly report\"", {1, 2}},
        {"\"report quarterly\"", {}},
        {"\"cache flush\"", {4}},
        {"kernel", {2, 4}},
        {"weather", {16}},
        {"offer", {12}},
        {"zzscript", {}},  // HTML script text is not indexed
        // boolean operators, -word, parentheses
        {"kernel AND panic", {2}},
        {"kernel OR lunch", {2, 3, 4}},
        {"kernel NOT panic", {4}},
        {"kernel AND NOT panic", {4}},
        {"kernel -panic", {4}},
        // words no document has (left out of the query: the rest must mean what it meant)
        {"kernel OR zzabsent", {2, 4}},
        {"kernel -zzabsent", {2, 4}},
        {"kernel AND zzabsent", {}},
        {"NOT zzabsent", all},
        {"\"kernel zzabsent\"", {}},
        {"zzabsent OR (kernel AND NOT zzother)", {2, 4}},
        {"(zzabsent OR kernel) panic", {2}},
        {"NOT kernel", all_but({2, 4})},
        {"-kernel", all_but({2, 4})},
        {"(kernel OR lunch) AND friday", {3}},
        {"lunch OR (kernel AND NOT panic)", {3, 4}},
        {"-(kernel OR lunch) report", {1}},
        {"+kernel panic", {2}},
        // stemming (english) and exact words
        {"run", {1, 11}},
        {"running", {1, 11}},
        {"runs", {1, 11}},
        {"ran", {11}},
        // case and accents
        {"KERNEL", {2, 4}},
        {"müller", {1, 2, 12}},
        {"muller", {1, 2, 12}},
        {"MÜLLER", {1, 2, 12}},
        {"café", {3}},
        {"cafe", {3}},
        {"häuser", {5}},
        {"hauser", {5}},
        {"groß", {5}},
        // CJK
        {"项目", {6}},
        {"进度", {6}},
        {"数据库", {6}},
        {"会議", {7}},
        {"東京", {7}},
        {"회의", {8}},
        {"일정", {8}},
        {"项目 会議", {}},
        // wildcards
        {"config*", {14}},
        {"configur*", {14}},
        {"phoe*", {10}},
        {"from:ali*", {1}},
        {"zzzz*", {}},
        // fields
        {"from:alice", {1}},
        {"from:müller", {1}},
        {"from:muller", {1}},
        {"FROM:alice", {1}},
        {"from:alice@example.com", {1}},
        {"from:bob", {2, 11, 13}},
        {"from:(alice OR carol)", {1, 3}},
        {"to:bob@example.org", {1, 9, 10, 14, 15, 16}},
        {"to:alice", {2, 3, 6, 7, 8, 11, 12, 13}},
        {"cc:carol", {2}},
        {"bcc:secret", {10}},
        {"secret", {10}},
        {"subject:kernel", {4}},
        {"subject:report", {1, 2}},
        {"subject:\"quarterly report\"", {1, 2}},
        {"body:kernel", {2, 4}},
        {"body:quarterly", {1}},
        {"attachment:report.pdf", {1}},
        {"attachment:report", {1}},
        {"attachment:übersicht", {13}},
        {"attachment:ubersicht", {13}},
        {"report.pdf", {1}},
        {"mailbox:alice@example.com", {1, 2, 3, 4, 5, 6, 7, 8}},
        {"mailbox:bob@example.org", {1, 9, 10, 11, 12, 13, 14, 15, 16}},
        {"mailbox:Bob@Example.ORG", {1, 9, 10, 11, 12, 13, 14, 15, 16}},
        {"mailbox:nobody@example.org", {}},
        {"folder:inbox", {1, 2, 3, 4, 5, 6, 7, 8}},
        {"folder:Inbox", {1, 2, 3, 4, 5, 6, 7, 8}},
        {"folder:archive", {9, 10, 11, 12, 13, 14, 15, 16}},
        {"folder:archive/2023", {9, 10, 11, 12, 13, 14, 15, 16}},
        {"folder:\"Sent Items\"", {1}},
        {"source:import", {1, 2, 3, 4, 5, 6, 7, 8}},
        {"source:imap1", {1, 9, 10, 11, 12, 13, 14, 15, 16}},
        {"msgid:q04@fixture.example", {4}},
        {"msgid:<q04@fixture.example>", {4}},
        {"msgid:Q04@Fixture.Example", {4}},
        // dates (UTC)
        {"date:2023-04-25", {1, 11}},
        {"date:2023-04", {1, 11}},
        {"date:2023-04..2023-06", {1, 2, 3, 11}},
        {"date:2023..", {1, 2, 3, 6, 7, 8, 9, 11, 13, 15}},
        {"date:2023", {1, 2, 3, 6, 7, 8, 9, 11, 13, 15}},
        {"date:..2019", {12, 14, 16}},
        {"date:2022-12-31", {4}},
        {"date:2023-01-01", {}},
        {"date:2021-03-01", {5}},
        {"date:20210301", {5}},
        {"date:2023-04-25T10", {1}},
        {"date:2023-04-25T08:00..2023-04-25T09:00", {11}},
        {"date:2023-08-08..2023-12-31", {15}},
        {"date:100d", {15}},  // relative to now = 2023-11-14
        // sizes
        {"size:100k..", {9}},
        {"size:..1k", all_but({1, 9})},
        {"size:1k..10k", {1}},
        {"size:>100k", {9}},
        {"size:<1kb", all_but({1, 9})},
        {"size:0.1m..", {9}},
        {"size:2000", {1}},
        // has:
        {"has:attachment", {1, 9, 13}},
        {"has:attachment from:bob", {13}},
        {"NOT has:attachment mailbox:alice@example.com", {2, 3, 4, 5, 6, 7, 8}},
        // combinations
        {"from:bob subject:report", {2}},
        {"-from:bob date:2023", {1, 3, 6, 7, 8, 9, 15}},
        {"report date:2023-05", {2}},
        {"kernel OR date:2017", {2, 4, 16}},
        {"mailbox:alice@example.com AND (kernel OR lunch)", {2, 3, 4}},
        {"mailbox:alice@example.com mailbox:bob@example.org", all},  // same field: OR
        // lower-case operators, as notmuch and mu read them (issue 10)
        {"kernel and panic", {2}},
        {"kernel or lunch", {2, 3, 4}},
        {"kernel not panic", {4}},
        {"kernel and not panic", {4}},
        {"from:bob or from:carol", {2, 3, 11, 13}},
        {"(kernel or lunch) and friday", {3}},
        {"\"kernel panic\" or lunch", {2, 3}},
        // address patterns: the addresses of the field only, never a name or another domain
        {"from:*@example.com", {1, 4, 9, 10, 14, 15, 16}},
        {"from:*@EXAMPLE.com", {1, 4, 9, 10, 14, 15, 16}},
        {"from:*@example.org", {2, 11, 13}},
        {"to:*@example.org", {1, 9, 10, 14, 15, 16}},  // not list@lists.example.org
        {"to:*@lists.example.org", {4}},
        {"cc:*@example.net", {2}},
        {"from:*@example.*", all_but({12})},
        {"from:bob@*", {2, 11, 13}},
        {"from:bob@example.o*", {2, 11, 13}},
        {"from:*@example.com or from:*@example.org", {1, 2, 4, 9, 10, 11, 13, 14, 15, 16}},
        {"-from:*@example.com mailbox:alice@example.com", {2, 3, 5, 6, 7, 8}},
        {"from:*@example.com from:*@example.org", {}},  // both: AND, as for any two fields
        // a word: that is no field is text
        {"std::vector", {}},
        {"frm:alice", {}},
        {"note:kernel", {}},
        // threads: q02 answers q01
        {"thread:1", {1, 2}},
        {"thread:2", {1, 2}},
        {"thread:<q01@fixture.example>", {1, 2}},
        {"thread:q02@fixture.example", {1, 2}},
        {"thread:3", {3}},
        {"thread:1 from:bob", {2}},
        // state
        {"is:broken", {}},
        {"is:removed", {}},
        {"is:unread", all},  // no source reported a flag
        {"is:flagged", {}},
    };
    for (const auto& c : cases) {
        auto got = run(c.query);
        ASSERT_TRUE(got) << c.query << ": " << got.error().message;
        EXPECT_EQ(*got, c.expected) << "query: " << c.query;
    }
}

// A free word is a term per field and stem form; the parsed query keeps only the terms some
// document has (each absent one costs a lookup per shard in every search), phrases included.
TEST_F(Golden, TermsNoDocumentHasAreLeftOutOfTheQuery) {
    Xapian::Database db = archive_->database();
    ParseOptions p;
    p.stemmer = "english";
    for (const char* q : {"kernel", "kernels panic", "\"cache flush\"", "kernel OR zzabsent", "from:alice report"}) {
        auto parsed = parse(q, db, p);
        ASSERT_TRUE(parsed) << q;
        std::size_t terms = 0;
        for (auto t = parsed->query.get_terms_begin(); t != parsed->query.get_terms_end(); ++t, ++terms)
            EXPECT_TRUE(db.term_exists(*t)) << q << ": " << *t << " is in the query but in no document";
        EXPECT_GT(terms, 0u) << q;
    }
    auto none = parse("zzabsent", db, p);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->query.get_type(), Xapian::Query::LEAF_MATCH_NOTHING);
}

// A NOT beside other words takes the documents out of theirs, not out of every document's
// list (`a AND (<alldocuments> AND_NOT b)` walks every document): the same matches as that.
TEST_F(Golden, NotBesideWordsIsNoWalkOverEveryDocument) {
    Xapian::Database db = archive_->database();
    ParseOptions p;
    p.stemmer = "english";
    auto ids = [&](const Xapian::Query& q) { return test::matching_ids(db, q); };
    for (std::pair<const char*, const char*> c : {std::pair{"kernel NOT panic", "panic"},
                                                 {"report NOT subject:lunch", "subject:lunch"},
                                                 {"(kernel OR lunch) NOT (panic OR zzabsent)", "panic OR zzabsent"},
                                                 {"mailbox:alice@example.com NOT has:attachment", "has:attachment"}}) {
        auto parsed = parse(c.first, db, p);
        ASSERT_TRUE(parsed) << c.first;
        EXPECT_EQ(parsed->query.get_description().find("<alldocuments>"), std::string::npos)
            << c.first << ": " << parsed->query.get_description();
        auto left = parse(std::string(c.first).substr(0, std::string(c.first).find(" NOT ")), db, p);
        auto right = parse(c.second, db, p);
        ASSERT_TRUE(left && right) << c.first;
        const Xapian::Query walked(Xapian::Query::OP_AND, left->query,
                                   Xapian::Query(Xapian::Query::OP_AND_NOT, Xapian::Query::MatchAll, right->query));
        EXPECT_EQ(ids(parsed->query), ids(walked)) << c.first;
        EXPECT_FALSE(ids(left->query).empty()) << c.first;
    }
    auto alone = parse("NOT kernel", db, p);  // nothing beside it: every document it is
    ASSERT_TRUE(alone);
    EXPECT_NE(alone->query.get_description().find("<alldocuments>"), std::string::npos);
}

// Field filters beside a NOT go inside it: `(a AND_NOT b) FILTER f` is `(a FILTER f) AND_NOT b`,
// so that Xapian checks f (a date range, a mailbox) in the same AND as a's words instead of
// after them. The same matches, and the same weights for a relevance sort.
TEST_F(Golden, FiltersBesideANotAreCheckedWithTheWords) {
    Xapian::Database db = archive_->database();
    for (bool in_memory : {false, true}) {
        ParseOptions p;
        p.stemmer = "english";
        p.now = 1700000000;
        p.dates_in_memory = in_memory;
        for (std::pair<const char*, const char*> c :
             {std::pair{"kernel NOT panic", "date:2018..2023"},
              {"report NOT subject:lunch", "mailbox:alice@example.com"},
              {"(kernel OR lunch) NOT (panic OR zzabsent)", "date:2023"},
              {"(report OR kernel) NOT panic", "has:attachment date:..2023-06"}}) {
            const std::string text = std::string(c.first) + " " + c.second;
            SCOPED_TRACE(text + (in_memory ? " (dates in memory)" : ""));
            auto parsed = parse(text, db, p);
            auto words = parse(c.first, db, p);
            auto filter = parse(c.second, db, p);
            ASSERT_TRUE(parsed && words && filter);
            ASSERT_EQ(words->query.get_type(), Xapian::Query::OP_AND_NOT);
            EXPECT_EQ(parsed->query.get_type(), Xapian::Query::OP_AND_NOT) << parsed->query.get_description();
            const Xapian::Query outside(Xapian::Query::OP_FILTER, words->query, filter->query);
            auto ranked = [&](const Xapian::Query& q) {
                Xapian::Enquire e(db);
                e.set_query(q);
                std::vector<std::pair<Xapian::docid, double>> out;
                for (auto m = e.get_mset(0, db.get_doccount()).begin(); m != Xapian::MSetIterator(); ++m)
                    out.emplace_back(*m, m.get_weight());
                return out;
            };
            const auto got = ranked(parsed->query);
            EXPECT_EQ(got, ranked(outside));
            EXPECT_FALSE(got.empty());
        }
    }
}

TEST_F(Golden, BrokenQueriesGiveOneLineUsageErrors) {
    const char* bad[] = {"*rupt",     "(kernel",       "kernel)",     "\"kernel",    "kernel AND",
                         "OR kernel",     "kernel OR OR x", "date:2023-13", "date:2023-02-30", "date:soon",
                         "size:lots",     "has:picture",   "from:",       "()",          "",
                         "   ",           "date:2023..2022", "size:2m..1m", "NOT",         "subject:(x",
                         "date:..",       "mailbox:(a b)", "subject:*port", "from:*@",     "from:a*b@example.com",
                         "from:*@*.example.com", "is:sleepy",  "thread:99"};
    for (const char* q : bad) {
        auto got = run(q);
        ASSERT_FALSE(got) << "accepted: " << q;
        EXPECT_EQ(got.error().kind, Error::Kind::usage) << q;
        EXPECT_EQ(got.error().message.find('\n'), std::string::npos) << q;
        EXPECT_FALSE(got.error().message.empty()) << q;
    }
    auto leading = run("kernel *rupt");
    ASSERT_FALSE(leading);
    EXPECT_NE(leading.error().message.find("column 8"), std::string::npos) << leading.error().message;
    EXPECT_NE(leading.error().message.find("rupt* finds words that begin with rupt"), std::string::npos)
        << leading.error().message;
    auto paren = run("a (b");
    ASSERT_FALSE(paren);
    EXPECT_NE(paren.error().message.find("column 3"), std::string::npos) << paren.error().message;
}

TEST_F(Golden, URLsAndOperatorLookalikesAreWords) {
    EXPECT_TRUE(run("http://example.com/x"));
    auto re = run("Re: Quarterly report");  // a pasted subject: "Re:" is a word, not a field
    ASSERT_TRUE(re) << re.error().message;
    EXPECT_EQ(*re, (Set{2}));
    // A lower-case operator with nothing on one side is a word, not an error.
    for (const char* q : {"and kernel", "kernel or", "kernel not", "or"}) EXPECT_TRUE(run(q)) << q;
    EXPECT_EQ(*run("\"kernel\" \"or\" lunch"), Set{});  // quoted: the word
}

TEST_F(Golden, SortLimitOffsetAndCount) {
    LinkBuilder links(LinkConfig{});
    SearchOptions o;
    o.parse.stemmer = "english";
    o.sort = Sort::newest;
    auto r = search(*archive_, "date:2023", o, links);
    ASSERT_TRUE(r) << r.error().message;
    std::vector<std::uint64_t> newest;
    for (const auto& h : r->hits) newest.push_back(h.docno);
    EXPECT_EQ(newest, (std::vector<std::uint64_t>{15, 9, 13, 3, 2, 1, 11, 8, 7, 6}));
    EXPECT_EQ(r->total, 10u);

    o.sort = Sort::oldest;
    o.limit = 3;
    o.offset = 2;
    r = search(*archive_, "date:2023", o, links);
    ASSERT_TRUE(r);
    std::vector<std::uint64_t> oldest;
    for (const auto& h : r->hits) oldest.push_back(h.docno);
    EXPECT_EQ(oldest, (std::vector<std::uint64_t>{8, 11, 1}));
    EXPECT_EQ(r->total, 10u);

    o.sort = Sort::relevance;
    o.limit = 10;
    o.offset = 0;
    r = search(*archive_, "kernel", o, links);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->hits.size(), 2u);
    EXPECT_EQ(r->hits[0].docno, 4u);  // in subject, body and sender name

    auto n = count(*archive_, "has:attachment", o.parse);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 3u);
    n = count(*archive_, "*", o.parse);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 16u);

    EXPECT_FALSE(parse_sort("sideways"));
}

TEST_F(Golden, DateWindowShortcutGivesTheSameOrderAsAFullSort) {
    LinkBuilder links(LinkConfig{});
    for (Sort sort : {Sort::newest, Sort::oldest}) {
        for (const char* q : {"*", "NOT kernel", "mailbox:bob@example.org", "date:2023", "date:2018..2023-06 -kernel",
                              "date:2023 OR kernel", "date:..2022 date:2023-07.."}) {
            SearchOptions o;
            o.sort = sort;
            o.limit = 100;  // too few matches for the shortcut: a full sort
            auto full = search(*archive_, q, o, links);
            ASSERT_TRUE(full);
            std::vector<std::uint64_t> want, got;
            for (const auto& h : full->hits) want.push_back(h.docno);
            for (std::uint64_t off = 0; off < want.size(); ++off) {
                o.limit = 1;  // 8 * (offset + 1) <= matches: the shortcut answers
                o.offset = off;
                auto one = search(*archive_, q, o, links);
                ASSERT_TRUE(one);
                ASSERT_EQ(one->hits.size(), 1u) << q << " offset " << off;
                got.push_back(one->hits[0].docno);
            }
            EXPECT_EQ(got, want) << q;
        }
    }
}

TEST(StemmerChoice, GermanStemsGermanAndNoneKeepsExactWords) {
    test::TempDir dir;
    test::FixtureOptions fo;
    fo.stemmer = "german";
    ASSERT_TRUE(test::build_fixture_archive(dir.path() / "de", fo));
    fo.stemmer = "none";
    ASSERT_TRUE(test::build_fixture_archive(dir.path() / "none", fo));
    auto de = index::Archive::open(dir.path() / "de", index::OpenMode::read);
    auto none = index::Archive::open(dir.path() / "none", index::OpenMode::read);
    ASSERT_TRUE(de && none);
    auto q = [](index::Archive& a, const char* text, const char* stemmer) {
        ParseOptions p;
        p.stemmer = stemmer;
        auto r = all_matches(a, text, p);
        EXPECT_TRUE(r) << text;
        return r ? Set(r->begin(), r->end()) : Set{};
    };
    EXPECT_EQ(q(**de, "häusern", "german"), Set{5});    // stem of Häuser
    EXPECT_EQ(q(**de, "treffe", "german"), Set{5});     // stem of treffen
    EXPECT_EQ(q(**de, "häuser", "german"), Set{5});     // exact word
    EXPECT_EQ(q(**none, "häuser", "none"), Set{5});     // exact word, no stemming
    EXPECT_EQ(q(**none, "running", "none"), Set{1});    // no stemming: only the exact word
    EXPECT_EQ(q(**none, "run", "none"), Set{});
}

// The index keeps a stem term only where the stem differs from its word; every form of a
// word must still find every other form, with and without a field, and exact phrases and
// wildcards work on the exact terms.
TEST(StemTerms, AWordThatIsItsOwnStemIsFoundFromEveryForm) {
    test::TempDir dir;
    index::init_mime();
    {
        auto a = index::Archive::open(dir.path(), index::OpenMode::write);
        ASSERT_TRUE(a) << a.error().message;
        index::DocumentBuilder builder("english");
        const char* bodies[] = {"we run the tests nightly",          // 1: "run" is its own stem
                                "the runner was running late",       // 2: running -> run
                                "connection refused by the server",  // 3: connection -> connect
                                "please connect again"};             // 4: "connect" is its own stem
        for (int i = 0; i < 4; ++i) {
            std::string raw = "Message-ID: <s" + std::to_string(i) + "@x>\nSubject: connect " +
                              std::to_string(i) + "\n\n" + bodies[i] + "\n";
            Digest key = index::dedupe_key(raw);
            auto parsed = index::parse_message(raw, index::ParseLimits{}, 0);
            ASSERT_TRUE(parsed);
            std::uint64_t d = (*a)->allocate_docno(key);
            ASSERT_TRUE((*a)->add_document(d, builder.build(*parsed, {"t", "m", "f", ""}, sha256(raw), key, raw.size())));
        }
        ASSERT_TRUE((*a)->commit());
        // Only stems that differ from their word are indexed.
        Xapian::Database db = (*a)->database();
        EXPECT_EQ(db.get_termfreq("Brun"), 1u);
        EXPECT_EQ(db.get_termfreq("ZBrun"), 1u);  // from "running" only
        EXPECT_EQ(db.get_termfreq("ZBconnect"), 1u);
        EXPECT_EQ(db.get_termfreq("ZSconnect"), 0u);  // the subject word is its own stem
    }
    auto a = index::Archive::open(dir.path(), index::OpenMode::read);
    ASSERT_TRUE(a);
    auto q = [&](const char* text) {
        ParseOptions p;
        p.stemmer = "english";
        auto r = all_matches(**a, text, p);
        EXPECT_TRUE(r) << text;
        return r ? Set(r->begin(), r->end()) : Set{};
    };
    EXPECT_EQ(q("run"), (Set{1, 2}));
    EXPECT_EQ(q("running"), (Set{1, 2}));
    EXPECT_EQ(q("runs"), (Set{1, 2}));
    EXPECT_EQ(q("body:running"), (Set{1, 2}));
    EXPECT_EQ(q("connect"), (Set{1, 2, 3, 4}));  // every subject says "connect"
    EXPECT_EQ(q("body:connecting"), (Set{3, 4}));
    EXPECT_EQ(q("body:connect AND NOT running"), (Set{3, 4}));
    EXPECT_EQ(q("\"run the\""), (Set{1}));      // phrases match exact words only
    EXPECT_EQ(q("\"running late\""), (Set{2}));
    EXPECT_EQ(q("runn*"), (Set{2}));               // wildcards expand exact terms
    EXPECT_EQ(q("subject:connected"), (Set{1, 2, 3, 4}));
}

}  // namespace
}  // namespace mv::query
