#include "index/store/pack_store.hpp"

#include <gtest/gtest.h>

#include "support/testutil.hpp"

namespace mv::index {
namespace {

TEST(PackStore, AppendReadScanTruncate) {
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

    // A crashed run's tail is cut back to the committed end.
    auto writable = PackStore::open(dir.path(), true);
    ASSERT_TRUE(writable);
    ASSERT_TRUE((*writable)->truncate_to(refs[1].segment, refs[1].offset));
    std::size_t count = 0;
    ASSERT_TRUE((*writable)->scan([&](const RecordHeader&, const StoredRef&, std::string_view) {
        ++count;
        return true;
    }));
    EXPECT_EQ(count, 1u);
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
