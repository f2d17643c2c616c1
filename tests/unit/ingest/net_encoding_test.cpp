// Modified UTF-7, base64 and SASL initial responses, globbing of folder names.
#include <gtest/gtest.h>

#include "ingest/net/account.hpp"
#include "ingest/net/sasl.hpp"
#include "ingest/net/utf7.hpp"

namespace mv::ingest::net {
namespace {

TEST(Mutf7, DecodesAndEncodesTableOfNames) {
    struct Case {
        const char* wire;
        const char* utf8;
    };
    for (auto c : {Case{"INBOX", "INBOX"}, Case{"Entw&APw-rfe", "Entwürfe"}, Case{"&AMQ-rger", "Ärger"},
                   Case{"K&APY-ln &- Z&APw-rich", "Köln & Zürich"}, Case{"&ZeVnLIqe-", "日本語"},
                   Case{"&2D3eAA-", "😀"}, Case{"a&-b", "a&b"}, Case{"~peter/mail/&U,BTFw-", "~peter/mail/台北"}}) {
        SCOPED_TRACE(c.wire);
        EXPECT_EQ(mutf7_decode(c.wire), c.utf8);
        EXPECT_EQ(mutf7_encode(c.utf8), c.wire);
    }
}

TEST(Mutf7, MalformedInputIsReturnedUnchanged) {
    EXPECT_EQ(mutf7_decode("broken&AMQ"), "broken&AMQ");
    EXPECT_EQ(mutf7_decode("bad&*-"), "bad&*-");
}

TEST(Sasl, PlainAndXoauth2) {
    EXPECT_EQ(base64_decode(sasl_plain("alice", "pw")), std::string("\0alice\0pw", 9));
    EXPECT_EQ(base64_decode(sasl_xoauth2("a@b.c", "tok")), "user=a@b.c\x01" "auth=Bearer tok\x01\x01");
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_decode("Zm9vYg"), "foob");
}

TEST(Glob, MatchesWholeUtf8Names) {
    EXPECT_TRUE(glob_match("*", "Archive/2023"));
    EXPECT_TRUE(glob_match("Entw?rfe", "Entwürfe"));
    EXPECT_TRUE(glob_match("Ärger/*", "Ärger/Übersicht"));
    EXPECT_FALSE(glob_match("Ärger/*", "Ärger"));
    EXPECT_TRUE(glob_match("[A-Z]*", "Sent"));
    EXPECT_FALSE(glob_match("[!S]*", "Sent"));
    EXPECT_TRUE(glob_match("*Zürich", "Ärger/Köln & Zürich"));
    EXPECT_FALSE(glob_match("Sent", "Sent Items"));
}

TEST(Account, ReadsKeysAndRejectsBadValues) {
    SourceConfig c;
    c.name = "m";
    c.type = "imap";
    c.strings = {{"host", "h"}, {"username", "u"}, {"password", "p"}, {"security", "starttls"}};
    auto a = read_account(c, "imap");
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->endpoint.port, 143);
    EXPECT_EQ(a->security, Security::starttls);
    EXPECT_EQ(a->describe(), "u@h:143 (imap, starttls)");
    c.strings["security"] = "ssl";
    auto bad = read_account(c, "imap");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, Error::Kind::usage);
    EXPECT_NE(bad.error().message.find("'security'"), std::string::npos);
    c.strings["security"] = "tls";
    c.strings.erase("password");
    bad = read_account(c, "pop3");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("password"), std::string::npos);
    c.strings["password"] = "p";
    EXPECT_EQ(read_account(c, "pop3")->endpoint.port, 995);
}

}  // namespace
}  // namespace mv::ingest::net
