// IMAP response parsing: FETCH items, literals, dates, UID sets, folder selection.
#include <gtest/gtest.h>

#include "ingest/imap/imap_client.hpp"
#include "ingest/imap/imap_sync.hpp"

namespace mv::ingest::imap {
namespace {

TEST(ImapProtocol, ParsesFetchWithLiteralInAnyItemOrder) {
    Response r;
    r.text = "* 12 FETCH (FLAGS (\\Seen $Label1) BODY[] {5} INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" UID 4827)";
    r.literals = {"hello"};
    auto f = parse_fetch(r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->uid, 4827u);
    EXPECT_EQ(f->flags, (std::vector<std::string>{"\\Seen", "$Label1"}));
    EXPECT_EQ(*f->body, "hello");
    EXPECT_EQ(f->internal_date, 837596665);
}

TEST(ImapProtocol, HeaderFieldsSectionAndNilBody) {
    Response r;
    r.text = "* 3 FETCH (UID 9 BODY[HEADER.FIELDS (SUBJECT)] {20})";
    r.literals = {"Subject: hi there\r\n\r\n"};
    auto f = parse_fetch(r);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->uid, 9u);
    EXPECT_EQ(*f->body, "Subject: hi there\r\n\r\n");
    Response nil{"* 4 FETCH (UID 10 BODY[] NIL)", {}};
    f = parse_fetch(nil);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->body, std::optional<std::string>(""));
    Response other{"* 5 EXISTS", {}};
    EXPECT_FALSE(parse_fetch(other));
    Response flags_only{"* 6 FETCH (UID 11 FLAGS (\\Deleted))", {}};
    f = parse_fetch(flags_only);
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->body);
}

TEST(ImapProtocol, QuotedStringsWithEscapes) {
    Response r{"* LIST (\\HasNoChildren) \".\" \"a \\\"b\\\" c\"", {}};
    Tokenizer t(r);
    EXPECT_TRUE(t.consume('*'));
    EXPECT_EQ(t.atom(), "LIST");
    EXPECT_EQ(t.list(), std::vector<std::string>{"\\HasNoChildren"});
    EXPECT_EQ(*t.nstring(), ".");
    EXPECT_EQ(*t.nstring(), "a \"b\" c");
}

TEST(ImapProtocol, InternalDates) {
    EXPECT_EQ(parse_internal_date(" 1-Jan-1970 00:00:00 +0000"), 0);
    EXPECT_EQ(parse_internal_date("01-Jan-2000 01:00:00 +0100"), 946684800);
    EXPECT_EQ(parse_internal_date("garbage"), 0);
}

TEST(ImapProtocol, UidSets) {
    EXPECT_EQ(uid_set({1, 2, 3, 5, 7, 8}), "1:3,5,7:8");
    EXPECT_EQ(uid_set({42}), "42");
    EXPECT_EQ(uid_set({}), "");
}

TEST(ImapProtocol, FolderSelection) {
    EXPECT_TRUE(folder_selected("INBOX", {"*"}, {}));
    EXPECT_TRUE(folder_selected("INBOX", {"inbox"}, {}));
    EXPECT_TRUE(folder_selected("INBOX/Sub", {"Inbox/*"}, {}));
    EXPECT_FALSE(folder_selected("Trash", {"*"}, {"Trash", "Junk"}));
    EXPECT_TRUE(folder_selected("Entwürfe", {"Entw*"}, {"Trash"}));
    EXPECT_FALSE(folder_selected("Sent", {"INBOX"}, {}));
}

TEST(ImapProtocol, CheckpointKeys) {
    EXPECT_EQ(uidvalidity_key("Ärger/Übersicht"), "imap:Ärger/Übersicht:uidvalidity");
    EXPECT_EQ(last_uid_key("INBOX"), "imap:INBOX:last_uid");
}

}  // namespace
}  // namespace mv::ingest::imap
