// The in-memory date order of the server (query/date_order.hpp, ParseOptions::dates_in_memory):
// date: queries and newest/oldest windows through it give exactly what the value-range path
// gives, on the two-shard fixture archive; the order follows the index when mail is added.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>

#include "query/access.hpp"
#include "query/date_order.hpp"
#include "query/search.hpp"
#include "unit/query/fixture_archive.hpp"

namespace mv::query {
namespace {

using Set = std::set<std::uint64_t>;

class DateOrderTest : public test::FixtureArchiveTest {
  protected:
    static ParseOptions options(bool in_memory) {
        ParseOptions p;
        p.stemmer = "english";
        p.now = 1700000000;  // 2023-11-14T22:13:20Z
        p.dates_in_memory = in_memory;
        return p;
    }
};

const std::vector<const char*> k_date_queries = {
    "date:2023",         "date:2023-04",      "date:2018..2023-06 -kernel", "date:2023 OR kernel",
    "date:..2022 date:2023-07..", "NOT date:2023", "date:1990..1991",   "kernel date:2023..",
    "date:..2023-04-25", "date:2023-04-25T10:02..2023-12", "(date:2022 OR date:2023-05) -lunch",
};

TEST_F(DateOrderTest, DateQueriesMatchWhatTheValueRangeMatches) {
    for (const char* q : k_date_queries) {
        auto slow = all_matches(*archive_, q, options(false));
        auto fast = all_matches(*archive_, q, options(true));
        ASSERT_TRUE(slow) << q << ": " << slow.error().message;
        ASSERT_TRUE(fast) << q << ": " << fast.error().message;
        EXPECT_EQ(*fast, *slow) << q;  // same documents, same (oldest-first) order
        auto n = count(*archive_, q, options(true));
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, slow->size()) << q;
    }
}

TEST_F(DateOrderTest, WindowsGiveTheOrderOfAFullSortAtEveryOffset) {
    LinkBuilder links(LinkConfig{});
    for (Sort sort : {Sort::newest, Sort::oldest}) {
        for (const char* q : {"*", "NOT kernel", "mailbox:bob@example.org", "date:2023", "date:2018..2023-06 -kernel",
                              "date:2023 OR kernel", "date:..2022 date:2023-07..", "kernel date:2023.."}) {
            SearchOptions o;
            o.sort = sort;
            o.limit = 100;  // a full sort, through value ranges
            o.parse = options(false);
            auto full = search(*archive_, q, o, links);
            ASSERT_TRUE(full);
            std::vector<std::uint64_t> want, got;
            for (const auto& h : full->hits) want.push_back(h.docno);
            o.parse = options(true);
            for (std::uint64_t off = 0; off < want.size(); ++off) {
                o.limit = 1;  // a window of few documents, widened until it holds the hit
                o.offset = off;
                auto one = search(*archive_, q, o, links);
                ASSERT_TRUE(one);
                ASSERT_EQ(one->hits.size(), 1u) << q << " offset " << off;
                got.push_back(one->hits[0].docno);
            }
            EXPECT_EQ(got, want) << q;
            o.limit = 3;
            o.offset = 1;
            auto page = search(*archive_, q, o, links);
            ASSERT_TRUE(page);
            std::vector<std::uint64_t> three;
            for (const auto& h : page->hits) three.push_back(h.docno);
            std::vector<std::uint64_t> expect(want.begin() + std::min<std::size_t>(1, want.size()),
                                              want.begin() + std::min<std::size_t>(4, want.size()));
            EXPECT_EQ(three, expect) << q;
        }
    }
}

// search() collects every match of a query with at most k_collect_up_to estimated matches,
// which on this small archive is every query: windows are forced here, at every offset.
TEST_F(DateOrderTest, ForcedWindowsGiveTheOrderOfCollectingEveryMatch) {
    Xapian::Database db = archive_->database();
    for (Sort sort : {Sort::newest, Sort::oldest}) {
        for (const char* q : {"*", "NOT kernel", "mailbox:bob@example.org", "date:2018..2023-06 -kernel",
                              "date:2023 OR kernel", "kernel date:2023..", "from:alice OR subject:lunch"}) {
            auto parsed = parse(q, db, options(true));
            ASSERT_TRUE(parsed) << q;
            bool exact = false;
            const auto all = sorted_matches(db, parsed->query, parsed->date, sort, 0, 1000, 0, &exact, true);
            ASSERT_TRUE(exact) << q;
            ASSERT_FALSE(all.ids.empty()) << q;
            for (Xapian::doccount off = 0; off < all.ids.size(); ++off) {
                const auto one = sorted_matches(db, parsed->query, parsed->date, sort, off, 1, 0, nullptr, true, 0);
                ASSERT_EQ(one.ids.size(), 1u) << q << " offset " << off;
                EXPECT_EQ(one.ids[0], all.ids[off]) << q << " offset " << off;
            }
            const auto page = sorted_matches(db, parsed->query, parsed->date, sort, 1, 3, 0, nullptr, true, 0);
            const std::vector<Xapian::docid> want(all.ids.begin() + std::min<std::size_t>(1, all.ids.size()),
                                                  all.ids.begin() + std::min<std::size_t>(4, all.ids.size()));
            EXPECT_EQ(page.ids, want) << q;
        }
    }
}

// A query of terms only (a word with its stem, a field, OR of words) is answered from its
// posting lists read directly: the same pages and exact totals as Xapian's sort by value.
TEST_F(DateOrderTest, QueriesOfTermsOnlyGiveTheOrderOfAFullSort) {
    Xapian::Database db = archive_->database();
    for (Sort sort : {Sort::newest, Sort::oldest}) {
        for (const char* q : {"kernel", "runs", "from:alice", "kernel OR lunch", "mailbox:bob@example.org",
                              "from:alice OR subject:lunch", "müller", "zzabsent OR kernel"}) {
            auto parsed = parse(q, db, options(true));
            ASSERT_TRUE(parsed) << q;
            bool exact_xapian = false, exact_postings = false;
            const auto want = sorted_matches(db, parsed->query, parsed->date, sort, 0, 1000, 0, &exact_xapian, false);
            const auto got = sorted_matches(db, parsed->query, parsed->date, sort, 0, 1000, 0, &exact_postings, true,
                                            k_collect_up_to, &parsed->term_freqs);
            ASSERT_FALSE(want.ids.empty()) << q;
            EXPECT_EQ(got.ids, want.ids) << q;
            EXPECT_TRUE(exact_postings) << q;
            EXPECT_EQ(got.estimate, want.ids.size()) << q;
            for (Xapian::doccount off = 0; off < want.ids.size(); ++off) {
                const auto one = sorted_matches(db, parsed->query, parsed->date, sort, off, 1, 0, nullptr, true);
                ASSERT_EQ(one.ids.size(), 1u) << q << " offset " << off;
                EXPECT_EQ(one.ids[0], want.ids[off]) << q << " offset " << off;
            }
        }
    }
}

// Every [lo, hi] between two document dates, through range() (a FILTER, as date: queries) and
// matches() (the collector of newest/oldest pages), alone and with a word: exactly the
// documents dated in it. Ranges of one or two documents take the sparse walk (a sorted docid
// list), wider ones the walk over every docid.
TEST_F(DateOrderTest, EveryDateRangeMatchesExactlyItsDocuments) {
    Xapian::Database db = archive_->database();
    auto order = DateOrder::of(db);
    std::vector<double> dates;
    for (Xapian::docid id = 1; id <= db.get_lastdocid(); ++id)
        if (!std::isnan(order->date_of(id))) dates.push_back(order->date_of(id));
    std::sort(dates.begin(), dates.end());
    dates.erase(std::unique(dates.begin(), dates.end()), dates.end());
    ASSERT_GT(dates.size(), 8u);
    auto ids_of = [&](const Xapian::Query& q) { return test::matching_ids(db, q); };
    auto word = parse("kernel OR lunch OR report", db, options(true));
    ASSERT_TRUE(word);
    const Set word_ids = ids_of(word->query);
    ASSERT_FALSE(word_ids.empty());
    for (std::size_t i = 0; i < dates.size(); ++i) {
        for (std::size_t j = i; j < dates.size(); ++j) {
            Set want, want_word;
            for (Xapian::docid id = 1; id <= db.get_lastdocid(); ++id) {
                const double d = order->date_of(id);
                if (d >= dates[i] && d <= dates[j]) {
                    want.insert(id);
                    if (word_ids.count(id)) want_word.insert(id);
                }
            }
            const auto range = order->range(dates[i], dates[j]);
            EXPECT_EQ(ids_of(range), want) << i << ".." << j;
            EXPECT_EQ(ids_of(Xapian::Query(Xapian::Query::OP_FILTER, word->query, range)), want_word) << i << ".." << j;
            auto collected = order->matches(db, word->query, DateOrder::Window{dates[i], dates[j]});
            ASSERT_TRUE(collected);
            EXPECT_EQ(Set(collected->begin(), collected->end()), want_word) << i << ".." << j;
        }
    }
    auto everything = order->matches(db, match_all(), std::nullopt);
    ASSERT_TRUE(everything);
    EXPECT_EQ(everything->size(), db.get_doccount());
    EXPECT_EQ(Set(everything->begin(), everything->end()), ids_of(match_all()));
}

// In memory the number of matches comes from the terms' document counts, not from Xapian:
// the true number lies within the guessed bounds, a single term is counted exactly, a query
// only Xapian can estimate (wildcard, value range) is left to it, and the counts the parser
// looked up give the same pages as looking them up again.
TEST_F(DateOrderTest, GuessedMatchCountsBoundTheTrueCount) {
    Xapian::Database db = archive_->database();
    auto true_count = [&](const Xapian::Query& q) {
        Xapian::Enquire e(db);
        e.set_query(q);
        return double(e.get_mset(0, db.get_doccount()).size());
    };
    std::size_t guessed = 0;
    for (const char* q : {"kernel", "kernel lunch", "kernel OR lunch OR report", "kernel -lunch", "\"cache flush\"",
                          "from:alice OR subject:lunch", "NOT kernel", "*", "zzabsent", "kernel zzabsent",
                          "kernel OR zzabsent", "(kernel OR report) -(lunch OR zzabsent)", "subject:lunch NEAR kernel",
                          "kernel* date:2023", "mailbox:bob@example.org kernel", "kernel date:2023..",
                          "date:2018..2023-06 -kernel", "(date:2022 OR date:2023-05) -lunch"}) {
        auto parsed = parse(q, db, options(true));
        ASSERT_TRUE(parsed) << q;
        const double n = true_count(parsed->query);
        auto with_known = guess_matches(db, parsed->query, &parsed->term_freqs);
        auto looked_up = guess_matches(db, parsed->query);
        ASSERT_EQ(bool(with_known), bool(looked_up)) << q;
        if (!with_known) continue;
        ++guessed;
        EXPECT_EQ(with_known->estimate, looked_up->estimate) << q;
        EXPECT_LE(with_known->lower, n) << q;
        EXPECT_GE(with_known->upper, n) << q;
        EXPECT_GE(with_known->estimate, with_known->lower) << q;
        EXPECT_LE(with_known->estimate, with_known->upper) << q;
        for (Sort sort : {Sort::newest, Sort::oldest}) {
            bool exact_known = false, exact_looked_up = false;
            const auto a = sorted_matches(db, parsed->query, parsed->date, sort, 0, 2, 0, &exact_known, true, 0,
                                          &parsed->term_freqs);
            const auto b = sorted_matches(db, parsed->query, parsed->date, sort, 0, 2, 0, &exact_looked_up, true, 0);
            EXPECT_EQ(a.ids, b.ids) << q;
            EXPECT_EQ(a.estimate, b.estimate) << q;
            EXPECT_EQ(exact_known, exact_looked_up) << q;
        }
    }
    EXPECT_GE(guessed, 10u);  // the word queries above, not left to Xapian
    for (const char* q : {"kernel", "from:alice"}) {  // one term each: its document count, exact
        auto parsed = parse(q, db, options(true));
        ASSERT_TRUE(parsed);
        Xapian::Query only = parsed->query;
        while (only.get_type() != Xapian::Query::LEAF_TERM && only.get_num_subqueries() > 0) only = only.get_subquery(0);
        ASSERT_EQ(only.get_type(), Xapian::Query::LEAF_TERM) << q;
        auto g = guess_matches(db, only);
        ASSERT_TRUE(g);
        EXPECT_EQ(g->lower, g->upper) << q;
        EXPECT_EQ(g->estimate, true_count(only)) << q;
        EXPECT_GT(g->estimate, 0) << q;
    }
    // A wildcard: every term beginning so, as Xapian expands it (read from the term list).
    for (const char* q : {"configur*", "kern*", "phoen* OR lunch", "from:ali*", "zzabs*"}) {
        auto wild = parse(q, db, options(true));
        ASSERT_TRUE(wild) << q;
        auto g = guess_matches(db, wild->query);
        ASSERT_TRUE(g) << q;
        const double truth = double(true_count(wild->query));
        EXPECT_LE(g->lower, truth) << q;
        EXPECT_GE(g->upper, truth) << q;
        EXPECT_GE(g->estimate, g->lower) << q;
        EXPECT_LE(g->estimate, g->upper) << q;
    }
    EXPECT_EQ(guess_matches(db, parse("zzabs*", db, options(true))->query)->upper, 0.0);
    for (const char* q : {"date:2023", "date:2018..2023-06", "date:1990..1991"}) {  // in memory: its documents, exact
        auto dated = parse(q, db, options(true));
        ASSERT_TRUE(dated);
        auto g = guess_matches(db, dated->query);
        ASSERT_TRUE(g) << q;
        EXPECT_EQ(g->lower, g->upper) << q;
        EXPECT_EQ(g->estimate, true_count(dated->query)) << q;
    }
    auto by_value = parse("date:2023", db, options(false));  // a value range: only Xapian can tell
    ASSERT_TRUE(by_value);
    EXPECT_FALSE(guess_matches(db, by_value->query));
}

TEST_F(DateOrderTest, TotalsAreExactUpToCheckAtLeastAndSaySoBeyond) {
    LinkBuilder links(LinkConfig{});
    AccessRule everything({"*"});
    Xapian::Database db = archive_->database();
    for (const char* q : {"*", "date:2023", "kernel", "\"cache flush\"", "date:2018..2023-06 -kernel"}) {
        SearchOptions o;
        o.limit = 2;
        o.parse = options(true);
        auto r = search_visible(*archive_, db, q, o, links, everything);
        ASSERT_TRUE(r) << q;
        auto n = count(*archive_, q, o.parse);
        ASSERT_TRUE(n);
        EXPECT_TRUE(r->total_exact) << q;  // at most 1,000 matches: counted
        EXPECT_EQ(r->total, *n) << q;
    }
}

TEST_F(DateOrderTest, OrderKnowsEveryDocumentAndItsRank) {
    Xapian::Database db = archive_->database();
    auto order = DateOrder::of(db);
    EXPECT_EQ(order->size(), db.get_doccount());
    EXPECT_EQ(DateOrder::of(db).get(), order.get());  // cached while the index is unchanged
    auto newest = order->kth(0, true, std::nullopt, std::nullopt);
    auto oldest = order->kth(0, false, std::nullopt, std::nullopt);
    ASSERT_TRUE(newest && oldest);
    EXPECT_EQ(Xapian::sortable_serialise(*newest), db.get_value_upper_bound(schema::k_slot_date));
    EXPECT_EQ(Xapian::sortable_serialise(*oldest), db.get_value_lower_bound(schema::k_slot_date));
    EXPECT_FALSE(order->kth(order->size(), true, std::nullopt, std::nullopt));
    EXPECT_EQ(order->count(std::nullopt, std::nullopt), order->size());
    EXPECT_EQ(order->count(*newest, std::nullopt), 1u);
    for (Xapian::docid id = 1; id <= db.get_lastdocid(); ++id) {
        const std::string v = db.get_document(id).get_value(schema::k_slot_date);
        if (!v.empty()) EXPECT_EQ(order->date_of(id), Xapian::sortable_unserialise(v)) << id;
    }
}

TEST(DateOrderFollowsTheIndex, MailAddedAfterTheFirstQueryIsFound) {
    test::TempDir d;
    const auto archive = d / "archive";
    auto mail = [](int day) {
        return "From: a@example.com\r\nTo: b@example.com\r\nSubject: day " + std::to_string(day) +
               "\r\nDate: " + std::to_string(day) + " May 2023 12:00:00 +0000\r\nMessage-ID: <d" +
               std::to_string(day) + "@example.com>\r\n\r\nbody\r\n";
    };
    for (int day = 1; day <= 4; ++day) test::write_file(d / "in1" / (std::to_string(day) + ".eml"), mail(day));
    ASSERT_EQ(test::run_mailvault({"--archive", archive.string(), "-q", "import", (d / "in1").string()}).exit_code, 0);
    auto a = index::Archive::open(archive, index::OpenMode::read);
    ASSERT_TRUE(a);
    Xapian::Database db = (*a)->database();
    LinkBuilder links(LinkConfig{});
    AccessRule everything({"*"});
    SearchOptions o;
    o.limit = 1;
    o.parse = ParseOptions{};
    o.parse.dates_in_memory = true;
    auto r = search_visible(**a, db, "date:2023-05", o, links, everything);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->total, 4u);
    ASSERT_EQ(r->hits.size(), 1u);
    EXPECT_EQ(r->hits[0].data.subject, "day 4");
    for (int day = 5; day <= 6; ++day) test::write_file(d / "in2" / (std::to_string(day) + ".eml"), mail(day));
    ASSERT_EQ(test::run_mailvault({"--archive", archive.string(), "-q", "import", (d / "in2").string()}).exit_code, 0);
    db.reopen();
    r = search_visible(**a, db, "date:2023-05", o, links, everything);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->total, 6u);
    ASSERT_EQ(r->hits.size(), 1u);
    EXPECT_EQ(r->hits[0].data.subject, "day 6");  // the newest, through a fresh order
    r = search_visible(**a, db, "date:2023-05-05", o, links, everything);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->total, 1u);
}

// The order of an index that grew (a commit of sync or import) is the cached order with the
// new documents merged in, not a rebuild; it must equal the order read in full, on one shard
// and on two (docids interleaved), with new mail older, newer and as old as what was there, and
// mail without a date. A state that lost documents is built anew.
TEST(DateOrderFollowsTheIndex, AGrownIndexExtendsItsOrderToWhatAFullReadGives) {
    test::TempDir d;
    auto same = [](const DateOrder& a, const DateOrder& b, const Xapian::Database& db) {
        ASSERT_EQ(a.size(), b.size());
        for (std::size_t k = 0; k < a.size(); ++k) {
            ASSERT_EQ(a.kth(k, true, std::nullopt, std::nullopt), b.kth(k, true, std::nullopt, std::nullopt)) << k;
        }
        for (Xapian::docid id = 1; id <= db.get_lastdocid() + 2; ++id) {
            const double x = a.date_of(id), y = b.date_of(id);
            ASSERT_TRUE(x == y || (std::isnan(x) && std::isnan(y))) << id;
        }
        for (double lo : {0.0, 1.0e9, 1.5e9, 1.7e9})
            for (double hi : {1.2e9, 1.6e9, 2.0e9}) EXPECT_EQ(a.count(lo, hi), b.count(lo, hi)) << lo << ".." << hi;
        // A date range through each order's posting source matches the same documents.
        auto ids = [&](const DateOrder& o) {
            std::vector<Xapian::docid> v;
            Xapian::Enquire e(db);
            e.set_query(o.range(1.1e9, 1.8e9));
            for (auto m = e.get_mset(0, db.get_doccount() + 1).begin(); m != Xapian::MSetIterator(); ++m) v.push_back(*m);
            return v;
        };
        EXPECT_EQ(ids(a), ids(b));
    };
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> date(1.0e9, 1.9e9);
    auto add = [&](Xapian::WritableDatabase& w, int n) {
        for (int i = 0; i < n; ++i) {
            Xapian::Document doc;
            doc.add_term("Xall");
            if (i % 7 != 3) doc.add_value(schema::k_slot_date, Xapian::sortable_serialise(i % 5 == 0 ? 1.5e9 : date(rng)));
            w.add_document(doc);
        }
        w.commit();
    };
    for (int shards : {1, 2}) {
        SCOPED_TRACE(std::to_string(shards) + " shard(s)");
        std::vector<std::string> paths;
        Xapian::WritableDatabase writer;
        for (int s = 0; s < shards; ++s) {
            paths.push_back((d / ("s" + std::to_string(shards) + "-" + std::to_string(s))).string());
            writer.add_database(Xapian::WritableDatabase(paths.back(), Xapian::DB_CREATE_OR_OPEN));
        }
        add(writer, 40);
        Xapian::Database db;
        for (const auto& p : paths) db.add_database(Xapian::Database(p));
        auto first = DateOrder::of(db);
        for (int round = 0; round < 4; ++round) {
            add(writer, 1 + round * 9);
            db.reopen();
            auto grown = DateOrder::of(db);
            EXPECT_NE(grown.get(), first.get());
            same(*grown, *DateOrder::build(db), db);
            first = grown;
        }
        // Documents removed (and more added, so the count alone would not tell): built anew.
        writer.delete_document(3);
        writer.delete_document(10);
        add(writer, 2);
        db.reopen();
        auto after = DateOrder::of(db);
        EXPECT_EQ(after->size(), DateOrder::build(db)->size());
        same(*after, *DateOrder::build(db), db);
    }
}

// serve's worker threads search at once, each on its own database. A query that every thread
// shares under the hood (Xapian::Query::MatchAll, whose reference count is not atomic, copied
// by the access rule of a ["*"] user and by `*`, pure-NOT and is:unread queries) corrupted its
// count and crashed `serve` under 16 connections. Every thread must get the answer one thread
// gets alone.
TEST_F(DateOrderTest, ServerThreadsSearchAtOnceAndAgree) {
    LinkBuilder links(LinkConfig{});
    const std::vector<const char*> queries = {"*", "NOT kernel", "is:unread", "date:2023", "kernel", "-lunch"};
    std::vector<std::vector<std::uint64_t>> expected;
    {
        Xapian::Database db = archive_->database();
        for (const char* q : queries) {
            SearchOptions o;
            o.limit = 5;
            o.parse = options(true);
            auto r = search_visible(*archive_, db, q, o, links, AccessRule({"*"}));
            ASSERT_TRUE(r) << q;
            std::vector<std::uint64_t> ids;
            for (const auto& h : r->hits) ids.push_back(h.docno);
            expected.push_back(ids);
        }
    }
    std::atomic<int> wrong{0}, failed{0};
    auto worker = [&] {
        Xapian::Database db = archive_->database();
        AccessRule everything({"*"});
        for (int round = 0; round < 1500; ++round) {
            const std::size_t i = static_cast<std::size_t>(round) % queries.size();
            SearchOptions o;
            o.limit = 5;
            o.parse = options(true);
            auto r = search_visible(*archive_, db, queries[i], o, links, everything);
            if (!r) {
                ++failed;
                continue;
            }
            std::vector<std::uint64_t> ids;
            for (const auto& h : r->hits) ids.push_back(h.docno);
            if (ids != expected[i]) ++wrong;
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace mv::query
