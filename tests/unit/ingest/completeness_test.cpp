// ingest/completeness: the per-folder record from what a source listed and what the pipeline did.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ingest/completeness.hpp"

namespace mv::ingest {
namespace {

index::Location at(const std::string& folder, const std::string& id) { return {"src", "alice", folder, id}; }

TEST(Completeness, CountsListedArchivedFailedPendingAndGonePerFolder) {
    FolderTallies tallies;
    tallies.listed("alice", "INBOX", 10, 6);  // 4 at or below the checkpoint, 6 to fetch
    tallies.gone("alice", "INBOX", 1);        // expunged before the fetch
    tallies.listed("alice", "Sent", 3, 3);
    tallies.failed("alice", "Sent", "7", "connection reset");
    tallies.selected("alice", "Later");       // never reached (deadline)
    CompletenessTally c;
    c.on_message(at("INBOX", "5"), MessageFate::added, {});
    c.on_message(at("INBOX", "6"), MessageFate::duplicate, {});
    c.on_message(at("INBOX", "8"), MessageFate::rejected, "not mail: empty file");
    c.on_message(at("Sent", "5"), MessageFate::added, {});
    c.on_message(at("Sent", "6"), MessageFate::added, {});
    auto records = c.records(tallies.snapshot());
    ASSERT_EQ(records.size(), 3u);
    // Sorted by (mailbox, folder): INBOX, Later, Sent.
    const FolderRecord& inbox = records[0];
    EXPECT_EQ(inbox.folder, "INBOX");
    EXPECT_EQ(inbox.on_server, 10u);
    EXPECT_EQ(inbox.archived, 6u);  // 4 earlier + 2 now
    EXPECT_EQ(inbox.added, 1u);
    EXPECT_EQ(inbox.failed, 1u);
    EXPECT_EQ(inbox.gone, 1u);
    EXPECT_EQ(inbox.pending, 2u);  // 6 to fetch - 2 archived - 1 failed - 1 gone
    EXPECT_FALSE(inbox.complete());
    ASSERT_EQ(inbox.failures.size(), 1u);
    EXPECT_EQ(inbox.failures[0].first, "8");

    const FolderRecord& later = records[1];
    EXPECT_FALSE(later.listed);
    EXPECT_FALSE(later.complete());

    const FolderRecord& sent = records[2];
    EXPECT_EQ(sent.archived, 2u);
    EXPECT_EQ(sent.failed, 1u);
    EXPECT_EQ(sent.pending, 0u);

    auto lines = skipped_lines(records);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "alice/INBOX: 1 failed (8: not mail: empty file), 2 still to fetch");
    EXPECT_EQ(lines[1], "alice/Later: not listed (not reached)");
    EXPECT_EQ(lines[2], "alice/Sent: 1 failed (7: connection reset)");

    auto j = nlohmann::json::parse(records_json(records));
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[0]["listed"], 10);
    EXPECT_TRUE(j[1]["listed"].is_null());
    EXPECT_EQ(j[2]["failures"][0]["id"], "7");
    EXPECT_EQ(j[2]["failures"][0]["error"], "connection reset");
}

TEST(Completeness, EverythingArchivedIsCompleteAndSkipsNothing) {
    FolderTallies tallies;
    tallies.listed("bob", "INBOX", 2, 2);
    CompletenessTally c;
    c.on_message({"src", "bob", "INBOX", "a"}, MessageFate::added, {});
    c.on_message({"src", "bob", "INBOX", "b"}, MessageFate::duplicate, {});
    auto records = c.records(tallies.snapshot());
    ASSERT_EQ(records.size(), 1u);
    EXPECT_TRUE(records[0].complete());
    EXPECT_EQ(records[0].archived, 2u);
    EXPECT_TRUE(skipped_lines(records).empty());
}

TEST(Completeness, AWholeFolderFailureBeforeTheListCountsAsOneFailure) {
    FolderTallies tallies;
    tallies.selected("bob", "Archive");
    tallies.failed("bob", "Archive", "", "SELECT failed: NO Mailbox doesn't exist");
    auto records = CompletenessTally{}.records(tallies.snapshot());
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].failed, 1u);
    EXPECT_EQ(skipped_lines(records)[0], "bob/Archive: 1 failed (the folder: SELECT failed: NO Mailbox doesn't exist)");
}

}  // namespace
}  // namespace mv::ingest
