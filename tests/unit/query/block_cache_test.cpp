// The per-thread cache of index blocks in front of Xapian's reads (query/block_cache.hpp):
// searches through it find what they find without it, and read their blocks from it the
// second time; a descriptor number that the kernel gives out again never finds the blocks of
// the file it named before; a reader that follows a writer through blocks::reopen never sees
// a block of an earlier revision.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "query/block_cache.hpp"
#include "support/testutil.hpp"

namespace mv::query {
namespace {

namespace fs = std::filesystem;

// The cache of the test's thread, on for the length of a scope.
struct CacheOn {
    explicit CacheOn(std::size_t bytes = 4u << 20) { blocks::enable_for_this_thread(bytes); }
    ~CacheOn() { blocks::enable_for_this_thread(0); }
};

const std::vector<std::string> k_words = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                                          "hotel", "india", "juliet", "kilo", "lima", "mike", "november"};

// A glass database of `n` documents: data "<tag>-<i>", some words (with positions), the
// term "Q<i>"; large enough for several levels of blocks.
void build(const fs::path& dir, const std::string& tag, int n, unsigned seed) {
    Xapian::WritableDatabase db(dir.string(), Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
    std::mt19937 rng(seed);
    for (int i = 0; i < n; ++i) {
        Xapian::Document d;
        d.set_data(tag + "-" + std::to_string(i));
        for (int w = 0; w < 30; ++w) d.add_posting(k_words[rng() % k_words.size()] + std::to_string(rng() % 50), w + 1);
        d.add_boolean_term("Q" + std::to_string(i));
        db.add_document(d);
    }
    db.commit();
}

// What a few searches find: matching docids, estimates and the data of the first hits.
std::vector<std::string> searches(const Xapian::Database& db) {
    std::vector<std::string> out;
    for (const char* q : {"alpha1", "bravo2", "charlie3", "delta4", "echo5", "mike49", "november0"}) {
        Xapian::Enquire e(db);
        e.set_query(Xapian::Query(q));
        auto m = e.get_mset(0, 50);
        std::string line = std::string(q) + " " + std::to_string(m.get_matches_estimated()) + ":";
        for (auto it = m.begin(); it != m.end(); ++it) line += " " + std::to_string(*it) + "=" + it.get_document().get_data();
        out.push_back(line);
    }
    Xapian::Enquire e(db);
    const std::vector<std::string> words{"alpha1", "bravo2"};
    e.set_query(Xapian::Query(Xapian::Query::OP_PHRASE, words.begin(), words.end()));
    auto m = e.get_mset(0, 100);
    std::string line = "phrase:";
    for (auto it = m.begin(); it != m.end(); ++it) line += " " + std::to_string(*it);
    out.push_back(line);
    return out;
}

// The descriptors of this process open on Xapian table files.
std::set<int> table_descriptors() {
    std::set<int> out;
    for (auto& e : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        auto target = fs::read_symlink(e.path(), ec);
        if (!ec && target.extension() == ".glass") out.insert(std::stoi(e.path().filename().string()));
    }
    return out;
}

TEST(BlockCache, ASecondSearchIsReadFromTheCacheAndFindsTheSame) {
    test::TempDir tmp;
    build(tmp.path() / "db", "a", 3000, 1);
    auto expected = searches(Xapian::Database((tmp.path() / "db").string()));

    CacheOn on;
    Xapian::Database db((tmp.path() / "db").string());
    auto first = searches(db);
    auto after_first = blocks::stats();
    auto second = searches(db);
    auto after_second = blocks::stats();
    EXPECT_EQ(first, expected);
    EXPECT_EQ(second, expected);
    EXPECT_GT(after_first.misses, 0u) << "nothing went through the cache";
    EXPECT_EQ(after_second.misses, after_first.misses) << "the second time read blocks from the files again";
    EXPECT_GT(after_second.hits, after_first.hits);
    EXPECT_EQ(after_second.capacity, (4u << 20) / blocks::k_block_size);
}

TEST(BlockCache, ASmallCacheEvictsAndStillFindsTheSame) {
    test::TempDir tmp;
    build(tmp.path() / "db", "a", 3000, 2);
    auto expected = searches(Xapian::Database((tmp.path() / "db").string()));
    CacheOn on(4 * blocks::k_block_size);  // four blocks: nearly every read replaces one
    Xapian::Database db((tmp.path() / "db").string());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(searches(db), expected);
    EXPECT_EQ(blocks::stats().blocks, 4u);
}

// Documents from both ends in turn: Xapian keeps only the path to the last block it read, so
// going back reads a block again (from the cache, when it is on).
std::vector<Xapian::docid> back_and_forth() {
    std::vector<Xapian::docid> out;
    for (Xapian::docid lo = 1, hi = 2000; lo < hi; lo += 5, hi -= 5) {
        out.push_back(lo);
        out.push_back(hi);
    }
    return out;
}

TEST(BlockCache, ADescriptorNumberGivenOutAgainReadsTheNewFile) {
    // Two databases of the same shape, different data: block for block at the same offsets.
    test::TempDir tmp;
    build(tmp.path() / "a", "first", 2000, 7);
    build(tmp.path() / "b", "second", 2000, 7);
    CacheOn on;
    std::set<int> used_by_a;
    {
        Xapian::Database a((tmp.path() / "a").string());
        for (Xapian::docid d : back_and_forth()) ASSERT_EQ(a.get_document(d).get_data(), "first-" + std::to_string(d - 1));
        used_by_a = table_descriptors();
    }  // closed: the numbers are free again
    Xapian::Database b((tmp.path() / "b").string());
    const auto hits_before = blocks::stats().hits;
    for (Xapian::docid d : back_and_forth()) ASSERT_EQ(b.get_document(d).get_data(), "second-" + std::to_string(d - 1));
    EXPECT_GT(blocks::stats().hits, hits_before) << "b's reads never came from the cache";
    // The test means something only if b's tables got a's numbers (the kernel gives out the
    // lowest free one).
    std::set<int> shared;
    for (int fd : table_descriptors())
        if (used_by_a.count(fd)) shared.insert(fd);
    EXPECT_FALSE(shared.empty()) << "no descriptor number was given out again";
    EXPECT_EQ(searches(b), searches(Xapian::Database((tmp.path() / "b").string())));
}

// A writer rewrites a tenth of the documents at each commit (so glass reuses blocks of
// earlier revisions for new data, while the rest stay) while this thread, cache on, follows
// it through blocks::reopen and reads all over the tables: every state it reads is one
// commit, whole; at the end it reads the last.
TEST(BlockCache, AReaderFollowingAWriterReadsOnlyWholeCommits) {
    test::TempDir tmp;
    const fs::path path = tmp.path() / "db";
    constexpr int n = 3000, per_commit = 300, commits = 40;
    // Commit k: documents (distinct, seeded by k) get data "k" and the term R<k>; metadata
    // d<i> says which commit last wrote document i.
    auto write = [&](Xapian::WritableDatabase& w, int k) {
        std::mt19937 rng(static_cast<unsigned>(k));
        std::set<int> chosen;
        while (k == 0 ? chosen.size() < n : chosen.size() < per_commit) chosen.insert(static_cast<int>(rng() % n));
        for (int i : chosen) {
            Xapian::Document d;
            d.set_data(std::to_string(k));
            d.add_boolean_term("R" + std::to_string(k));
            d.add_boolean_term("Q" + std::to_string(i));
            for (int j = 0; j < 40; ++j) d.add_term(k_words[rng() % k_words.size()] + std::to_string(rng() % 200));
            w.replace_document("Q" + std::to_string(i), d);
            w.set_metadata("d" + std::to_string(i), std::to_string(k));
        }
        w.set_metadata("k", std::to_string(k));
        w.set_metadata("count", std::to_string(chosen.size()));
        w.commit();
    };
    {
        Xapian::WritableDatabase w(path.string(), Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
        write(w, 0);
    }
    std::atomic<bool> done{false};
    std::thread writer([&] {
        Xapian::WritableDatabase w(path.string(), Xapian::DB_OPEN | Xapian::DB_BACKEND_GLASS);
        for (int k = 1; k <= commits; ++k) {
            write(w, k);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // time to read each state
        }
        done = true;
    });

    CacheOn on;
    Xapian::Database db(path.string());
    std::mt19937 pick(5);
    // One whole commit: what metadata, term counts, posting lists and documents say agrees.
    auto check = [&](std::string& why) {
        const std::string k = db.get_metadata("k");
        const auto count = std::stoul(db.get_metadata("count"));
        if (db.get_doccount() != n) return why = "doccount " + std::to_string(db.get_doccount()), false;
        if (db.get_termfreq("R" + k) != count)
            return why = "termfreq of R" + k + ": " + std::to_string(db.get_termfreq("R" + k)), false;
        for (auto it = db.postlist_begin("R" + k); it != db.postlist_end("R" + k); ++it)
            if (auto data = db.get_document(*it).get_data(); data != k)
                return why = "document " + std::to_string(*it) + " of commit " + data + " in commit " + k, false;
        for (int j = 0; j < 60; ++j) {
            int i = static_cast<int>(pick() % n);
            Xapian::docid id = *db.postlist_begin("Q" + std::to_string(i));
            auto data = db.get_document(id).get_data(), meta = db.get_metadata("d" + std::to_string(i));
            if (data != meta) return why = "document " + std::to_string(i) + ": data " + data + ", metadata " + meta, false;
        }
        return true;
    };
    int whole = 0, changed_under = 0;
    std::set<std::string> seen;
    while (!done) {
        try {
            blocks::reopen(db);
            std::string why;
            EXPECT_TRUE(check(why)) << why;
            seen.insert(db.get_metadata("k"));
            ++whole;
        } catch (const Xapian::DatabaseModifiedError&) {  // what a reader without a cache meets too
            ++changed_under;
        } catch (const Xapian::DatabaseCorruptError&) {  // (glass, a block reused while read)
            ++changed_under;
        }
    }
    writer.join();
    blocks::reopen(db);
    std::string why;
    EXPECT_TRUE(check(why)) << why;
    EXPECT_EQ(db.get_metadata("k"), std::to_string(commits));
    EXPECT_GT(seen.size(), 1u) << "the reader saw one state only";
    EXPECT_GT(blocks::stats().hits, 0u);
    std::cout << "[ blocks ] " << whole << " whole reads of " << seen.size() << " commits, " << changed_under
              << " times changed under the read, " << blocks::stats().hits << " hits\n";
}

TEST(BlockCache, OffItIsTheFileEveryTime) {
    test::TempDir tmp;
    build(tmp.path() / "db", "a", 500, 3);
    blocks::enable_for_this_thread(0);
    Xapian::Database db((tmp.path() / "db").string());
    searches(db);
    EXPECT_EQ(blocks::stats().hits, 0u);
    EXPECT_EQ(blocks::stats().misses, 0u);
}

}  // namespace
}  // namespace mv::query
