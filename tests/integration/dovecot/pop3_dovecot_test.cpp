// POP3 source against a private Dovecot: transport, auth, UIDL-incremental sync, DELE, failures.
#include "common.hpp"
#include "ingest/pop3/pop3_source.hpp"
#include "ingest/pop3/pop3_sync.hpp"

namespace mv::test {
namespace {

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (auto& l : lines) s += l + "\n";
    return s;
}

std::unique_ptr<ingest::Source> open_or_die(const SourceConfig& c, const MemoryArchive& ar) {
    auto s = ingest::pop3::open_pop3_source(c, ar.metadata);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

class Pop3Test : public DovecotTest {};

TEST_F(Pop3Test, EverySecurityModeAndMechanism) {
    server->deliver("bob", "INBOX", message("pop hello"));
    for (std::string security : {"none", "auto", "starttls", "tls"}) {
        for (std::string auth : {"password", "user", "plain", "xoauth2"}) {
            SCOPED_TRACE(security + " " + auth);
            auto c = server->source("p", "pop3", "bob", security);
            c.strings["auth"] = auth;
            if (auth == "xoauth2") c.strings["token"] = "token-bob";
            LogCapture log;
            auto r = ingest::check_pop3_source(c);
            ASSERT_TRUE(r) << r.error().message;
            std::string out = joined(*r);
            EXPECT_NE(out.find("folder INBOX: 1 messages"), std::string::npos) << out;
            EXPECT_NE(out.find("newest message: \"pop hello\""), std::string::npos) << out;
            EXPECT_NE(out.find(security == "none" ? "no TLS" : "certificate verified"), std::string::npos) << out;
            if (security == "auto") {
                EXPECT_NE(log.text().find("offers STLS, using it"), std::string::npos) << log.text();
            }
        }
    }
}

TEST_F(Pop3Test, RejectsBadCredentialsAndCertificates) {
    for (std::string auth : {"user", "plain", "xoauth2"}) {
        SCOPED_TRACE(auth);
        auto c = server->source("p", "pop3", "bob");
        c.strings["auth"] = auth;
        c.strings["password"] = "wrong";
        c.strings["token"] = "token-nobody";
        auto r = ingest::check_pop3_source(c);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind, Error::Kind::auth);
        EXPECT_NE(r.error().message.find("authentication failed for user 'bob'"), std::string::npos) << r.error().message;
    }
    auto c = server->source("p", "pop3", "bob", "starttls");
    c.strings["host"] = "127.0.0.1";
    auto r = ingest::check_pop3_source(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("certificate verification failed"), std::string::npos) << r.error().message;
    c.strings["trust_all_certificates"] = "true";
    LogCapture log;
    EXPECT_TRUE(ingest::check_pop3_source(c));
    EXPECT_NE(log.text().find("WARNING: trust_all_certificates"), std::string::npos);
}

TEST_F(Pop3Test, IncrementalByUidl) {
    if (!server->fill_from_corpus("bob", "INBOX", "varied.mbox.zst", 80)) GTEST_SKIP() << "corpus missing";
    auto c = server->source("p", "pop3", "bob");
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 80u);
    EXPECT_TRUE(src->report().errors.empty());
    for (auto& m : ar.messages) {
        EXPECT_EQ(m.where.folder, "INBOX");
        EXPECT_EQ(m.where.mailbox, "bob");
        EXPECT_EQ(m.where.server_id.size(), 16u);  // %08Xu%08Xv
    }
    server->deliver("bob", "INBOX", message("late arrival"));
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 1u);
    EXPECT_EQ(ar.messages.back().bytes, message("late arrival"));
    auto src3 = open_or_die(c, ar);
    ASSERT_TRUE(src3);
    EXPECT_EQ(drive(*src3, ar), 0u);
    EXPECT_FALSE(ar.has_duplicates());
    // Nothing was deleted.
    auto lines = ingest::check_pop3_source(c);
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 81 messages"), std::string::npos);
}

TEST_F(Pop3Test, DeleteAfterArchiveOnlyDurableMessages) {
    for (int i = 0; i < 10; ++i) server->deliver("bob", "INBOX", message("p" + std::to_string(i)));
    auto c = server->source("p", "pop3", "bob");
    c.strings["delete_after_archive"] = "true";
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    DriveOptions o;
    o.commit_every = 3;
    o.stop_after = 7;
    EXPECT_EQ(drive(*src, ar, o), 7u);
    src.reset();
    auto lines = ingest::check_pop3_source(server->source("p", "pop3", "bob"));
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 3 messages"), std::string::npos) << joined(*lines);
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 3u);
    lines = ingest::check_pop3_source(server->source("p", "pop3", "bob"));
    EXPECT_NE(joined(*lines).find("folder INBOX: 0 messages"), std::string::npos) << joined(*lines);
    EXPECT_EQ(ar.normalized.size(), 10u);
}

// Mail archived by an earlier run but still on the server — that run stopped between its
// commit and its DELE (kill -9, a lost connection), or delete_after_archive was turned on
// later — is deleted by the next run with the option on; nothing that is not archived is.
TEST_F(Pop3Test, DeleteAfterArchiveAlsoDeletesWhatEarlierRunsArchived) {
    for (int i = 0; i < 6; ++i) server->deliver("bob", "INBOX", message("e" + std::to_string(i)));
    auto c = server->source("p", "pop3", "bob");
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 6u);
    src.reset();
    auto lines = ingest::check_pop3_source(c);
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 6 messages"), std::string::npos) << joined(*lines);
    for (int i = 0; i < 2; ++i) server->deliver("bob", "INBOX", message("n" + std::to_string(i)));
    c.strings["delete_after_archive"] = "true";
    DriveOptions o;
    o.commit_every = 1;
    o.stop_after = 1;  // one of the two new ones archived; the other stays for the next run
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar, o), 1u);
    src2.reset();
    lines = ingest::check_pop3_source(c);
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 1 messages"), std::string::npos) << joined(*lines);
    auto src3 = open_or_die(c, ar);
    ASSERT_TRUE(src3);
    EXPECT_EQ(drive(*src3, ar), 1u);
    src3.reset();
    lines = ingest::check_pop3_source(c);
    EXPECT_NE(joined(*lines).find("folder INBOX: 0 messages"), std::string::npos) << joined(*lines);
    EXPECT_EQ(ar.normalized.size(), 8u);
    EXPECT_FALSE(ar.has_duplicates());
}

TEST_F(Pop3Test, ServerKilledMidDownloadLosesNothing) {
    constexpr int k_count = 150;
    std::string filler;
    while (filler.size() < 300000) filler += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    for (int i = 0; i < k_count; ++i) server->deliver("bob", "INBOX", message("bulk " + std::to_string(i), filler));
    auto c = server->source("p", "pop3", "bob");
    c.strings["queue_messages"] = "10";
    c.strings["reconnect_attempts"] = "1";
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    DriveOptions o;
    o.stop_after = 20;
    o.call_finish = false;
    drive(*src, ar, o);
    server->kill();
    drive(*src, ar);
    EXPECT_LT(ar.messages.size(), std::size_t{k_count});
    EXPECT_FALSE(src->report().errors.empty());
    EXPECT_EQ(src->report().failed, k_count - ar.messages.size());  // the run reports itself partial
    src.reset();
    ASSERT_TRUE(server->restart());
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    drive(*src2, ar);
    EXPECT_EQ(ar.messages.size(), std::size_t{k_count});
    EXPECT_FALSE(ar.has_duplicates());
    EXPECT_EQ(ar.normalized.size(), std::size_t{k_count});
}

TEST_F(Pop3Test, DroppedConnectionIsReopenedAndTheRunContinues) {
    std::string filler;
    while (filler.size() < 100000) filler += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    for (int i = 0; i < 40; ++i) server->deliver("bob", "INBOX", message("m " + std::to_string(i), filler));
    DelayProxy proxy(server->pop3s, 0, 1500000);
    ASSERT_GT(proxy.port, 0);
    auto c = server->source("p", "pop3", "bob");
    c.strings["port"] = std::to_string(proxy.port);
    LogCapture log;
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 40u);
    EXPECT_TRUE(src->report().errors.empty());
    EXPECT_NE(log.text().find("reconnected"), std::string::npos) << log.text();
    EXPECT_FALSE(ar.has_duplicates());
    EXPECT_EQ(ar.normalized.size(), 40u);
}

TEST_F(Pop3Test, FiftyMegabyteMessage) {
    std::string body;
    std::string line(98, 'y');
    while (body.size() < (50u << 20)) body += line + "\r\n";
    body += ".leading dot line\r\n";
    std::string big = message("big", body);
    server->deliver("bob", "INBOX", big);
    auto src = open_or_die(server->source("p", "pop3", "bob"), MemoryArchive{});
    ASSERT_TRUE(src);
    auto m = src->next();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->bytes.size(), big.size());
    EXPECT_TRUE(m->bytes == big);
    EXPECT_FALSE(src->next());
    src->finish();
}

}  // namespace
}  // namespace mv::test
