// Crash gaps that destroy originals (issue 9): the mailvault binary is killed (SIGKILL) just
// before each rename, fsync, unlink and truncate that import (with its compaction) and
// reindex make, counted over all threads by the syscall_kill.so shim. After each kill: the
// read commands work (search, show, verify), and another run completes the work with nothing
// lost, nothing unreadable and nothing stored twice. Also the states older versions left
// behind (a legacy reindex or compaction cut between its two renames) and a lost index.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "index/archive.hpp"
#include "index/mime/dedupe.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

namespace mv {
namespace {
namespace fs = std::filesystem;

constexpr int k_messages = 1100;  // at least 1000 new: import compacts the index afterwards
constexpr int k_copies = 5;       // messages imported again into folder "Other"

std::string message(int i) {
    return "From sender" + std::to_string(i % 7) + "@example.org Mon Jan  1 00:00:00 2024\n" +
           "Message-ID: <crash-" + std::to_string(i) + "@example.org>\n" +
           "From: Sender " + std::to_string(i % 7) + " <sender" + std::to_string(i % 7) + "@example.org>\n" +
           "To: archive@example.org\n" +
           "Date: Mon, 1 Jan 2024 00:" + std::to_string(10 + i % 50) + ":00 +0000\n" +
           "Subject: crash note " + std::to_string(i) + "\n\n" +
           "Body of message " + std::to_string(i) + " with the word durability in it.\n\n";
}

struct Call {
    long n = 0;
    std::string name, path;
};

std::vector<Call> read_calls(const fs::path& log) {
    std::vector<Call> out;
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream s(line);
        Call c;
        s >> c.n >> c.name;
        std::getline(s >> std::ws, c.path);
        out.push_back(c);
    }
    return out;
}

// The whole originals store, record by record.
struct StoreContents {
    std::uint64_t bytes = 0;
    std::multiset<std::string> original_shas;  // hex, one per original record
    std::size_t records = 0;
};

StoreContents store_contents(const fs::path& archive) {
    StoreContents c;
    auto a = index::Archive::open(archive, index::OpenMode::read);
    if (!a) return c;
    c.bytes = (*a)->store().total_bytes();
    EXPECT_TRUE((*a)->store().scan([&](const index::RecordHeader& h, const index::StoredRef&, std::string_view) {
        ++c.records;
        if (h.type == index::RecordType::original) c.original_shas.insert(to_hex(h.sha));
        return true;
    }));
    return c;
}

std::uint64_t count_of(const test::RunResult& r) { return std::strtoull(r.out.c_str(), nullptr, 10); }

class Crash : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string mbox, copies;
        for (int i = 0; i < k_messages; ++i) mbox += message(i);
        for (int i = 0; i < k_copies; ++i) copies += message(i * 100);
        test::write_file(tmp_ / "mail.mbox", mbox);
        test::write_file(tmp_ / "copies.mbox", copies);
    }

    fs::path archive() const { return tmp_ / "archive"; }

    test::RunResult mv(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) const {
        std::vector<std::string> all{"--quiet", "--archive", archive().string()};
        all.insert(all.end(), args.begin(), args.end());
        return test::run_mailvault(all, "", env);
    }
    test::RunResult import_mail(const std::vector<std::string>& env = {}) const {
        return mv({"import", (tmp_ / "mail.mbox").string()}, env);
    }
    test::RunResult import_copies(const std::vector<std::string>& env = {}) const {
        return mv({"import", "--folder", "Other", (tmp_ / "copies.mbox").string()}, env);
    }
    std::vector<std::string> shim(long kill_at, const fs::path& log = {}) const {
        std::vector<std::string> env{std::string("LD_PRELOAD=") + MV_SYSCALL_KILL,
                                     "MV_SYSCALL_KILL_AT=" + std::to_string(kill_at)};
        if (!log.empty()) env.push_back("MV_SYSCALL_LOG=" + log.string());
        return env;
    }

    // Every command that reads works on whatever a kill left; returns the message count.
    std::uint64_t expect_readable(const std::string& where) const {
        auto count = mv({"search", "--count", "*"});
        EXPECT_EQ(count.exit_code, 0) << where << ": " << count.err;
        const std::uint64_t n = count_of(count);
        EXPECT_LE(n, static_cast<std::uint64_t>(k_messages)) << where;
        if (n > 0) {
            auto hits = mv({"search", "--json", "--limit", "1", "durability"});
            EXPECT_EQ(hits.exit_code, 0) << where << ": " << hits.err;
            auto at = hits.out.find("\"docno\":");
            EXPECT_NE(at, std::string::npos) << where << ": " << hits.out;
            if (at != std::string::npos) {
                std::string docno = std::to_string(std::strtoull(hits.out.c_str() + at + 8, nullptr, 10));
                auto show = mv({"show", docno});
                EXPECT_EQ(show.exit_code, 0) << where << ": " << show.err;
                auto raw = mv({"show", "--raw", docno});
                EXPECT_EQ(raw.exit_code, 0) << where << ": " << raw.err;
                EXPECT_NE(raw.out.find("durability"), std::string::npos) << where;
            }
        }
        auto verify = mv({"verify"});
        EXPECT_EQ(verify.exit_code, 0) << where << ": " << verify.out << verify.err;
        return n;
    }

    // Everything archived, readable, once: every message found, every original stored once
    // and re-hashing to its index entry, the extra places recorded.
    void expect_complete(const std::string& where) const {
        EXPECT_EQ(count_of(mv({"search", "--count", "*"})), static_cast<std::uint64_t>(k_messages)) << where;
        EXPECT_EQ(count_of(mv({"search", "--count", "folder:Other"})), static_cast<std::uint64_t>(k_copies)) << where;
        auto verify = mv({"verify"});
        EXPECT_EQ(verify.exit_code, 0) << where << ": " << verify.out << verify.err;
        StoreContents c = store_contents(archive());
        std::set<std::string> distinct(c.original_shas.begin(), c.original_shas.end());
        EXPECT_EQ(c.original_shas.size(), static_cast<std::size_t>(k_messages)) << where << ": originals stored twice";
        EXPECT_EQ(distinct.size(), static_cast<std::size_t>(k_messages)) << where;
        auto a = index::Archive::open(archive(), index::OpenMode::read);
        ASSERT_TRUE(a) << where;
        Xapian::Database db = (*a)->database();
        const std::string q(schema::k_dedupe_prefix);
        std::size_t keys = 0;
        for (auto t = db.allterms_begin(q); t != db.allterms_end(q); ++t) {
            ++keys;
            EXPECT_EQ(t.get_termfreq(), 1u) << where << ": two documents for one message";
        }
        EXPECT_EQ(keys, static_cast<std::size_t>(k_messages)) << where;
    }

    // The points to kill at: every one in the full sweep; else each index switch (the rename
    // of CURRENT) and the call after it, the first sync of the originals, the middle one.
    std::vector<Call> points(const std::vector<Call>& calls) const {
        if (MV_FULL_SWEEP) return calls;
        std::set<long> chosen{static_cast<long>(calls.size() / 2)};
        bool pack_seen = false;
        for (const auto& c : calls) {
            if (c.name.rfind("rename", 0) == 0 && c.path.ends_with("/CURRENT")) chosen.insert({c.n, c.n + 1});
            if (c.path.find("pack-") != std::string::npos && !pack_seen) {
                pack_seen = true;
                chosen.insert(c.n);
            }
        }
        std::vector<Call> out;
        for (const auto& c : calls)
            if (chosen.count(c.n)) out.push_back(c);
        return out;
    }

    void print_points(const std::string& op, const std::vector<Call>& calls, const std::vector<Call>& tried,
                      const std::map<long, std::string>& outcomes) const {
        std::cout << op << ": " << calls.size() << " calls in a clean run; killed before " << tried.size() << ":\n";
        for (const auto& c : tried) {
            std::string p = c.path;
            if (auto at = p.find(archive().string()); at != std::string::npos) p = "ARCHIVE" + p.substr(at + archive().string().size());
            auto o = outcomes.find(c.n);
            std::cout << "  " << c.n << " " << c.name << " " << p << ": " << (o == outcomes.end() ? "FAILED" : o->second) << "\n";
        }
    }

    test::TempDir tmp_;
};

// Kill import (first import of 1,100 messages: store, commits, compaction into a new index
// generation and the switch to it) before each of its calls, then read, then import again.
TEST_F(Crash, ImportKilledAtEachPointLosesNothing) {
    const fs::path log = tmp_ / "import.calls";
    ASSERT_EQ(import_mail(shim(0, log)).exit_code, 0);
    const auto calls = read_calls(log);
    ASSERT_GT(calls.size(), 20u);
    ASSERT_TRUE(std::any_of(calls.begin(), calls.end(), [](const Call& c) { return c.path.find("CURRENT") != std::string::npos; }))
        << "the clean run did not compact";
    std::map<long, std::string> outcomes;
    const auto tried = points(calls);
    for (const auto& c : tried) {
        const std::string where = "import killed before call " + std::to_string(c.n) + " (" + c.name + " " + c.path + ")";
        fs::remove_all(archive());
        auto r = import_mail(shim(c.n));
        EXPECT_TRUE(r.exit_code == 128 + SIGKILL || r.exit_code == 0) << where << ": " << r.err;
        const bool killed = r.exit_code == 128 + SIGKILL;
        StoreContents before = store_contents(archive());
        const std::uint64_t found = fs::exists(archive() / "FORMAT") ? expect_readable(where) : 0;
        // The next import recovers: whatever was stored stays stored, nothing twice.
        r = import_mail();
        EXPECT_EQ(r.exit_code, 0) << where << ": " << r.err;
        StoreContents after = store_contents(archive());
        for (const auto& sha : before.original_shas) EXPECT_EQ(after.original_shas.count(sha), 1u) << where;
        r = import_copies();
        EXPECT_EQ(r.exit_code, 0) << where << ": " << r.err;
        expect_complete(where);
        outcomes[c.n] = std::string(killed ? "killed" : "not reached in this run") + "; readable (" + std::to_string(found) + " found, " +
                        std::to_string(before.original_shas.size()) + " originals stored), next import complete";
        if (HasFailure()) break;
    }
    print_points("import", calls, tried, outcomes);
}

// Kill reindex before each of its calls: the old index or the new one is in use, never none;
// the originals are untouched; reindex and import run again.
TEST_F(Crash, ReindexKilledAtEachPointLosesNothing) {
    ASSERT_EQ(import_mail().exit_code, 0);
    ASSERT_EQ(import_copies().exit_code, 0);
    const fs::path base = tmp_ / "base";
    fs::copy(archive(), base, fs::copy_options::recursive);
    const StoreContents stored = store_contents(archive());
    const fs::path log = tmp_ / "reindex.calls";
    ASSERT_EQ(mv({"reindex"}, shim(0, log)).exit_code, 0);
    expect_complete("clean reindex");
    const auto calls = read_calls(log);
    ASSERT_GT(calls.size(), 10u);
    std::map<long, std::string> outcomes;
    const auto tried = points(calls);
    for (const auto& c : tried) {
        const std::string where = "reindex killed before call " + std::to_string(c.n) + " (" + c.name + " " + c.path + ")";
        fs::remove_all(archive());
        fs::copy(base, archive(), fs::copy_options::recursive);
        auto r = mv({"reindex"}, shim(c.n));
        EXPECT_TRUE(r.exit_code == 128 + SIGKILL || r.exit_code == 0) << where << ": " << r.err;
        const bool killed = r.exit_code == 128 + SIGKILL;
        EXPECT_EQ(expect_readable(where), static_cast<std::uint64_t>(k_messages)) << where;
        StoreContents now = store_contents(archive());
        EXPECT_EQ(now.bytes, stored.bytes) << where << ": the originals changed";
        r = import_mail();
        EXPECT_EQ(r.exit_code, 0) << where << ": " << r.err;
        r = mv({"reindex"});
        EXPECT_EQ(r.exit_code, 0) << where << ": " << r.err;
        expect_complete(where);
        outcomes[c.n] = std::string(killed ? "killed" : "not reached in this run") + "; old or new index in use (" + std::to_string(k_messages) +
                        " found), originals unchanged, import and reindex again complete";
        if (HasFailure()) break;
    }
    print_points("reindex", calls, tried, outcomes);
}

#if !MV_FULL_SWEEP

// A record torn by the kill (half written): moved aside, never counted as mail, the rest kept.
TEST_F(Crash, TornRecordIsMovedAsideAndTheRunResumes) {
    for (long at : {1L, 400L, 1100L}) {
        const std::string where = "torn append " + std::to_string(at);
        fs::remove_all(archive());
        std::vector<std::string> env{std::string("LD_PRELOAD=") + MV_SYSCALL_KILL, "MV_SYSCALL_TEAR_AT=" + std::to_string(at)};
        auto r = import_mail(env);
        EXPECT_EQ(r.exit_code, 128 + SIGKILL) << where << ": " << r.err;
        expect_readable(where);
        ASSERT_EQ(import_mail().exit_code, 0) << where;
        ASSERT_EQ(import_copies().exit_code, 0) << where;
        expect_complete(where);
        EXPECT_TRUE(fs::exists(archive() / "originals" / "torn")) << where;
    }
}

// The archive state an older version's reindex left when killed between its two renames
// (no index/, the old index as index.old, the new one in reindex.tmp/index): readers read
// the old index, the next writer installs the new one, nothing is cut from the originals.
class Legacy : public Crash {
  protected:
    // Rewrites the archive into the layout of older versions: shard-K and meta in index/.
    void make_legacy() {
        const fs::path index = archive() / "index";
        std::string gen;
        std::ifstream(index / "CURRENT") >> gen;
        ASSERT_FALSE(gen.empty());
        for (const auto& e : fs::directory_iterator(index / gen)) fs::rename(e.path(), index / e.path().filename());
        fs::remove_all(index / gen);
        fs::remove(index / "CURRENT");
    }
    void SetUp() override {
        Crash::SetUp();
        ASSERT_EQ(import_mail().exit_code, 0);
        ASSERT_EQ(import_copies().exit_code, 0);
        make_legacy();
        expect_complete("legacy layout");
        stored_ = store_contents(archive());
    }
    StoreContents stored_;
};

TEST_F(Legacy, ReindexCutBetweenRenamesIsFinishedNotRestartedEmpty) {
    fs::create_directories(archive() / "reindex.tmp");
    fs::copy(archive() / "index", archive() / "reindex.tmp" / "index", fs::copy_options::recursive);
    fs::rename(archive() / "index", archive() / "index.old");
    EXPECT_EQ(expect_readable("legacy reindex cut, before any writer"), static_cast<std::uint64_t>(k_messages));
    auto r = import_mail();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(store_contents(archive()).original_shas, stored_.original_shas);
    EXPECT_FALSE(fs::exists(archive() / "index.old"));
    EXPECT_FALSE(fs::exists(archive() / "reindex.tmp"));
    expect_complete("legacy reindex cut, after import");
    r = mv({"reindex"});
    ASSERT_EQ(r.exit_code, 0) << r.err;  // never "Directory not empty"
    expect_complete("legacy reindex cut, after reindex");
}

TEST_F(Legacy, ReindexCutBeforeTheNewIndexWasCompleteRollsBack) {
    fs::create_directories(archive() / "reindex.tmp" / "index");  // the rebuild had not got far
    fs::rename(archive() / "index", archive() / "index.old");
    EXPECT_EQ(expect_readable("legacy reindex cut early"), static_cast<std::uint64_t>(k_messages));
    ASSERT_EQ(mv({"reindex"}).exit_code, 0);
    EXPECT_EQ(store_contents(archive()).original_shas, stored_.original_shas);
    ASSERT_EQ(import_mail().exit_code, 0);
    expect_complete("legacy reindex cut early, after reindex and import");
}

TEST_F(Legacy, CompactionCutBetweenRenamesIsReadableAndFinished) {
    const fs::path shard = archive() / "index" / "shard-1";
    fs::copy(shard, archive() / "index" / "shard-1.compact", fs::copy_options::recursive);
    fs::rename(shard, archive() / "index" / "shard-1.old");
    EXPECT_EQ(expect_readable("legacy compaction cut"), static_cast<std::uint64_t>(k_messages));
    ASSERT_EQ(import_mail().exit_code, 0);
    EXPECT_TRUE(fs::exists(shard));
    EXPECT_FALSE(fs::exists(archive() / "index" / "shard-1.old"));
    expect_complete("legacy compaction cut, after import");
}

// Readers while the index is replaced under them (reindex switching generations and removing
// the old one): every search answers, with every message.
TEST_F(Crash, ReadersDuringReindexAlwaysAnswer) {
    ASSERT_EQ(import_mail().exit_code, 0);
    std::atomic<bool> done{false};
    std::atomic<int> reindexed{0};
    std::thread writer([&] {
        for (int i = 0; i < 4; ++i)
            if (mv({"reindex"}).exit_code == 0) ++reindexed;
        done = true;
    });
    int searches = 0;
    while (!done) {
        auto r = mv({"search", "--count", "*"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(count_of(r), static_cast<std::uint64_t>(k_messages)) << r.err;
        ++searches;
        if (HasFailure()) break;
    }
    writer.join();
    EXPECT_EQ(reindexed, 4);
    EXPECT_GT(searches, 0);
    std::cout << searches << " searches during 4 reindex runs, all answered\n";
}

// No index at all beside the originals (deleted, or lost): writers refuse and name the
// recovery, readers too; reindex rebuilds; the originals are never cut.
TEST_F(Crash, LostIndexIsRefusedThenRebuiltNeverStartedEmpty) {
    ASSERT_EQ(import_mail().exit_code, 0);
    ASSERT_EQ(import_copies().exit_code, 0);
    auto pack_bytes = [&] {
        std::uint64_t n = 0;
        for (const auto& e : fs::directory_iterator(archive() / "originals"))
            if (e.is_regular_file()) n += e.file_size();
        return n;
    };
    const std::uint64_t stored = pack_bytes();
    ASSERT_GT(stored, 0u);
    fs::remove_all(archive() / "index");
    auto r = import_mail();
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("reindex"), std::string::npos) << r.err;
    r = mv({"search", "--count", "*"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("reindex"), std::string::npos) << r.err;
    EXPECT_EQ(pack_bytes(), stored);
    r = mv({"reindex"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(import_mail().exit_code, 0);
    expect_complete("after the index was lost and rebuilt");
}

#endif

}  // namespace
}  // namespace mv
