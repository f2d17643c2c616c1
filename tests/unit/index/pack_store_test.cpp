#include "index/store/pack_store.hpp"

#include <gtest/gtest.h>

#include "support/testutil.hpp"

namespace mv::index {
namespace {

TEST(PackStore, AppendReadScan) {
    test::TempDir dir;
    std::vector<StoredRef> refs;
    std::vector<std::string> raws{"first message\n", std::string(100000, 'x'), "third\r\n"};
    {
        auto store = PackStore::open(dir.path(), true);
        ASSERT_TRUE(store);
        for (std::size_t i = 0; i < raws.size(); ++i) {
            RecordHeader h;
            h.docno = i + 1;
            h.sha = sha256(raws[i]);
            h.raw_size = raws[i].size();
            auto ref = (*store)->append(h, "{\"i\":" + std::to_string(i) + "}", zstd_compress(raws[i]));
            ASSERT_TRUE(ref);
            refs.push_back(*ref);
        }
        ASSERT_TRUE((*store)->sync());
    }
    auto store = PackStore::open(dir.path(), false);
    ASSERT_TRUE(store);
    for (std::size_t i = 0; i < raws.size(); ++i) {
        auto payload = (*store)->read_payload(refs[i]);
        ASSERT_TRUE(payload);
        auto raw = zstd_decompress(*payload, refs[i].raw_size);
        ASSERT_TRUE(raw);
        EXPECT_EQ(*raw, raws[i]);
        auto decoded = StoredRef::decode(refs[i].encode());
        ASSERT_TRUE(decoded);
        EXPECT_EQ(decoded->offset, refs[i].offset);
    }
    std::vector<std::uint64_t> docnos;
    ASSERT_TRUE((*store)->scan([&](const RecordHeader& h, const StoredRef&, std::string_view meta) {
        docnos.push_back(h.docno);
        EXPECT_EQ(meta.substr(0, 5), "{\"i\":");
        return true;
    }));
    EXPECT_EQ(docnos, (std::vector<std::uint64_t>{1, 2, 3}));

    std::vector<std::uint64_t> from_second;
    ASSERT_TRUE((*store)->scan(
        [&](const RecordHeader& h, const StoredRef& ref, std::string_view) {
            from_second.push_back(h.docno);
            EXPECT_EQ(ref.end, refs[h.docno - 1].end);
            return true;
        },
        {refs[1].segment, refs[1].offset}));
    EXPECT_EQ(from_second, (std::vector<std::uint64_t>{2, 3}));
}

RecordHeader header_for(std::uint64_t docno, const std::string& raw) {
    RecordHeader h;
    h.docno = docno;
    h.sha = sha256(raw);
    h.raw_size = raw.size();
    return h;
}

std::size_t records(const PackStore& store) {
    std::size_t n = 0;
    EXPECT_TRUE(store.scan([&](const RecordHeader&, const StoredRef&, std::string_view) {
        ++n;
        return true;
    }));
    return n;
}

// Whole records past the durable place are never cut, whatever an index knows of them; a
// record torn by a crash (half written) is moved aside into torn/, bytes kept.
TEST(PackStore, RecoverTailKeepsWholeRecordsAndMovesATornOneAside) {
    test::TempDir dir;
    std::vector<StoredRef> refs;
    {
        auto store = PackStore::open(dir.path(), true);
        ASSERT_TRUE(store);
        for (int i = 1; i <= 3; ++i) {
            std::string raw = "message " + std::to_string(i) + "\n";
            auto ref = (*store)->append(header_for(i, raw), "{\"id\":\"" + std::to_string(i) + "\"}", zstd_compress(raw));
            ASSERT_TRUE(ref);
            refs.push_back(*ref);
        }
        RecordHeader loc;
        loc.type = RecordType::location;
        loc.docno = 2;
        auto ref = (*store)->append(loc, "{\"folder\":\"Other\"}", {});
        ASSERT_TRUE(ref);
        refs.push_back(*ref);
    }
    const auto seg = dir.path() / "pack-000001.mvp";
    const std::string whole = test::read_file(seg);
    // Half of a fifth record, as a kill in the middle of its write leaves it.
    std::string fifth;
    {
        test::TempDir other;
        auto s = PackStore::open(other.path(), true);
        std::string raw = "message 5\n";
        ASSERT_TRUE((*s)->append(header_for(5, raw), "{}", zstd_compress(raw)));
        fifth = test::read_file(other.path() / "pack-000001.mvp");
    }
    test::write_file(seg, whole + fifth.substr(0, fifth.size() / 2));

    auto store = PackStore::open(dir.path(), true);
    ASSERT_TRUE(store);
    auto r = (*store)->recover_tail({1, refs[0].end});  // only the first record was committed
    ASSERT_TRUE(r);
    EXPECT_EQ(r->records_checked, 3u);  // messages 2, 3 and the location: verified and kept
    EXPECT_EQ(r->bytes_moved, fifth.size() / 2);
    ASSERT_EQ(r->notes.size(), 1u);
    EXPECT_EQ(test::read_file(seg), whole);
    EXPECT_EQ((*store)->end(), (StorePos{1, whole.size()}));
    EXPECT_EQ(records(**store), 4u);
    const auto torn = dir.path() / "torn" / ("pack-000001.mvp.at-" + std::to_string(whole.size()));
    ASSERT_TRUE(std::filesystem::exists(torn));
    EXPECT_EQ(test::read_file(torn), fifth.substr(0, fifth.size() / 2));

    // Nothing more to do the second time; appends continue at the end.
    auto again = (*store)->recover_tail({1, refs[0].end});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->bytes_moved, 0u);
    ASSERT_TRUE((*store)->append(header_for(6, "six\n"), "{}", zstd_compress("six\n")));
    EXPECT_EQ(records(**store), 5u);
}

// A whole record past the durable place whose payload does not match its SHA-256 (written
// out of order before a power loss) is where the torn tail starts.
TEST(PackStore, RecoverTailMovesAsideFromTheFirstRecordFailingItsChecksum) {
    test::TempDir dir;
    std::vector<StoredRef> refs;
    {
        auto store = PackStore::open(dir.path(), true);
        for (int i = 1; i <= 3; ++i) {
            std::string raw = std::string(2000, static_cast<char>('a' + i)) + "\n";
            auto ref = (*store)->append(header_for(i, raw), "{}", zstd_compress(raw));
            ASSERT_TRUE(ref);
            refs.push_back(*ref);
        }
    }
    const auto seg = dir.path() / "pack-000001.mvp";
    std::string bytes = test::read_file(seg);
    bytes[refs[1].end - 3] ^= 0x40;  // inside record 2's payload
    test::write_file(seg, bytes);
    auto store = PackStore::open(dir.path(), true);
    auto r = (*store)->recover_tail({1, refs[0].end});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->records_checked, 0u);
    EXPECT_EQ(r->bytes_moved, bytes.size() - refs[0].end);
    EXPECT_EQ(std::filesystem::file_size(seg), refs[0].end);
    EXPECT_EQ(records(**store), 1u);
    // Before the durable place nothing is ever touched, damaged or not.
    test::write_file(seg, bytes);
    auto store2 = PackStore::open(dir.path(), true);
    auto r2 = (*store2)->recover_tail({1, refs[2].end});
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->bytes_moved, 0u);
    EXPECT_EQ(std::filesystem::file_size(seg), bytes.size());
}

TEST(PackStore, CorruptPayloadIsReported) {
    test::TempDir dir;
    StoredRef ref;
    {
        auto store = PackStore::open(dir.path(), true);
        ASSERT_TRUE(store);
        RecordHeader h;
        h.docno = 1;
        h.raw_size = 11;
        auto r = (*store)->append(h, "", zstd_compress("hello world"));
        ASSERT_TRUE(r);
        ref = *r;
    }
    auto seg = dir.path() / "pack-000001.mvp";
    std::string bytes = test::read_file(seg);
    bytes[bytes.size() - 3] ^= 0x5a;
    test::write_file(seg, bytes);
    auto store = PackStore::open(dir.path(), false);
    auto payload = (*store)->read_payload(ref);
    ASSERT_TRUE(payload);
    auto raw = zstd_decompress(*payload, ref.raw_size);
    EXPECT_FALSE(raw.has_value() && *raw == "hello world");
}

}  // namespace
}  // namespace mv::index
