#pragma once
// Builds an archive from data/mail/query/*.eml through index::Archive + DocumentBuilder,
// exactly as the import pipeline does: qNN.eml becomes docno NN (see the fixture README).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "index/archive.hpp"
#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"
#include "index/store/pack_store.hpp"
#include "support/testutil.hpp"

namespace mv::test {

// Every document `q` matches in `db`, as docids.
inline std::set<std::uint64_t> matching_ids(const Xapian::Database& db, const Xapian::Query& q) {
    Xapian::Enquire e(db);
    e.set_query(q);
    std::set<std::uint64_t> out;
    auto m = e.get_mset(0, db.get_doccount());
    for (auto it = m.begin(); it != m.end(); ++it) out.insert(*it);
    return out;
}

inline std::filesystem::path query_fixture_dir() { return data_dir() / "mail" / "query"; }

inline std::vector<std::filesystem::path> query_fixture_files() {
    std::vector<std::filesystem::path> v;
    for (const auto& e : std::filesystem::directory_iterator(query_fixture_dir()))
        if (e.path().extension() == ".eml") v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
}

inline index::Location fixture_location(int n) {
    if (n <= 8) return {"import", "alice@example.com", "Inbox", "q" + std::to_string(n)};
    return {"imap1", "bob@example.org", "Archive/2023", "q" + std::to_string(n)};
}

struct FixtureOptions {
    std::string stemmer = "english";
    int without_original = 0;  // this docno is indexed with no store location
};

// Returns false (with a gtest failure) if anything could not be archived.
inline bool build_fixture_archive(const std::filesystem::path& dir, const FixtureOptions& o = {}) {
    index::init_mime();
    index::ArchiveOptions ao;
    ao.stemmer = o.stemmer;
    auto a = index::Archive::open(dir, index::OpenMode::write, ao);
    if (!a) {
        ADD_FAILURE() << a.error().message;
        return false;
    }
    index::Archive& archive = **a;
    index::DocumentBuilder builder(o.stemmer);
    int n = 0;
    for (const auto& file : query_fixture_files()) {
        ++n;
        std::string raw = read_file(file);
        auto where = fixture_location(n);
        Digest sha = sha256(raw);
        Digest key = index::dedupe_key(raw);
        auto parsed = index::parse_message(raw, index::ParseLimits{}, 0);
        if (!parsed) {
            ADD_FAILURE() << file << ": " << parsed.error().message;
            return false;
        }
        std::uint64_t docno = archive.allocate_docno(key);
        EXPECT_EQ(docno, static_cast<std::uint64_t>(n));
        Xapian::Document doc = builder.build(*parsed, where, sha, key, raw.size());
        if (n != o.without_original) {
            std::string meta = R"({"source":")" + where.source + R"(","mailbox":")" + where.mailbox +
                               R"(","folder":")" + where.folder + R"(","id":")" + where.server_id + R"("})";
            auto ref = archive.store_original(docno, sha, raw.size(), index::zstd_compress(raw), meta);
            if (!ref) {
                ADD_FAILURE() << ref.error().message;
                return false;
            }
            doc.add_value(schema::k_slot_location, ref->encode());
        }
        if (auto r = archive.add_document(docno, std::move(doc)); !r) {
            ADD_FAILURE() << r.error().message;
            return false;
        }
    }
    if (auto r = archive.commit(); !r) {
        ADD_FAILURE() << r.error().message;
        return false;
    }
    // q01 is seen a second time elsewhere (deduplicated into docno 1).
    if (auto r = archive.add_location(1, {"imap1", "bob@example.org", "Sent Items", "s1"}); !r) {
        ADD_FAILURE() << r.error().message;
        return false;
    }
    archive.set_metadata("lastsync:imap1",
                         R"({"time":1700000000,"result":"partial","added":8,"errors":["folder Junk: timeout"]})");
    if (auto r = archive.commit(); !r) {
        ADD_FAILURE() << r.error().message;
        return false;
    }
    return true;
}

// A test suite sharing one fixture archive, built once (read only: tests must not write to it).
class FixtureArchiveTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        ASSERT_TRUE(build_fixture_archive(dir_->path() / "arc"));
        auto a = index::Archive::open(dir_->path() / "arc", index::OpenMode::read);
        ASSERT_TRUE(a) << a.error().message;
        archive_ = a->release();
    }
    static void TearDownTestSuite() {
        delete archive_;
        archive_ = nullptr;
        delete dir_;
        dir_ = nullptr;
    }
    static inline TempDir* dir_ = nullptr;
    static inline index::Archive* archive_ = nullptr;
};

}  // namespace mv::test
