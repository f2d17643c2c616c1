#include "index/archive.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"
#include "support/testutil.hpp"

namespace mv::index {
namespace {

std::string message(int i) {
    return "Message-ID: <m" + std::to_string(i) + "@x>\nSubject: note " + std::to_string(i) + "\n\nbody " +
           std::to_string(i) + "\n";
}

// Adds message i as a new document through the same calls the pipeline makes.
std::uint64_t add(Archive& a, int i, const Location& where) {
    std::string raw = message(i);
    Digest key = dedupe_key(raw), sha = sha256(raw);
    EXPECT_FALSE(a.find_duplicate(key));
    std::uint64_t docno = a.allocate_docno(key);
    auto parsed = parse_message(raw, ParseLimits{}, 0);
    DocumentBuilder b("english");
    Xapian::Document doc = b.build(*parsed, where, sha, key, raw.size());
    auto ref = a.store_original(docno, sha, raw.size(), zstd_compress(raw), "{}");
    EXPECT_TRUE(ref);
    doc.add_value(schema::k_slot_location, ref->encode());
    EXPECT_TRUE(a.add_document(docno, std::move(doc)));
    return docno;
}

TEST(Archive, DocnosAreCombinedDocidsAcrossShards) {
    test::TempDir dir;
    std::vector<std::uint64_t> docnos;
    {
        auto a = Archive::open(dir.path(), OpenMode::write, ArchiveOptions{"english", 2});
        ASSERT_TRUE(a);
        for (int i = 1; i <= 7; ++i) docnos.push_back(add(**a, i, {"t", "mb", "Inbox", ""}));
        (*a)->set_metadata("cp:t:x", "42");
        ASSERT_TRUE((*a)->commit());
    }
    EXPECT_EQ(docnos, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7}));
    auto a = Archive::open(dir.path(), OpenMode::read);
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)->shard_count(), 2u);
    EXPECT_EQ((*a)->document_count(), 7u);
    EXPECT_EQ((*a)->metadata("cp:t:x"), "42");
    for (std::uint64_t d : docnos) {
        auto raw = (*a)->read_original(d);
        ASSERT_TRUE(raw) << d;
        EXPECT_EQ(*raw, message(static_cast<int>(d)));
    }
}

TEST(Archive, DedupeSeesPendingAndCommittedAndLocationsMerge) {
    test::TempDir dir;
    auto a = Archive::open(dir.path(), OpenMode::write);
    ASSERT_TRUE(a);
    Archive& ar = **a;
    std::uint64_t d1 = add(ar, 1, {"t", "alice", "Inbox", ""});
    EXPECT_EQ(ar.find_duplicate(dedupe_key(message(1))), d1);  // pending
    ASSERT_TRUE(ar.commit());
    EXPECT_EQ(ar.find_duplicate(dedupe_key(message(1))), d1);  // committed
    // A location for a docno whose document is still in flight is kept until it arrives.
    std::string raw = message(2);
    Digest key = dedupe_key(raw);
    std::uint64_t d2 = ar.allocate_docno(key);
    ASSERT_TRUE(ar.add_location(d2, {"t", "bob", "Later", ""}));
    auto parsed = parse_message(raw, ParseLimits{}, 0);
    DocumentBuilder b("none");
    ASSERT_TRUE(ar.add_document(d2, b.build(*parsed, {"t", "alice", "Inbox", ""}, sha256(raw), key, raw.size())));
    ASSERT_TRUE(ar.add_location(d1, {"t", "carol", "Archive/2023", ""}));
    ASSERT_TRUE(ar.add_location(d1, {"t", "carol", "Archive/2023", ""}));  // idempotent
    ASSERT_TRUE(ar.commit());
    Xapian::Database db = ar.database();
    EXPECT_EQ(DocData::from_json(db.get_document(d2).get_data()).locations.size(), 2u);
    EXPECT_EQ(DocData::from_json(db.get_document(d1).get_data()).locations.size(), 2u);
    EXPECT_EQ(db.get_termfreq("XFDarchive/2023"), 1u);
    EXPECT_EQ(db.get_termfreq("XFDarchive"), 1u);
    EXPECT_EQ(db.get_termfreq("XFDlater"), 1u);
}

std::vector<Location> locations_of(const Xapian::Database& db, std::uint64_t docno) {
    return DocData::from_json(db.get_document(static_cast<Xapian::docid>(docno)).get_data()).locations;
}

TEST(Archive, RemovalMarksTheLocationOfItsDocumentOrFallsBackToMetadata) {
    test::TempDir dir;
    auto a = Archive::open(dir.path(), OpenMode::write, ArchiveOptions{"english", 2});
    ASSERT_TRUE(a);
    Archive& ar = **a;
    std::uint64_t d1 = add(ar, 1, {"t", "alice", "Inbox", "11"});
    std::uint64_t d2 = add(ar, 2, {"t", "alice", "Inbox", "12"});
    ASSERT_TRUE(ar.commit());
    ASSERT_TRUE(ar.add_location(d1, {"t", "alice", "Archive", "21"}));
    std::uint64_t d3 = add(ar, 3, {"t", "bob", "Inbox", "11"});  // not committed yet: found all the same
    ASSERT_TRUE(ar.record_removal({"t", "alice", "Inbox", "11", "deleted", 1000}, {"cp:t:removed:alice:11", "x"}));
    ASSERT_TRUE(ar.record_removal({"t", "bob", "", "11", "changed", 2000}, {"cp:t:removed:bob:11", "x"}));  // any folder
    ASSERT_TRUE(ar.record_removal({"t", "alice", "Inbox", "99", "deleted", 3000}, {"cp:t:removed:alice:99", "never archived"}));
    ASSERT_TRUE(ar.record_removal({"t", "alice", "Sent", "12", "deleted", 3000}, {"cp:t:removed:alice:12", "other folder"}));
    ASSERT_TRUE(ar.commit());

    Xapian::Database db = ar.database();
    const std::string id_term = location_id_term({"t", "alice", "", "11"});
    ASSERT_EQ(db.get_termfreq(id_term), 1u);
    EXPECT_EQ(*db.postlist_begin(id_term), d1);
    auto l1 = locations_of(db, d1);
    ASSERT_EQ(l1.size(), 2u);
    EXPECT_EQ(l1[0].removed, "deleted");
    EXPECT_EQ(l1[0].removed_at, 1000);
    EXPECT_EQ(l1[1].folder, "Archive");
    EXPECT_EQ(l1[1].removed, "");
    EXPECT_EQ(locations_of(db, d3)[0].removed, "changed");
    EXPECT_EQ(locations_of(db, d2)[0].removed, "");
    EXPECT_EQ(db.get_termfreq(std::string(schema::k_removed_term)), 2u);
    EXPECT_EQ(ar.metadata("cp:t:removed:alice:99"), "never archived");
    EXPECT_EQ(ar.metadata("cp:t:removed:alice:12"), "other folder");
    EXPECT_EQ(ar.metadata("cp:t:removed:alice:11"), "");
    EXPECT_EQ(ar.metadata("cp:t:removed:bob:11"), "");

    // Seen there again: the mark goes. A removal recorded twice keeps the first and needs no fallback.
    ASSERT_TRUE(ar.add_location(d1, {"t", "alice", "Inbox", "11"}));
    ASSERT_TRUE(ar.record_removal({"t", "bob", "Inbox", "11", "deleted", 5000}, {"cp:t:removed:bob:11", "y"}));
    ASSERT_TRUE(ar.commit());
    db = ar.database();
    EXPECT_EQ(locations_of(db, d1)[0].removed, "");
    EXPECT_EQ(locations_of(db, d3)[0].removed, "changed");
    EXPECT_EQ(locations_of(db, d3)[0].removed_at, 2000);
    EXPECT_EQ(db.get_termfreq(std::string(schema::k_removed_term)), 1u);
    EXPECT_EQ(ar.metadata("cp:t:removed:bob:11"), "");
}

TEST(Archive, LocationJsonWithoutRemovalStaysReadable) {
    DocData old = DocData::from_json(R"({"locations":[{"source":"s","mailbox":"m","folder":"f","id":"7"}]})");
    ASSERT_EQ(old.locations.size(), 1u);
    EXPECT_EQ(old.locations[0], (Location{"s", "m", "f", "7"}));
    old.locations[0].removed = "deleted";
    old.locations[0].removed_at = 1714557600;
    EXPECT_EQ(DocData::from_json(old.to_json()).locations, old.locations);
}

// Document data is written by DocData::to_json (nlohmann) and read by from_json (simdjson):
// every field comes back, text with escapes and non-ASCII included; keys it does not know are
// skipped; data that is not a JSON object reads as empty instead of throwing.
TEST(Archive, DocDataReadsBackEveryFieldItWrote) {
    DocData d;
    d.message_id = "a\"b\\c@example.org";
    d.references = {"r1@x", "r2@y"};
    d.date = -86400;  // before 1970
    d.from = "Jürgen \"JJ\" Müller <j@example.de>";
    d.to = {"a@x", "b\tc@y"};
    d.cc = {"文字 <c@z>"};
    d.subject = "Re: line\nbreak \u0001 and 😀";
    d.size = 18446744073709551615ull;
    d.sha256 = std::string(64, 'f');
    d.attachments = {{"r\u00e9sum\u00e9.pdf", "application/pdf", 12345, extract::Status::failed, "damaged xref"},
                     {"", "text/plain", 0, extract::Status::none, ""}};
    Location l1{"imap1", "bob@example.org", "Archive/2023", "4711"};
    l1.flags = {"\\Seen", "$Forwarded"};
    Location l2{"graph", "alice", "Inbox", "AAMk=", "deleted", 1714557600};
    d.locations = {l1, l2};
    d.broken = true;
    const DocData r = DocData::from_json(d.to_json());
    EXPECT_EQ(r.message_id, d.message_id);
    EXPECT_EQ(r.references, d.references);
    EXPECT_EQ(r.date, d.date);
    EXPECT_EQ(r.from, d.from);
    EXPECT_EQ(r.to, d.to);
    EXPECT_EQ(r.cc, d.cc);
    EXPECT_EQ(r.subject, d.subject);
    EXPECT_EQ(r.size, d.size);
    EXPECT_EQ(r.sha256, d.sha256);
    ASSERT_EQ(r.attachments.size(), 2u);
    EXPECT_EQ(r.attachments[0].filename, d.attachments[0].filename);
    EXPECT_EQ(r.attachments[0].content_type, "application/pdf");
    EXPECT_EQ(r.attachments[0].size, 12345u);
    EXPECT_EQ(r.attachments[0].status, extract::Status::failed);
    EXPECT_EQ(r.attachments[0].status_reason, "damaged xref");
    EXPECT_EQ(r.attachments[1].status, extract::Status::none);
    EXPECT_EQ(r.locations, d.locations);
    EXPECT_TRUE(r.broken);

    const DocData extra = DocData::from_json(R"({"subject":"s","later":{"x":[1,{"y":null}]},"size":7,"new":true})");
    EXPECT_EQ(extra.subject, "s");
    EXPECT_EQ(extra.size, 7u);
    for (const char* bad : {"", "[]", "{\"subject\":", "{\"subject\":5}", "not json", "{\"to\":\"x\"}"}) {
        const DocData e = DocData::from_json(bad);
        EXPECT_TRUE(e.subject.empty() && e.to.empty() && e.locations.empty()) << bad;
    }
}

TEST(Archive, ReadModeOnMissingArchiveIsNotFound) {
    test::TempDir dir;
    auto a = Archive::open(dir.path() / "none", OpenMode::read);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, Error::Kind::not_found);
}

// An original stored by a run that stopped before its commit is mail: the next open indexes
// it under its docno (it is never cut off), and new docnos continue after it.
TEST(Archive, UncommittedOriginalsAreIndexedOnTheNextOpen) {
    test::TempDir dir;
    std::uint64_t size_before = 0;
    {
        auto a = Archive::open(dir.path(), OpenMode::write);
        ASSERT_TRUE(a);
        add(**a, 1, {"t", "m", "f", ""});
        ASSERT_TRUE((*a)->commit());
        add(**a, 2, {"t", "m", "f", ""});  // stored, never committed
        size_before = (*a)->store().total_bytes();
    }
    auto a = Archive::open(dir.path(), OpenMode::write);
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)->store().total_bytes(), size_before);
    EXPECT_EQ((*a)->document_count(), 2u);
    auto raw = (*a)->read_original(2);
    ASSERT_TRUE(raw);
    EXPECT_EQ(*raw, message(2));
    ASSERT_EQ((*a)->recovery_notes().size(), 1u);
    EXPECT_EQ(add(**a, 3, {"t", "m", "f", ""}), 3u);  // docnos are never reused
    ASSERT_TRUE((*a)->commit());
    EXPECT_EQ((*a)->document_count(), 3u);
    std::string two = message(2);
    EXPECT_EQ((*a)->find_duplicate(dedupe_key(two)), std::optional<std::uint64_t>(2));
}

// The originals are the archive of record: without an index they are not "unreferenced".
TEST(Archive, ArchiveWithoutItsIndexIsRefusedNeverRestartedEmpty) {
    test::TempDir dir;
    {
        auto a = Archive::open(dir.path(), OpenMode::write);
        ASSERT_TRUE(a);
        add(**a, 1, {"t", "m", "f", ""});
        ASSERT_TRUE((*a)->commit());
    }
    const auto pack = dir.path() / "originals" / "pack-000001.mvp";
    const auto size = std::filesystem::file_size(pack);
    std::filesystem::remove_all(dir.path() / "index");
    for (OpenMode mode : {OpenMode::write, OpenMode::read}) {
        auto a = Archive::open(dir.path(), mode);
        ASSERT_FALSE(a);
        EXPECT_EQ(a.error().kind, Error::Kind::not_found);
        EXPECT_NE(a.error().message.find("reindex"), std::string::npos) << a.error().message;
    }
    EXPECT_EQ(std::filesystem::file_size(pack), size);
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "index"));
}

// Compaction builds a new generation and switches to it: same documents and metadata.
TEST(Archive, CompactSwitchesToANewGenerationKeepingEverything) {
    test::TempDir dir;
    auto a = Archive::open(dir.path(), OpenMode::write);
    ASSERT_TRUE(a);
    for (int i = 1; i <= 7; ++i) add(**a, i, {"t", "mb", "Inbox", ""});
    (*a)->set_metadata("cp:t:x", "42");
    ASSERT_TRUE((*a)->commit());
    auto gen = [&] {
        std::string name;
        std::ifstream(dir.path() / "index" / "CURRENT") >> name;
        return name;
    };
    EXPECT_EQ(gen(), "gen-000001");
    ASSERT_TRUE((*a)->compact());
    EXPECT_EQ(gen(), "gen-000002");
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "index" / "gen-000001"));
    EXPECT_EQ((*a)->document_count(), 7u);
    EXPECT_EQ((*a)->metadata("cp:t:x"), "42");
    EXPECT_EQ(add(**a, 8, {"t", "mb", "Inbox", ""}), 8u);
    ASSERT_TRUE((*a)->commit());
    a->reset();
    auto r = Archive::open(dir.path(), OpenMode::read);
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)->document_count(), 8u);
    EXPECT_EQ((*r)->metadata("cp:t:x"), "42");
    for (std::uint64_t d = 1; d <= 8; ++d) {
        auto raw = (*r)->read_original(d);
        ASSERT_TRUE(raw) << d;
        EXPECT_EQ(*raw, message(static_cast<int>(d)));
    }
    auto w = Archive::open(dir.path(), OpenMode::write);
    ASSERT_TRUE(w);
    EXPECT_TRUE((*w)->recovery_notes().empty());  // every shard recorded the whole store
}

}  // namespace
}  // namespace mv::index
