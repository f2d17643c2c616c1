// serve's per-thread result cache (query/result_cache.hpp): bounded, least recently used out
// first, never a time-dependent result; and the parser's flag for queries relative to now.
#include <gtest/gtest.h>

#include "query/result_cache.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

SearchResult result_of(std::uint64_t docno, std::size_t hits = 1) {
    SearchResult r;
    for (std::size_t i = 0; i < hits; ++i) {
        Hit h;
        h.docno = docno + i;
        r.hits.push_back(h);
    }
    r.total = hits;
    return r;
}

TEST(ResultCache, KeepsTheMostRecentlyUsedWithinItsCapacity) {
    ResultCache c(2);
    c.put("a", result_of(1));
    c.put("b", result_of(2));
    ASSERT_TRUE(c.find("a"));  // a is now the most recent
    c.put("c", result_of(3));  // b goes
    EXPECT_FALSE(c.find("b"));
    ASSERT_TRUE(c.find("a"));
    EXPECT_EQ(c.find("a")->hits.at(0).docno, 1u);
    EXPECT_EQ(c.find("c")->hits.at(0).docno, 3u);
    EXPECT_EQ(c.size(), 2u);
    c.put("a", result_of(7));  // replaced, not added
    EXPECT_EQ(c.find("a")->hits.at(0).docno, 7u);
    EXPECT_EQ(c.size(), 2u);
    c.clear();
    EXPECT_FALSE(c.find("a"));
    EXPECT_EQ(c.size(), 0u);
}

TEST(ResultCache, NeverKeepsTimeDependentOrHugeResultsOrAnythingWhenOff) {
    ResultCache c(8);
    SearchResult now = result_of(1);
    now.depends_on_now = true;
    c.put("today", now);
    EXPECT_FALSE(c.find("today"));
    c.put("huge", result_of(1, ResultCache::k_max_hits + 1));
    EXPECT_FALSE(c.find("huge"));
    c.put("page", result_of(1, ResultCache::k_max_hits));
    EXPECT_TRUE(c.find("page"));
    c.set_capacity(0);
    EXPECT_EQ(c.size(), 0u);
    c.put("x", result_of(1));
    EXPECT_FALSE(c.find("x"));
}

TEST(ResultCache, KeysTellUsersQueriesSortsAndPagesApart) {
    SearchOptions o;
    const std::string k = result_key("alice", "kernel", o);
    EXPECT_NE(k, result_key("bob", "kernel", o));
    EXPECT_NE(k, result_key("alice", "kernel2", o));
    EXPECT_NE(result_key("alice", "a\0b", o), result_key("alice\0a", "b", o));
    SearchOptions other = o;
    other.sort = Sort::oldest;
    EXPECT_NE(k, result_key("alice", "kernel", other));
    other = o;
    other.offset = 50;
    EXPECT_NE(k, result_key("alice", "kernel", other));
    other = o;
    other.limit = 20;
    EXPECT_NE(k, result_key("alice", "kernel", other));
    EXPECT_EQ(k, result_key("alice", "kernel", o));
}

TEST(ResultCache, ParserSaysWhichQueriesDependOnTheTimeOfAsking) {
    test::TempDir dir;
    ASSERT_TRUE(test::build_fixture_archive(dir.path() / "arc"));
    auto a = index::Archive::open(dir.path() / "arc", index::OpenMode::read);
    ASSERT_TRUE(a) << a.error().message;
    Xapian::Database db = (*a)->database();
    ParseOptions p;
    p.stemmer = "english";
    p.now = 1700000000;
    for (const char* q : {"date:today", "kernel date:7d..", "date:now", "date:yesterday OR lunch", "date:2023..today"}) {
        auto r = parse(q, db, p);
        ASSERT_TRUE(r) << q << ": " << r.error().message;
        EXPECT_TRUE(r->depends_on_now) << q;
    }
    for (const char* q : {"kernel", "date:2023", "date:2018..2023-06 -kernel", "*", "from:ralf date:..2022-01-01"}) {
        auto r = parse(q, db, p);
        ASSERT_TRUE(r) << q << ": " << r.error().message;
        EXPECT_FALSE(r->depends_on_now) << q;
    }
}

}  // namespace
}  // namespace mv::query
