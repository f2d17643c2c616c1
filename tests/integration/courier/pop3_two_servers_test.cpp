// POP3 against Courier and Dovecot: messages with 8-bit headers arrive as they are (UTF8,
// RFC 6856, where offered), over TLS and STARTTLS; a repeat sync fetches nothing.
#include "ingest/pop3/pop3_source.hpp"
#include "ingest/pop3/pop3_sync.hpp"
#include "servers.hpp"

namespace mv::test {
namespace {

std::unique_ptr<ingest::Source> open_or_die(const SourceConfig& c, const MemoryArchive& ar) {
    auto s = ingest::pop3::open_pop3_source(c, ar.metadata);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

class Pop3Servers : public TwoServerTest {};

TEST_P(Pop3Servers, EightBitHeadersArriveAsTheyAreOverTlsAndStarttls) {
    const std::vector<std::string> sent{
        message("Grüße aus Köln", "Bärlauch"),
        message("plain ascii"),
        message("from a name", "body", "Jörg Müller <joerg@example.com>"),
    };
    for (auto& m : sent) server->deliver("bob", "INBOX", m);
    for (std::string security : {"tls", "starttls", "none"}) {
        SCOPED_TRACE(security);
        auto c = server->source("p", "pop3", "bob", security);
        MemoryArchive ar;
        {
            auto src = open_or_die(c, ar);
            ASSERT_TRUE(src);
            EXPECT_EQ(drive(*src, ar), 3u);
            EXPECT_TRUE(src->report().errors.empty());
        }
        std::multiset<std::string> got, want;
        for (auto& m : ar.messages) {
            EXPECT_EQ(m.bytes.find("Cannot display Unicode content"), std::string::npos) << m.bytes;
            got.insert(lf(m.bytes));
        }
        for (auto& m : sent) want.insert(lf(m));
        EXPECT_EQ(got, want);
        auto again = open_or_die(c, ar);
        ASSERT_TRUE(again);
        EXPECT_EQ(drive(*again, ar), 0u);
    }
}

TEST_P(Pop3Servers, CheckInEverySecurityMode) {
    server->deliver("bob", "INBOX", message("pop hello"));
    for (std::string security : {"none", "auto", "starttls", "tls"}) {
        SCOPED_TRACE(security);
        auto r = ingest::check_pop3_source(server->source("p", "pop3", "bob", security));
        ASSERT_TRUE(r) << r.error().message;
        std::string out = joined(*r);
        EXPECT_NE(out.find("folder INBOX: 1 messages"), std::string::npos) << out;
        EXPECT_NE(out.find("newest message: \"pop hello\""), std::string::npos) << out;
        EXPECT_NE(out.find(security == "none" ? "no TLS" : "certificate verified"), std::string::npos) << out;
    }
}

TEST_P(Pop3Servers, DeleteAfterArchive) {
    for (int i = 0; i < 3; ++i) server->deliver("bob", "INBOX", message("pop delete " + std::to_string(i)));
    server->deliver("bob", "INBOX", message("Grüße zum Löschen"));
    auto c = server->source("p", "pop3", "bob", "starttls");
    c.strings["delete_after_archive"] = "true";
    MemoryArchive ar;
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 4u);
        EXPECT_TRUE(src->report().errors.empty());
    }
    EXPECT_EQ(ar.normalized.size(), 4u);
    auto r = ingest::check_pop3_source(server->source("p", "pop3", "bob"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(joined(*r).find("folder INBOX: 0 messages"), std::string::npos) << joined(*r);
}

INSTANTIATE_TEST_SUITE_P(Servers, Pop3Servers, ::testing::Values("courier", "dovecot"), server_name);

}  // namespace
}  // namespace mv::test
