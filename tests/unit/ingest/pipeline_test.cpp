#include "ingest/pipeline.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "index/document/builder.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

namespace mv::ingest {
namespace {

using Checkpoints = std::vector<std::pair<std::string, std::string>>;

// Hands out a fixed list of items, like a network source with its checkpoints.
class ListSource final : public Source {
  public:
    explicit ListSource(std::vector<RawMessage> items) : items_(std::move(items)) {}
    std::string name() const override { return "t"; }
    std::optional<RawMessage> next() override {
        if (next_ == items_.size()) return std::nullopt;
        return std::move(items_[next_++]);
    }

  private:
    std::vector<RawMessage> items_;
    std::size_t next_ = 0;
};

RawMessage message(int i, Checkpoints cps = {}) {
    RawMessage m;
    m.bytes = "Message-ID: <p" + std::to_string(i) + "@x>\nSubject: item " + std::to_string(i) + "\n\nbody\n";
    m.where = {"t", "mb", "Inbox", "uid" + std::to_string(i)};
    m.checkpoint = std::move(cps);
    return m;
}

RawMessage checkpoint_only(Checkpoints cps, std::vector<index::Location> removals = {}) {
    RawMessage m;
    m.checkpoint_only = true;
    m.checkpoint = std::move(cps);
    m.removals = std::move(removals);
    return m;
}

struct Imported {
    test::TempDir dir;
    std::unique_ptr<index::Archive> archive;
    ImportSummary summary;
};

void import_items(Imported& r, std::vector<RawMessage> items) {
    auto a = index::Archive::open(r.dir.path(), index::OpenMode::write);
    ASSERT_TRUE(a);
    r.archive = std::move(*a);
    ListSource src(std::move(items));
    PipelineOptions o;
    o.threads = 2;
    o.commit_every = 1;  // commits between the items, too
    auto s = run_pipeline(*r.archive, src, o);
    ASSERT_TRUE(s) << s.error().message;
    r.summary = *s;
}

TEST(Pipeline, CheckpointOnlyItemsCommitInOrderAndAreNotMessages) {
    Imported r;
    std::uint64_t bytes = message(1).bytes.size() + message(2).bytes.size();
    import_items(r, {message(1, {{"cp:t:a", "1"}}), checkpoint_only({{"cp:t:a", "2"}}), message(2), checkpoint_only({}),
            checkpoint_only({{"cp:t:a", "3"}, {"cp:t:b", "end"}})});
    EXPECT_EQ(r.summary.seen, 2u);
    EXPECT_EQ(r.summary.added, 2u);
    EXPECT_EQ(r.summary.duplicates, 0u);
    EXPECT_EQ(r.summary.failed, 0u);
    EXPECT_EQ(r.summary.bytes, bytes);
    EXPECT_EQ(r.archive->document_count(), 2u);
    EXPECT_EQ(r.archive->metadata("cp:t:a"), "3") << "the last item's entries, committed after the end of the stream";
    EXPECT_EQ(r.archive->metadata("cp:t:b"), "end");
    // No docno is spent on an item without a message.
    auto d2 = r.archive->document(2);
    ASSERT_TRUE(d2);
    EXPECT_EQ(index::DocData::from_json(d2->get_data()).subject, "item 2");
}

TEST(Pipeline, RemovalsOnACheckpointOnlyItemMarkTheArchivedMessage) {
    Imported r;
    import_items(r, {message(1), message(2),
            checkpoint_only({{"cp:t:folder", "deltaLink"}},
                            {{"t", "mb", "Inbox", "uid1", "deleted", 1714557600}, {"t", "mb", "Inbox", "uid9", "changed", 1714557600}})});
    EXPECT_EQ(r.summary.seen, 2u);
    EXPECT_EQ(r.archive->metadata("cp:t:folder"), "deltaLink");
    Xapian::Database db = r.archive->database();
    EXPECT_EQ(db.get_termfreq(std::string(schema::k_removed_term)), 1u);
    auto l = index::DocData::from_json(db.get_document(1).get_data()).locations;
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].removed, "deleted");
    EXPECT_EQ(l[0].removed_at, 1714557600);
    EXPECT_EQ(index::DocData::from_json(db.get_document(2).get_data()).locations[0].removed, "");
    // Never archived: kept as a metadata record.
    EXPECT_EQ(r.archive->metadata("cp:t:removed:mb:uid1"), "");
    std::string unknown = r.archive->metadata("cp:t:removed:mb:uid9");
    EXPECT_NE(unknown.find("\"reason\":\"changed\""), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("2024-05-01T10:00:00Z"), std::string::npos) << unknown;
}

// `sync` runs one pipeline per source in one process, and oneTBB keeps its worker threads from
// one to the next. Everything the caller did before a run (here: building the filter chain, the
// closures of its filters) must be ordered before the filters that run on those workers. Under
// TSan this was a reported race on every run after the first (the closure built after the start
// of the run was marked); in every build the counts of each run are checked.
TEST(Pipeline, ManyRunsInOneProcessReuseTheWorkerThreads) {
    test::TempDir dir;
    auto a = index::Archive::open(dir.path(), index::OpenMode::write);
    ASSERT_TRUE(a);
    for (int run = 0; run < 12; ++run) {
        std::vector<RawMessage> items;
        for (int i = 0; i < 24; ++i) items.push_back(message(run * 100 + i, {{"cp:t:run", std::to_string(run)}}));
        ListSource src(std::move(items));
        PipelineOptions o;
        o.threads = 2;
        o.commit_every = 1;
        auto s = run_pipeline(**a, src, o);
        ASSERT_TRUE(s) << s.error().message;
        EXPECT_EQ(s->seen, 24u) << "run " << run;
        EXPECT_EQ(s->added, 24u) << "run " << run;
        EXPECT_EQ(s->failed, 0u) << "run " << run;
        EXPECT_TRUE(s->errors.empty()) << "run " << run << ": " << s->errors.front();
        EXPECT_EQ((*a)->metadata("cp:t:run"), std::to_string(run));
    }
    EXPECT_EQ((*a)->document_count(), 12u * 24u);
}

// A network source knows its total only after listing the server: the progress line gets the
// total as it becomes known, not the 0 of the start.
class ListingSource final : public Source {
  public:
    std::string name() const override { return "t"; }
    std::optional<RawMessage> next() override {
        if (next_ == 5) return std::nullopt;
        expected_ = 5;  // "listed" when the first message is fetched
        return message(static_cast<int>(next_++));
    }
    std::uint64_t expected_total() const override { return expected_.load(); }

  private:
    std::atomic<std::uint64_t> expected_{0};
    std::size_t next_ = 0;
};

TEST(Pipeline, ProgressGetsTheTotalOnceTheSourceKnowsIt) {
    test::TempDir dir;
    auto a = index::Archive::open(dir.path(), index::OpenMode::write);
    ASSERT_TRUE(a);
    ListingSource src;
    std::vector<std::uint64_t> totals;
    auto s = run_pipeline(**a, src, PipelineOptions{},
                          [&](const ImportSummary&, ExpectedTotal total, bool) {
                              EXPECT_FALSE(total.estimate);
                              totals.push_back(total.count);
                          });
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_FALSE(totals.empty());
    EXPECT_EQ(totals.back(), 5u);
}

}  // namespace
}  // namespace mv::ingest
