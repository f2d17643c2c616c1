// IMAP response parsing: FETCH items, literals, dates, UID sets, folder selection, namespaces and
// labels, header marks, the renumbering cross-check.
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

TEST(ImapProtocol, PersonalNamespace) {
    struct Case {
        std::string text;
        std::optional<std::string> prefix;
        char delimiter;
    };
    for (const Case& c : std::vector<Case>{
             {"* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))", "INBOX.", '.'},  // Courier
             {"* NAMESPACE ((\"\" \"/\")) NIL NIL", "", '/'},                                            // Dovecot
             {"* NAMESPACE NIL NIL ((\"\" \".\"))", std::nullopt, 0},
             {"* LIST () \".\" INBOX", std::nullopt, 0},
         }) {
        SCOPED_TRACE(c.text);
        Response r{c.text, {}};
        auto ns = parse_personal_namespace(r);
        ASSERT_EQ(ns.has_value(), c.prefix.has_value());
        if (!ns) continue;
        EXPECT_EQ(ns->prefix, *c.prefix);
        EXPECT_EQ(ns->delimiter, c.delimiter);
    }
}

TEST(ImapProtocol, FolderLabelsWithoutNamespacePrefix) {
    struct Case {
        std::string raw;
        char delimiter;
        std::string prefix;
        std::string label;
    };
    for (const Case& c : std::vector<Case>{
             {"INBOX", '.', "INBOX.", "INBOX"},
             {"inbox", '/', "", "INBOX"},
             {"INBOX.Archiv", '.', "INBOX.", "Archiv"},
             {"INBOX.Archiv.2023", '.', "INBOX.", "Archiv/2023"},
             {"INBOX.Entw&APw-rfe", '.', "INBOX.", "Entwürfe"},
             {"Inbox.Sent", '.', "INBOX.", "Sent"},          // INBOX in any case
             {"INBOX.INBOX", '.', "INBOX.", "INBOX/INBOX"},  // never the inbox itself
             {"Archive/Entw&APw-rfe", '/', "", "Archive/Entwürfe"},
             {"INBOX/Sub", '/', "", "INBOX/Sub"},            // Dovecot: a child of INBOX stays one
             {"#shared.x", '.', "INBOX.", "#shared/x"},      // another namespace: as it is
         }) {
        SCOPED_TRACE(c.raw);
        EXPECT_EQ(folder_label(c.raw, c.delimiter, c.prefix), c.label);
    }
}

TEST(ImapProtocol, HeaderMarkIgnoresLineEndsAndBody) {
    const std::string crlf = "From: a@b.c\r\nSubject: Grüße\r\n\r\nbody\r\n";
    const std::string crcrlf = "From: a@b.c\r\r\nSubject: Grüße\r\r\n\r\r\nbody\r\r\n";  // Courier
    const std::string header_only = "From: a@b.c\r\nSubject: Grüße\r\n\r\n";        // BODY[HEADER]
    EXPECT_EQ(header_mark(crlf), header_mark(crcrlf));
    EXPECT_EQ(header_mark(crlf), header_mark(header_only));
    EXPECT_EQ(header_mark(crlf), header_mark("From: a@b.c\nSubject: Grüße\n\nother body\n"));
    EXPECT_NE(header_mark(crlf), header_mark("From: a@b.c\r\nSubject: Grüsse\r\n\r\nbody\r\n"));
    EXPECT_EQ(header_mark("From: a@b.c\r\n"), header_mark("From: a@b.c\r\n\r\n"));  // no body at all
}

TEST(ImapProtocol, RenumberingDoubt) {
    ArchivedUpto a;
    a.last_uid = 13;
    a.below = 13;
    a.mark = "m13";
    struct Case {
        std::string name;
        FolderNow now;
        bool doubt;
    };
    auto now = [](std::uint32_t uidnext, std::uint64_t exists, std::uint64_t above, std::optional<std::string> mark) {
        FolderNow n;
        n.uidnext = uidnext;
        n.exists = exists;
        n.above = above;
        n.mark = std::move(mark);
        return n;
    };
    for (const Case& c : std::vector<Case>{
             {"nothing new", now(14, 13, 0, "m13"), false},
             {"three new", now(17, 16, 3, "m13"), false},
             {"some deleted", now(17, 10, 3, "m13"), false},
             {"the last one deleted", now(17, 12, 0, std::nullopt), false},
             {"UIDNEXT unknown", now(0, 16, 3, "m13"), false},
             {"UIDNEXT not past last", now(12, 13, 0, "m13"), true},
             {"UIDNEXT equal to last", now(13, 13, 0, "m13"), true},
             {"more below than archived", now(17, 16, 2, "m13"), true},
             {"another message at last", now(17, 16, 3, "m99"), true},
         }) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(!renumbering_doubt(a, c.now).empty(), c.doubt) << renumbering_doubt(a, c.now);
    }
    ArchivedUpto old;  // a checkpoint from before the cross-checks: only UIDNEXT can say
    old.last_uid = 13;
    EXPECT_TRUE(renumbering_doubt(old, now(17, 40, 3, "x")).empty());
    EXPECT_FALSE(renumbering_doubt(old, now(10, 9, 0, "x")).empty());
    EXPECT_TRUE(renumbering_doubt(ArchivedUpto{}, now(1, 5, 5, std::nullopt)).empty());  // nothing archived
    EXPECT_EQ(below_key("Archiv"), "imap:Archiv:below");
    EXPECT_EQ(mark_key("Archiv"), "imap:Archiv:mark");
}

}  // namespace
}  // namespace mv::ingest::imap
