// Issue 13: a damaged archive. Bytes corrupted in the middle of a pack segment (originals) or of
// an index shard: verify names the docnos, search goes on over the rest and says it is
// incomplete, show says the original is damaged (exit 1), reindex rebuilds what it can and
// lists what it cannot (exit 1).
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "index/archive.hpp"
#include "index/schema.hpp"
#include "index/store/generations.hpp"
#include "support/testutil.hpp"

namespace mv::test {
namespace {

namespace fs = std::filesystem;

class DamageTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto r = mv({"import", (data_dir() / "mail" / "sample").string()});
        ASSERT_NE(r.exit_code, 2) << r.err;
        total = count("*");
        ASSERT_GT(total, 10) << r.err;
    }
    RunResult mv(const std::vector<std::string>& args) {
        std::vector<std::string> a{"--archive", archive().string()};
        a.insert(a.end(), args.begin(), args.end());
        return run_mailvault(a);
    }
    fs::path archive() const { return tmp.path() / "archive"; }
    long count(const std::string& q) {
        auto r = mv({"search", q, "--count"});
        return r.exit_code == 0 ? std::atol(r.out.c_str()) : -1;
    }
    std::set<std::uint64_t> docnos(const std::string& q, int* exit_code = nullptr, std::string* err = nullptr) {
        auto r = mv({"search", q, "--json", "--limit", "0"});
        if (exit_code) *exit_code = r.exit_code;
        if (err) *err = r.err;
        std::set<std::uint64_t> out;
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) {
            auto p = line.find("\"docno\":");
            if (p != std::string::npos) out.insert(std::strtoull(line.c_str() + p + 8, nullptr, 10));
        }
        return out;
    }
    // Overwrites `n` bytes at `offset` of `file` with 0x5a.
    static void smash(const fs::path& file, std::uint64_t offset, std::uint64_t n) {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(offset));
        f << std::string(n, '\x5a');
    }
    // Where the original of `docno` is: its record's offset, and its payload's offset and size.
    struct Where {
        fs::path segment;
        std::uint64_t record = 0, payload = 0, payload_size = 0;
    };
    Where where_is(std::uint64_t docno) {
        Where w;
        auto a = index::Archive::open(archive(), index::OpenMode::read);
        if (!a) return w;
        auto doc = (*a)->document(docno);
        if (!doc) return w;
        auto ref = index::StoredRef::decode(doc->get_value(schema::k_slot_location));
        if (!ref) return w;
        (void)(*a)->store().scan([&](const index::RecordHeader& h, const index::StoredRef& r, std::string_view) {
            if (r.segment != ref->segment || r.offset != ref->offset) return true;
            w.segment = archive() / "originals" / (*a)->store().segment_name(r.segment);
            w.record = r.offset;
            w.payload = r.offset + index::k_record_header_size + h.meta_size;
            w.payload_size = h.payload_size;
            return false;
        });
        return w;
    }
    TempDir tmp;
    long total = 0;
};

TEST_F(DamageTest, CorruptOriginalIsNamedByVerifyShowAndReindexWhileSearchGoesOn) {
    const std::uint64_t victim = 7;
    Where w = where_is(victim);
    ASSERT_GT(w.payload_size, 40u);
    smash(w.segment, w.payload + w.payload_size / 2 - 8, 16);  // the middle of its zstd frame

    auto v = mv({"verify"});
    EXPECT_EQ(v.exit_code, 1) << v.err;
    // Either the zstd frame no longer decodes, or it decodes to other bytes.
    EXPECT_TRUE(v.out.rfind("damaged 7: original damaged", 0) == 0 || v.out.rfind("damaged 7: original altered", 0) == 0) << v.out;
    EXPECT_EQ(std::count(v.out.begin(), v.out.end(), '\n'), 1) << v.out;

    auto show = mv({"show", "7"});
    EXPECT_EQ(show.exit_code, 1) << show.out;
    EXPECT_NE(show.err.find("the original of message 7 is damaged"), std::string::npos) << show.err;
    auto raw = mv({"show", "7", "--raw"});
    EXPECT_EQ(raw.exit_code, 1);
    EXPECT_TRUE(raw.out.empty());
    EXPECT_NE(raw.err.find("the original of message 7 is damaged"), std::string::npos) << raw.err;
    EXPECT_EQ(mv({"show", "8"}).exit_code, 0);
    EXPECT_EQ(count("*"), total);  // the index is intact

    auto re = mv({"reindex"});
    EXPECT_EQ(re.exit_code, 1) << re.err;
    EXPECT_NE(re.out.find("not rebuilt 7: original damaged (pack-000001.mvp at offset " + std::to_string(w.record)),
              std::string::npos) << re.out;
    EXPECT_EQ(std::count(re.out.begin(), re.out.end(), '\n'), 1) << re.out;
    EXPECT_EQ(count("*"), total - 1);
    EXPECT_EQ(docnos("*").count(7), 0u);
    v = mv({"verify"});
    EXPECT_EQ(v.exit_code, 1);
    EXPECT_EQ(v.out.rfind("damaged 7: original damaged", 0), 0u) << v.out;
    EXPECT_NE(v.out.find("not in the index since reindex"), std::string::npos) << v.out;
}

TEST_F(DamageTest, CorruptRecordHeaderLosesOnlyThatRecordOnReindex) {
    const std::uint64_t victim = 12;
    Where w = where_is(victim);
    ASSERT_FALSE(w.segment.empty());
    smash(w.segment, w.record, 8);  // its magic and type: the walk must find the next record

    auto v = mv({"verify"});
    EXPECT_EQ(v.exit_code, 1);
    EXPECT_EQ(v.out.rfind("damaged 12: original missing or unreadable: bad record header", 0), 0u) << v.out;

    auto re = mv({"reindex"});
    EXPECT_EQ(re.exit_code, 1) << re.err;
    EXPECT_NE(re.out.find("unreadable: pack-000001.mvp bytes " + std::to_string(w.record) + ".."), std::string::npos) << re.out;
    EXPECT_NE(re.out.find("not rebuilt 12: no intact record of its original"), std::string::npos) << re.out;
    EXPECT_EQ(count("*"), total - 1);
    auto after = docnos("*");
    EXPECT_EQ(after.count(12), 0u);
    EXPECT_EQ(after.count(11), 1u);
    EXPECT_EQ(after.count(13), 1u);
}

TEST_F(DamageTest, CorruptShardIsSkippedBySearchNamedByVerifyAndRebuiltByReindex) {
    const auto before = docnos("*");
    // A query that reads postings of many documents in both shards.
    const std::string q = "from:*";
    const auto matches = docnos(q);
    ASSERT_GT(matches.size(), 10u);
    auto index_dir = index::find_index_dir(archive());
    ASSERT_TRUE(index_dir);
    const fs::path postlist = index::shard_path_for_read(*index_dir, 1) / "postlist.glass";
    const auto size = fs::file_size(postlist);
    smash(postlist, size / 4, size / 2);

    int code = -1;
    std::string err;
    auto hits = docnos(q, &code, &err);
    EXPECT_EQ(code, 1) << err;
    EXPECT_NE(err.find("index shard-1 is damaged"), std::string::npos) << err;
    EXPECT_NE(err.find("results are incomplete"), std::string::npos) << err;
    std::set<std::uint64_t> odd;  // shard-0 holds docnos 1, 3, 5, ...
    for (auto d : matches)
        if (d % 2 == 1) odd.insert(d);
    EXPECT_EQ(hits, odd);

    auto v = mv({"verify"});
    EXPECT_EQ(v.exit_code, 1) << v.err;
    std::string even;
    for (auto d : before)
        if (d % 2 == 0) even += " " + std::to_string(d);
    EXPECT_NE(v.out.find("damaged index shard-1: "), std::string::npos) << v.out;
    EXPECT_NE(v.out.find("not searchable until `mailvault reindex`:" + even + "\n"), std::string::npos) << v.out;

    auto re = mv({"reindex"});
    EXPECT_EQ(re.exit_code, 0) << re.err << re.out;
    EXPECT_EQ(docnos(q), matches);
    EXPECT_EQ(mv({"verify"}).exit_code, 0);
}

}  // namespace
}  // namespace mv::test
