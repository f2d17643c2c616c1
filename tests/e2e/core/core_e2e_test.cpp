// Archive core end to end: import through the binary, then check the archive through the API.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "index/archive.hpp"
#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

namespace mv {
namespace {
namespace fs = std::filesystem;

std::vector<fs::path> files_under(const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

// Distinct messages by the DESIGN.md definition, with the sha256 of the first copy of each.
std::map<Digest, std::string> distinct_messages(const std::vector<fs::path>& files) {
    std::map<Digest, std::string> out;
    for (const auto& f : files) {
        std::string raw = test::read_file(f);
        if (raw.empty()) continue;
        out.emplace(index::dedupe_key(raw), to_hex(sha256(raw)));
    }
    return out;
}

struct ArchiveCheck {
    std::uint64_t docs = 0;
    std::set<std::string> shas;  // of stored originals, each re-hashed
    std::size_t bad_originals = 0;
    std::size_t duplicate_keys = 0;
};

// Reads every document back: original decompressed and re-hashed, dedupe keys unique.
ArchiveCheck check_archive(const fs::path& dir) {
    ArchiveCheck c;
    auto archive = index::Archive::open(dir, index::OpenMode::read);
    EXPECT_TRUE(archive);
    if (!archive) return c;
    Xapian::Database db = (*archive)->database();
    c.docs = db.get_doccount();
    for (auto it = db.postlist_begin(""); it != db.postlist_end(""); ++it) {
        auto raw = (*archive)->read_original(*it);
        Xapian::Document doc = db.get_document(*it);
        std::string stored_sha = doc.get_value(schema::k_slot_sha256);
        if (!raw || std::string(reinterpret_cast<const char*>(sha256(*raw).data()), 32) != stored_sha) {
            ++c.bad_originals;
            continue;
        }
        c.shas.insert(to_hex(sha256(*raw)));
    }
    const std::string q(schema::k_dedupe_prefix);
    for (auto t = db.allterms_begin(q); t != db.allterms_end(q); ++t)
        if (t.get_termfreq() != 1) ++c.duplicate_keys;
    return c;
}

std::uint64_t search_count(const fs::path& archive, const std::string& query) {
    auto r = test::run_mailvault({"--archive", archive.string(), "search", "--count", query});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::strtoull(r.out.c_str(), nullptr, 10);
}

class CoreE2E : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::unpack_corpus("varied.mbox.zst", tmp_.path() / "varied")) GTEST_SKIP() << "corpus not found";
        files_ = files_under(tmp_.path() / "varied");
        expected_ = distinct_messages(files_);
    }
    test::TempDir tmp_;
    std::vector<fs::path> files_;
    std::map<Digest, std::string> expected_;
    fs::path archive() const { return tmp_.path() / "archive"; }
    test::RunResult import(const std::vector<std::string>& extra, const std::vector<std::string>& env = {}) {
        std::vector<std::string> args{"--archive", archive().string(), "import"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_mailvault(args, "", env);
    }
};

TEST_F(CoreE2E, ImportVariedThenReimportThenCopyInAnotherFolder) {
    auto r = import({(tmp_.path() / "varied").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("import: " + std::to_string(expected_.size()) + " new"), std::string::npos) << r.err;

    ArchiveCheck c = check_archive(archive());
    EXPECT_EQ(c.docs, expected_.size());
    EXPECT_EQ(c.bad_originals, 0u);
    EXPECT_EQ(c.duplicate_keys, 0u);
    std::set<std::string> first_copies;
    for (const auto& [k, sha] : expected_) first_copies.insert(sha);
    EXPECT_EQ(c.shas, first_copies);  // every original byte-identical to the first copy
    EXPECT_EQ(search_count(archive(), "*"), expected_.size());

    // A second import adds nothing.
    r = import({(tmp_.path() / "varied").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("import: 0 new, " + std::to_string(files_.size()) + " duplicates"), std::string::npos) << r.err;
    EXPECT_EQ(check_archive(archive()).docs, expected_.size());

    // A copy delivered elsewhere (extra Received headers) in another folder: no new document,
    // but found in that folder too.
    std::string original = test::read_file(files_[1234]);
    std::string copy = "Received: from relay.example.net by mx.example.org; Wed, 1 Jan 2025 00:00:00 +0000\n"
                       "X-Spam-Score: 0.1\n" + original;
    test::write_file(tmp_.path() / "other" / "cur" / "copy-1:2,S", copy);
    test::write_file(tmp_.path() / "other" / "new" / ".keep-dir", "");
    fs::remove(tmp_.path() / "other" / "new" / ".keep-dir");
    r = import({(tmp_.path() / "other" / "cur" / "copy-1:2,S").string(), "--mailbox", "bob@example.com", "--folder",
                "Archive/2025"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("0 new, 1 duplicates"), std::string::npos) << r.err;
    EXPECT_EQ(check_archive(archive()).docs, expected_.size());
    EXPECT_EQ(search_count(archive(), "folder:Archive/2025"), 1u);
    EXPECT_EQ(search_count(archive(), "folder:Archive"), 1u);
    EXPECT_EQ(search_count(archive(), "mailbox:bob@example.com"), 1u);
    // The stored original is still the first copy.
    auto archive_r = index::Archive::open(archive(), index::OpenMode::read);
    ASSERT_TRUE(archive_r);
    Xapian::Database db = (*archive_r)->database();
    std::string term = "XSHA" + to_hex(sha256(original));
    ASSERT_NE(db.postlist_begin(term), db.postlist_end(term));
    auto docno = *db.postlist_begin(term);
    auto data = index::DocData::from_json(db.get_document(docno).get_data());
    EXPECT_EQ(data.locations.size(), 2u);
    auto raw = test::run_mailvault({"--archive", archive().string(), "show", std::to_string(docno), "--raw"});
    EXPECT_EQ(raw.exit_code, 0) << raw.err;
    EXPECT_EQ(raw.out, original);
}

// Messages with subjects known to the test: each distinctive word finds exactly its message.
TEST_F(CoreE2E, DistinctiveSubjectWordsFindExactlyTheirMessages) {
    const fs::path md = tmp_.path() / "known";
    for (int i = 0; i < 30; ++i) {
        std::string raw = "Message-ID: <known-" + std::to_string(i) + "@mailvault.test>\n"
                          "Date: Mon, 1 May 2023 10:00:00 +0000\nFrom: Tester <t@example.com>\n"
                          "To: x@example.com\nSubject: quokka" + std::to_string(i) + " report " +
                          (i % 3 == 0 ? "ultramarine" : "plain") + "\n\nBody of message " + std::to_string(i) + "\n";
        test::write_file(md / "cur" / ("k" + std::to_string(i) + ":2,"), raw);
    }
    auto r = import({(tmp_.path() / "varied").string(), md.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (int i = 0; i < 30; ++i) {
        auto out = test::run_mailvault({"--archive", archive().string(), "search", "--json",
                                        "subject:quokka" + std::to_string(i)});
        ASSERT_EQ(out.exit_code, 0) << out.err;
        EXPECT_EQ(std::count(out.out.begin(), out.out.end(), '\n'), 1) << out.out;
        EXPECT_NE(out.out.find("quokka" + std::to_string(i) + " report"), std::string::npos) << out.out;
    }
    EXPECT_EQ(search_count(archive(), "subject:ultramarine"), 10u);
    EXPECT_EQ(search_count(archive(), "ultramarine"), 10u);
}

TEST_F(CoreE2E, SecondWriterIsRefusedWithExit3) {
    auto r = import({(tmp_.path() / "varied" / "cur" / files_[0].filename()).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    int fd = ::open((archive() / "lock").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running import holds it
    r = import({(tmp_.path() / "varied").string()});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
    ::close(fd);
    EXPECT_EQ(check_archive(archive()).docs, 1u);
}

// Killed at exact points (before/after originals are durable, between the shard commits and
// the checkpoint commit) and at arbitrary moments: the next run loses and duplicates nothing.
TEST_F(CoreE2E, KillNineAtSeveralPointsThenResume) {
    const std::vector<std::string> crash_points{"compact-swapped:1", "store:1", "store:700", "commit-store-synced:1",
                                                "commit-shards-done:1", "store:2100", "commit-shards-done:2"};
    for (const auto& point : crash_points) {
        auto r = import({(tmp_.path() / "varied").string()}, {"MV_CRASH_AT=" + point});
        EXPECT_EQ(r.exit_code, 128 + SIGKILL) << point << ": " << r.err;
        ArchiveCheck c = check_archive(archive());
        EXPECT_EQ(c.bad_originals, 0u) << point;
        EXPECT_EQ(c.duplicate_keys, 0u) << point;
    }
    // A kill from outside at whatever moment the run has reached.
    for (int delay_ms : {150, 600}) {
        pid_t pid = fork();
        if (pid == 0) {
            std::string a = archive().string(), v = (tmp_.path() / "varied").string();
            execl(test::mailvault_binary().c_str(), "mailvault", "--quiet", "--archive", a.c_str(), "import", v.c_str(),
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        usleep(delay_ms * 1000);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
    }
    auto r = import({(tmp_.path() / "varied").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ArchiveCheck c = check_archive(archive());
    EXPECT_EQ(c.docs, expected_.size());
    EXPECT_EQ(c.bad_originals, 0u);
    EXPECT_EQ(c.duplicate_keys, 0u);
    std::set<std::string> first_copies;
    for (const auto& [k, sha] : expected_) first_copies.insert(sha);
    EXPECT_EQ(c.shas, first_copies);
    // Docnos were never reused: the highest is at least the count, and every one resolves.
    auto archive_r = index::Archive::open(archive(), index::OpenMode::read);
    ASSERT_TRUE(archive_r);
    EXPECT_GE((*archive_r)->database().get_lastdocid(), expected_.size());
    // Unreferenced records at the store's tail are cut off on the next open. A record can only
    // stay unreferenced when a kill hits while a later message overtook it on the way into the
    // index (space only, never a lost or duplicated message): at most one per kill.
    std::size_t originals = 0;
    ASSERT_TRUE((*archive_r)->store().scan([&](const index::RecordHeader& h, const index::StoredRef&, std::string_view) {
        if (h.type == index::RecordType::original) ++originals;
        return true;
    }));
    EXPECT_GE(originals, expected_.size());
    EXPECT_LE(originals, expected_.size() + crash_points.size() + 2);
}

// The disk fills up mid-import (a file size limit makes writes fail with EFBIG): the run
// says so and exits 1 with what it archived durable; the next run completes it.
TEST_F(CoreE2E, FullDiskThenResume) {
    std::string cmd = "trap '' XFSZ; ulimit -f 3000; exec '" + test::mailvault_binary() + "' --archive '" +
                      archive().string() + "' import '" + (tmp_.path() / "varied").string() + "'";
    auto r = test::run_program({"sh", "-c", cmd});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("File too large"), std::string::npos) << r.err;
    ArchiveCheck partial = check_archive(archive());
    EXPECT_GT(partial.docs, 0u);
    EXPECT_LT(partial.docs, expected_.size());
    EXPECT_EQ(partial.bad_originals, 0u);
    r = import({(tmp_.path() / "varied").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ArchiveCheck c = check_archive(archive());
    EXPECT_EQ(c.docs, expected_.size());
    EXPECT_EQ(c.bad_originals, 0u);
    EXPECT_EQ(c.duplicate_keys, 0u);
}

// `reindex` rebuilds the index from the originals: same docnos, locations and answers.
TEST_F(CoreE2E, ReindexKeepsDocnosLocationsAndCheckpoints) {
    auto r = import({(tmp_.path() / "varied").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = import({files_[7].string(), "--mailbox", "other@example.com", "--folder", "Kept"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto all = [&] {
        return test::run_mailvault({"--archive", archive().string(), "search", "*", "--json", "--sort", "oldest",
                                    "--limit", "100000"}).out;
    };
    const std::string before = all();
    ASSERT_EQ(std::count(before.begin(), before.end(), '\n'), static_cast<long>(expected_.size()));
    auto lastsync = [&] {
        auto a = index::Archive::open(archive(), index::OpenMode::read);
        return (*a)->metadata("lastsync:import");
    };
    const std::string sync_record = lastsync();
    ASSERT_FALSE(sync_record.empty());
    r = test::run_mailvault({"--archive", archive().string(), "reindex"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(all(), before);
    EXPECT_EQ(lastsync(), sync_record);
    EXPECT_EQ(search_count(archive(), "folder:Kept"), 1u);
    ArchiveCheck c = check_archive(archive());
    EXPECT_EQ(c.bad_originals, 0u);
    EXPECT_EQ(c.duplicate_keys, 0u);
    // Dedupe still knows every message, and new docnos continue after the old ones.
    r = import({(tmp_.path() / "varied").string()});
    EXPECT_NE(r.err.find("import: 0 new"), std::string::npos) << r.err;
    test::write_file(tmp_.path() / "new.eml", "Message-ID: <after-reindex@x>\nSubject: fresh\n\nnew\n");
    r = import({(tmp_.path() / "new.eml").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto fresh = test::run_mailvault({"--archive", archive().string(), "search", "--json", "msgid:after-reindex@x"});
    EXPECT_NE(fresh.out.find("\"docno\":" + std::to_string(expected_.size() + 1)), std::string::npos) << fresh.out;
}

// A rebuilt index is compacted like one after a bulk import: `reindex` as the way back from
// damage must not leave an index twice the size (and twice the blocks to read per search).
TEST(CoreLocal, ReindexLeavesACompactIndex) {
    test::TempDir tmp;
    std::string mbox;
    for (int i = 0; i < 1200; ++i)
        mbox += "From sender@example.org Mon Jan  1 00:00:00 2024\nMessage-ID: <compact-" + std::to_string(i) +
                "@example.org>\nFrom: Sender <sender@example.org>\nSubject: note " + std::to_string(i) +
                "\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nBody " + std::to_string(i) + " of a message about " +
                std::to_string(i * 7919 % 1000) + " things and words that repeat in every message.\n\n";
    test::write_file(tmp.path() / "box.mbox", mbox);
    const std::string archive = (tmp.path() / "a").string();
    auto index_bytes = [&] {
        std::uintmax_t n = 0;
        for (const auto& e : fs::recursive_directory_iterator(tmp.path() / "a" / "index"))
            if (e.is_regular_file() && e.path().extension() == ".glass") n += e.file_size();
        return n;
    };
    auto r = test::run_mailvault({"--archive", archive, "import", (tmp.path() / "box.mbox").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto imported = index_bytes();  // compacted after the import (1,200 new messages)
    r = test::run_mailvault({"--archive", archive, "reindex"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("reindex: 1200 messages"), std::string::npos) << r.err;
    const auto rebuilt = index_bytes();
    EXPECT_LE(rebuilt, imported + imported / 5) << "imported " << imported << " bytes, rebuilt " << rebuilt;
    // Compacting it once more gains little: it is compact already.
    std::uintmax_t again = 0;
    for (const auto& gen : fs::directory_iterator(tmp.path() / "a" / "index")) {
        if (!gen.is_directory()) continue;
        for (const auto& shard : fs::directory_iterator(gen.path())) {
            if (!fs::exists(shard.path() / "iamglass") || shard.path().filename() == "meta") continue;
            const fs::path out = tmp.path() / "again" / shard.path().filename();
            fs::create_directories(out.parent_path());
            Xapian::Database(shard.path().string()).compact(out.string(), Xapian::DBCOMPACT_NO_RENUMBER);
            for (const auto& e : fs::directory_iterator(out))
                if (e.path().extension() == ".glass") again += e.file_size();
        }
    }
    std::uintmax_t shards = 0;
    for (const auto& e : fs::recursive_directory_iterator(tmp.path() / "a" / "index"))
        if (e.is_regular_file() && e.path().extension() == ".glass" && e.path().parent_path().filename() != "meta")
            shards += e.file_size();
    EXPECT_GT(again, 0u);
    EXPECT_LE(shards, again + again / 5) << "the rebuilt shards hold " << shards << " bytes, compacted " << again;
    EXPECT_EQ(test::run_mailvault({"--archive", archive, "search", "--count", "things"}).out, "1200\n");
}

TEST(CoreLocal, MboxGzZstAndEmlAreDetectedAndSplit) {
    test::TempDir tmp;
    std::string m1 = "From: a@x\nSubject: one\nMessage-ID: <1@x>\n\nbody one\n>From here\n";
    std::string m2 = "From: b@x\nSubject: two\nMessage-ID: <2@x>\n\nFrom the start of a line\n";
    // mboxrd: body "From " lines are quoted with '>' and unquoted on import.
    std::string mbox = "From a@x Mon Jan  1 00:00:00 2024\n" + std::string("From: a@x\nSubject: one\nMessage-ID: <1@x>\n\nbody one\n>>From here\n") +
                       "\nFrom b@x Mon Jan  1 00:00:00 2024\n" + "From: b@x\nSubject: two\nMessage-ID: <2@x>\n\n>From the start of a line\n" + "\n";
    test::write_file(tmp / "box.mbox", mbox);
    ASSERT_EQ(test::run_program({"sh", "-c", "cd '" + tmp.path().string() + "' && gzip -k box.mbox && zstd -q -k box.mbox"}).exit_code, 0);
    test::write_file(tmp / "single.eml", "From: c@x\nSubject: three\nMessage-ID: <3@x>\n\nbody three\n");
    auto archive = (tmp / "archive").string();
    auto r = test::run_mailvault({"--archive", archive, "import", (tmp / "box.mbox").string(),
                                  (tmp / "box.mbox.gz").string(), (tmp / "box.mbox.zst").string(),
                                  (tmp / "single.eml").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("3 new, 4 duplicates"), std::string::npos) << r.err;
    auto a = index::Archive::open(tmp / "archive", index::OpenMode::read);
    ASSERT_TRUE(a);
    std::set<std::string> originals;
    Xapian::Database db = (*a)->database();
    for (auto it = db.postlist_begin(""); it != db.postlist_end(""); ++it) originals.insert(*(*a)->read_original(*it));
    EXPECT_TRUE(originals.count(m1)) << "mboxrd unquoting of message 1";
    EXPECT_TRUE(originals.count(m2)) << "mboxrd unquoting of message 2";
    EXPECT_EQ(test::run_mailvault({"--archive", archive, "search", "--count", "folder:box"}).out, "2\n");
}

TEST(CoreLocal, MissingPathIsAUsageError) {
    test::TempDir tmp;
    auto r = test::run_mailvault({"--archive", (tmp / "a").string(), "import", (tmp / "nope").string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("nope"), std::string::npos);
}

}  // namespace
}  // namespace mv
