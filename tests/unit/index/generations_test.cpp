#include "index/store/generations.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "support/testutil.hpp"

namespace mv::index {
namespace {
namespace fs = std::filesystem;

// A stand-in for a complete Xapian database: what the settling looks at is its version file.
void make_db(const fs::path& p) {
    fs::create_directories(p);
    test::write_file(p / "iamglass", "v");
}

void make_legacy(const fs::path& index, unsigned shards) {
    make_db(index / "meta");
    for (unsigned i = 0; i < shards; ++i) make_db(index / ("shard-" + std::to_string(i)));
}

std::string current(const fs::path& archive) {
    std::string name;
    std::ifstream(archive / "index" / "CURRENT") >> name;
    return name;
}

TEST(Generations, SwitchIsOneRenameAndRemovesWhatIsNoLongerUsed) {
    test::TempDir dir;
    auto g1 = create_generation(dir.path());
    ASSERT_TRUE(g1);
    make_legacy(*g1, 2);
    ASSERT_TRUE(switch_generation(dir.path(), *g1));
    EXPECT_EQ(current(dir.path()), "gen-000001");
    auto g2 = create_generation(dir.path());
    ASSERT_TRUE(g2);
    EXPECT_EQ(g2->filename(), "gen-000002");
    make_legacy(*g2, 2);
    // Not yet switched: readers and the writer still use generation 1; the writer keeps 2
    // only until it is named (a crash here leaves it a leftover).
    EXPECT_EQ(find_index_dir(dir.path()), *g1);
    ASSERT_TRUE(switch_generation(dir.path(), *g2));
    EXPECT_EQ(find_index_dir(dir.path()), *g2);
    EXPECT_FALSE(fs::exists(*g1));
    EXPECT_FALSE(fs::exists(dir.path() / "index" / "CURRENT.tmp"));
}

TEST(Generations, WriterRemovesLeftoversOfAnUnfinishedBuild) {
    test::TempDir dir;
    auto g1 = create_generation(dir.path());
    make_legacy(*g1, 1);
    ASSERT_TRUE(switch_generation(dir.path(), *g1));
    auto g2 = create_generation(dir.path());  // a reindex or compaction killed before its switch
    make_db(*g2 / "shard-0");
    fs::create_directories(dir.path() / "reindex.tmp" / "index");
    test::write_file(dir.path() / "index" / "CURRENT.tmp", "gen-000002\n");
    auto settled = settle_index_dir(dir.path(), 1);
    ASSERT_TRUE(settled);
    ASSERT_TRUE(*settled);
    EXPECT_EQ(**settled, *g1);
    EXPECT_FALSE(fs::exists(*g2));
    EXPECT_FALSE(fs::exists(dir.path() / "reindex.tmp"));
    EXPECT_FALSE(fs::exists(dir.path() / "index" / "CURRENT.tmp"));
}

TEST(Generations, LegacyReindexCutBetweenRenamesIsFinishedOrRolledBack) {
    for (bool staged_complete : {true, false}) {
        test::TempDir dir;
        make_legacy(dir.path() / "index.old", 2);
        test::write_file(dir.path() / "index.old" / "meta" / "which", "old");
        fs::create_directories(dir.path() / "reindex.tmp" / "index");
        if (staged_complete) {
            make_legacy(dir.path() / "reindex.tmp" / "index", 2);
            test::write_file(dir.path() / "reindex.tmp" / "index" / "meta" / "which", "new");
        }
        // Readers read the old index meanwhile, changing nothing.
        EXPECT_EQ(find_index_dir(dir.path()), dir.path() / "index.old");
        EXPECT_TRUE(fs::exists(dir.path() / "index.old"));
        auto settled = settle_index_dir(dir.path(), 2);
        ASSERT_TRUE(settled);
        ASSERT_TRUE(*settled);
        EXPECT_EQ(**settled, dir.path() / "index");
        EXPECT_EQ(test::read_file(dir.path() / "index" / "meta" / "which"), staged_complete ? "new" : "old");
        EXPECT_FALSE(fs::exists(dir.path() / "reindex.tmp"));
        EXPECT_EQ(fs::exists(dir.path() / "index.old"), false);
    }
}

TEST(Generations, LegacyCompactionCutBetweenRenamesIsReadThenRestored) {
    test::TempDir dir;
    const fs::path index = dir.path() / "index";
    make_legacy(index, 2);
    fs::rename(index / "shard-1", index / "shard-1.old");
    make_db(index / "shard-1.compact");
    EXPECT_EQ(find_index_dir(dir.path()), index);
    EXPECT_EQ(shard_path_for_read(index, 1), index / "shard-1.old");
    auto settled = settle_index_dir(dir.path(), 2);
    ASSERT_TRUE(settled);
    EXPECT_TRUE(fs::exists(index / "shard-1" / "iamglass"));
    EXPECT_FALSE(fs::exists(index / "shard-1.old"));
    EXPECT_FALSE(fs::exists(index / "shard-1.compact"));
}

TEST(Generations, NoIndexIsReportedNeverInvented) {
    test::TempDir dir;
    EXPECT_FALSE(find_index_dir(dir.path()));
    auto settled = settle_index_dir(dir.path(), 2);
    ASSERT_TRUE(settled);
    EXPECT_FALSE(*settled);
    EXPECT_FALSE(fs::exists(dir.path() / "index" / "shard-0"));
    // CURRENT naming a generation that is gone: no index (reindex rebuilds), nothing removed.
    fs::create_directories(dir.path() / "index" / "gen-000003");
    test::write_file(dir.path() / "index" / "CURRENT", "gen-000004\n");
    settled = settle_index_dir(dir.path(), 2);
    ASSERT_TRUE(settled);
    EXPECT_FALSE(*settled);
    EXPECT_TRUE(fs::exists(dir.path() / "index" / "gen-000003"));
}

}  // namespace
}  // namespace mv::index
