// IMAP source against a private Dovecot: transport, auth, folders, incremental sync, failures.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common.hpp"
#include "ingest/imap/imap_source.hpp"
#include "ingest/imap/imap_sync.hpp"

namespace mv::test {
namespace {

using ingest::imap::open_imap_source;

Result<std::vector<std::string>> check(const SourceConfig& c) { return ingest::check_imap_source(c); }

std::unique_ptr<ingest::Source> open_or_die(const SourceConfig& c, const MemoryArchive& ar) {
    auto s = open_imap_source(c, ar.metadata);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (auto& l : lines) s += l + "\n";
    return s;
}

class ImapTest : public DovecotTest {};

TEST_F(ImapTest, EverySecurityModeConnects) {
    server->deliver("alice", "INBOX", message("first one"));
    struct Case {
        std::string security;
        std::string expect;
    };
    for (const Case& c : std::vector<Case>{{"none", "no TLS"},
                                           {"auto", "certificate verified"},
                                           {"starttls", "certificate verified"},
                                           {"tls", "certificate verified"}}) {
        SCOPED_TRACE(c.security);
        LogCapture log;
        auto r = check(server->source("m", "imap", "alice", c.security));
        ASSERT_TRUE(r) << r.error().message;
        std::string out = joined(*r);
        EXPECT_NE(out.find(c.expect), std::string::npos) << out;
        EXPECT_NE(out.find("folder INBOX: 1 messages"), std::string::npos) << out;
        EXPECT_NE(out.find("newest message: \"first one\""), std::string::npos) << out;
        if (c.security == "auto") { EXPECT_NE(log.text().find("offers STARTTLS, using it"), std::string::npos) << log.text(); }
    }
}

TEST_F(ImapTest, VerificationRejectsUnknownIssuerAndWrongHost) {
    auto c = server->source("m", "imap", "alice", "tls");
    c.strings.erase("ca_file");
    auto r = check(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("certificate verification failed"), std::string::npos) << r.error().message;

    c = server->source("m", "imap", "alice", "starttls");
    c.strings["host"] = "127.0.0.1";  // the certificate names localhost only
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("certificate verification failed"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("source 'm'"), std::string::npos);
}

// Issue 10: errors a support person can act on, not OpenSSL's words.
TEST_F(ImapTest, TlsErrorsSayWhatToChange) {
    auto c = server->source("m", "imap", "alice", "tls");
    c.strings["port"] = std::to_string(server->imap);  // the plain-text port
    auto r = check(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("answered in plain text, not TLS: use security = \"starttls\""), std::string::npos)
        << r.error().message;
    c = server->source("m", "imap", "alice", "tls");  // ca_file set and trusted, host not on the certificate
    c.strings["host"] = "127.0.0.1";
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("the certificate is for \"localhost\""), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("not for the configured host \"127.0.0.1\""), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("set ca_file"), std::string::npos) << r.error().message;
}

TEST_F(ImapTest, TrustAllAcceptsSelfSignedAndWarns) {
    auto c = server->source("m", "imap", "alice", "tls");
    c.strings.erase("ca_file");
    c.strings["host"] = "127.0.0.1";
    c.strings["trust_all_certificates"] = "true";
    LogCapture log;
    auto r = check(c);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(joined(*r).find("certificate NOT verified"), std::string::npos);
    EXPECT_NE(log.text().find("WARNING: trust_all_certificates"), std::string::npos) << log.text();
}

TEST_F(ImapTest, EachAuthMechanism) {
    for (std::string auth : {"password", "login", "plain", "xoauth2"}) {
        SCOPED_TRACE(auth);
        auto c = server->source("m", "imap", "alice", "tls");
        c.strings["auth"] = auth;
        if (auth == "xoauth2") {
            c.strings.erase("password");
            c.strings["token"] = "token-alice";
        }
        auto r = check(c);
        EXPECT_TRUE(r) << r.error().message;
    }
    std::string lines;
    for (std::string auth : {"login", "plain", "xoauth2"}) {
        SCOPED_TRACE(auth);
        auto c = server->source("m", "imap", "alice", "tls");
        c.strings["auth"] = auth;
        c.strings["password"] = "wrong";
        if (auth == "xoauth2") c.strings["token"] = "token-nobody";
        auto r = check(c);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind, Error::Kind::auth);
        EXPECT_NE(r.error().message.find("authentication failed for user 'alice'"), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find("wrong\""), std::string::npos);
    }
}

TEST_F(ImapTest, LoginWithEightBitPassword) {
    server.reset();
    Dovecot::Options o;
    o.users = {"alice", "joerg=pässwörd"};
    start(o);
    if (!server) return;
    server->deliver("joerg", "INBOX", message("für jörg"));
    for (std::string auth : {"login", "plain"}) {
        SCOPED_TRACE(auth);
        auto c = server->source("m", "imap", "joerg");
        c.strings["auth"] = auth;
        c.strings["password"] = "pässwörd";
        auto r = check(c);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_NE(joined(*r).find("newest message: \"für jörg\""), std::string::npos) << joined(*r);
    }
}

TEST_F(ImapTest, EachConnectionFailureHasItsOwnLine) {
    std::vector<std::string> messages;
    // wrong port: nothing listens
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    int silent_port = ntohs(a.sin_port);
    auto c = server->source("m", "imap", "alice", "tls");
    c.strings["port"] = std::to_string(silent_port);
    auto r = check(c);  // bound, not listening: refused
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("connection refused"), std::string::npos) << r.error().message;
    messages.push_back(r.error().message);

    // timeout: listening, never greets
    ASSERT_EQ(::listen(s, 4), 0);
    c.strings["timeout"] = "1";
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("timeout"), std::string::npos) << r.error().message;
    messages.push_back(r.error().message);
    ::close(s);

    // unknown host
    c = server->source("m", "imap", "alice", "tls");
    c.strings["host"] = "no-such-host.invalid";
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("unknown host 'no-such-host.invalid'"), std::string::npos) << r.error().message;
    messages.push_back(r.error().message);

    // TLS failure: implicit TLS against the plain port
    c = server->source("m", "imap", "alice", "tls");
    c.strings["port"] = std::to_string(server->imap);
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::unreachable);
    EXPECT_NE(r.error().message.find("TLS failure"), std::string::npos) << r.error().message;
    messages.push_back(r.error().message);

    // wrong password
    c = server->source("m", "imap", "alice", "tls");
    c.strings["password"] = "nope";
    r = check(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Error::Kind::auth);
    messages.push_back(r.error().message);

    std::set<std::string> distinct(messages.begin(), messages.end());
    EXPECT_EQ(distinct.size(), messages.size());
    for (auto& m : messages) EXPECT_EQ(m.rfind("source 'm': ", 0), 0u) << m;
}

TEST_F(ImapTest, SyncsFoldersThenOnlyNewMail) {
    if (!server->fill_from_corpus("alice", "INBOX", "varied.mbox.zst", 60)) GTEST_SKIP() << "corpus missing";
    server->deliver("alice", "Archive/Entwürfe", message("draft one"));
    server->deliver("alice", "Archive/Entwürfe", message("draft two"));
    server->deliver("alice", "Trash", message("junk"));
    auto c = server->source("m", "imap", "alice", "tls");
    c.lists["exclude"] = {"Trash"};
    c.strings["fetch_batch"] = "7";  // many pipelined commands
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 62u);
    EXPECT_TRUE(src->report().errors.empty());
    EXPECT_EQ(ar.count("INBOX"), 60u);
    EXPECT_EQ(ar.count("Archive/Entwürfe"), 2u);
    EXPECT_EQ(ar.count("Trash"), 0u);
    for (auto& m : ar.messages) {
        EXPECT_EQ(m.where.source, "m");
        EXPECT_EQ(m.where.mailbox, "alice");
        EXPECT_GT(m.fallback_date, 1600000000);
        EXPECT_FALSE(m.where.server_id.empty());
    }
    // Flags as stored: corpus files are in cur/ with ":2," (no flags), nothing was marked \Seen.
    auto again = open_or_die(c, MemoryArchive{});
    ASSERT_TRUE(again);
    MemoryArchive ar_again;
    drive(*again, ar_again);
    for (auto& m : ar_again.messages)
        EXPECT_EQ(std::find(m.flags.begin(), m.flags.end(), "\\Seen"), m.flags.end()) << m.where.server_id;
    EXPECT_EQ(ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:last_uid")), "60");

    // Incremental: only the new mail.
    server->deliver("alice", "INBOX", message("new one"));
    server->deliver("alice", "Archive/Entwürfe", message("draft three"));
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 2u);
    EXPECT_FALSE(ar.has_duplicates());
    EXPECT_EQ(ar.count("Archive/Entwürfe"), 3u);

    // Nothing new: nothing fetched.
    auto src3 = open_or_die(c, ar);
    ASSERT_TRUE(src3);
    EXPECT_EQ(drive(*src3, ar), 0u);
}

TEST_F(ImapTest, FlagsAndInternalDateRecorded) {
    auto f = server->deliver("alice", "INBOX", message("flagged"));
    auto cur = f.parent_path().parent_path() / "cur" / (f.filename().string() + ":2,FS");
    std::filesystem::rename(f, cur);
    std::filesystem::last_write_time(cur, std::filesystem::file_time_type::clock::now() - std::chrono::hours(24 * 400));
    MemoryArchive ar;
    auto src = open_or_die(server->source("m", "imap", "alice"), ar);
    ASSERT_TRUE(src);
    ASSERT_EQ(drive(*src, ar), 1u);
    auto& m = ar.messages[0];
    EXPECT_NE(std::find(m.flags.begin(), m.flags.end(), "\\Seen"), m.flags.end());
    EXPECT_NE(std::find(m.flags.begin(), m.flags.end(), "\\Flagged"), m.flags.end());
    std::int64_t now = std::time(nullptr);
    EXPECT_LT(m.fallback_date, now - 399 * 86400);
    EXPECT_GT(m.fallback_date, now - 401 * 86400);
    EXPECT_EQ(m.bytes, message("flagged"));
}

TEST_F(ImapTest, UmlautFolderNamesAndPatterns) {
    server->deliver("alice", "Entwürfe", message("a"));
    server->deliver("alice", "Ärger/Übersicht", message("b"));
    server->deliver("alice", "Ärger/Köln & Zürich", message("c"));
    server->deliver("alice", "Other", message("d"));
    auto c = server->source("m", "imap", "alice");
    c.lists["folders"] = {"Ärger/*", "Entw?rfe"};
    c.lists["exclude"] = {"*Zürich"};
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 2u);
    EXPECT_EQ(ar.count("Entwürfe"), 1u);
    EXPECT_EQ(ar.count("Ärger/Übersicht"), 1u);
    c.lists["exclude"] = {};
    c.lists["folders"] = {"Ärger/Köln & Zürich"};
    auto lines = check(c);
    ASSERT_TRUE(lines) << lines.error().message;
    EXPECT_NE(joined(*lines).find("folder Ärger/Köln & Zürich: 1 messages"), std::string::npos) << joined(*lines);
    EXPECT_TRUE(ar.metadata.count(ingest::checkpoint_key("m", "imap:Ärger/Übersicht:uidvalidity")));
}

TEST_F(ImapTest, UidValidityResetRereadsFolder) {
    for (int i = 0; i < 5; ++i) server->deliver("alice", "INBOX", message("m" + std::to_string(i)));
    auto c = server->source("m", "imap", "alice");
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 5u);
    auto before = ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:uidvalidity"));
    server->reset_uidvalidity("alice", "INBOX", 777);
    server->deliver("alice", "INBOX", message("m5"));
    LogCapture log;
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 6u);  // the whole folder again
    EXPECT_NE(log.text().find("UIDVALIDITY changed"), std::string::npos) << log.text();
    EXPECT_EQ(ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:uidvalidity")), "777");
    EXPECT_NE(before, "777");
    EXPECT_EQ(ar.normalized.size(), 6u);  // same contents: dedupe sees 6 distinct messages
    auto src3 = open_or_die(c, ar);
    ASSERT_TRUE(src3);
    EXPECT_EQ(drive(*src3, ar), 0u);
}

TEST_F(ImapTest, DeleteAfterArchiveOnlyDurableMessages) {
    for (int i = 0; i < 10; ++i) server->deliver("alice", "INBOX", message("d" + std::to_string(i)));
    auto c = server->source("m", "imap", "alice");
    c.strings["delete_after_archive"] = "true";
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    DriveOptions o;
    o.commit_every = 4;
    o.stop_after = 6;  // 6 taken and committed; the rest never durable
    EXPECT_EQ(drive(*src, ar, o), 6u);
    src.reset();
    auto lines = check(server->source("m", "imap", "alice"));
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 4 messages"), std::string::npos) << joined(*lines);
    // The rest on the next run: the checkpoint already covers what was archived.
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 4u);
    lines = check(server->source("m", "imap", "alice"));
    EXPECT_NE(joined(*lines).find("folder INBOX: 0 messages"), std::string::npos) << joined(*lines);
    EXPECT_EQ(ar.normalized.size(), 10u);
    EXPECT_FALSE(ar.has_duplicates());
}

TEST_F(ImapTest, WithoutUidplusExpungeOnlyWhenNoOtherMailIsDeleted) {
    server.reset();
    Dovecot::Options o;
    o.uidplus = false;
    start(o);
    if (!server) return;
    std::vector<std::filesystem::path> files;
    for (int i = 0; i < 5; ++i) files.push_back(server->deliver("alice", "INBOX", message("x" + std::to_string(i))));
    auto c = server->source("m", "imap", "alice");
    c.strings["delete_after_archive"] = "true";
    MemoryArchive ar;
    LogCapture log;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    DriveOptions d;
    d.stop_after = 3;
    d.call_finish = false;
    EXPECT_EQ(drive(*src, ar, d), 3u);
    // Someone else flags the last message \\Deleted (Maildir info "T") before we clean up.
    auto inbox = server->maildir("alice", "INBOX");
    bool flagged = false;
    for (auto sub : {"new", "cur"})
        for (auto& e : std::filesystem::directory_iterator(inbox / sub))
            if (read_file(e.path()) == message("x4")) {
                std::string base = e.path().filename().string();
                base = base.substr(0, base.find(':'));
                std::filesystem::rename(e.path(), inbox / "cur" / (base + ":2,T"));
                flagged = true;
            }
    ASSERT_TRUE(flagged);
    server->fix_owner();
    src->finish();
    src.reset();
    EXPECT_NE(log.text().find("not expunging"), std::string::npos) << log.text();
    auto lines = check(server->source("m", "imap", "alice"));
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 5 messages"), std::string::npos) << joined(*lines);

    // Nobody else's \\Deleted mail (ours from the last run are archived): EXPUNGE is safe.
    for (auto& e : std::filesystem::directory_iterator(inbox / "cur")) {
        auto name = e.path().filename().string();
        if (read_file(e.path()) == message("x4")) std::filesystem::rename(e.path(), inbox / "cur" / (name.substr(0, name.find(':')) + ":2,"));
    }
    server->fix_owner();
    auto src2 = open_or_die(c, ar);
    ASSERT_TRUE(src2);
    EXPECT_EQ(drive(*src2, ar), 2u);
    lines = check(server->source("m", "imap", "alice"));
    ASSERT_TRUE(lines);
    EXPECT_NE(joined(*lines).find("folder INBOX: 0 messages"), std::string::npos) << joined(*lines);
    EXPECT_EQ(ar.normalized.size(), 5u);
}

TEST_F(ImapTest, ServerKilledMidDownloadLosesNothing) {
    // Far more mail than socket buffers hold, so the server dies with most of it unsent.
    constexpr int k_count = 150;
    std::string filler;
    while (filler.size() < 300000) filler += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    for (int i = 0; i < k_count; ++i) server->deliver("alice", "INBOX", message("bulk " + std::to_string(i), filler));
    auto c = server->source("m", "imap", "alice");
    c.strings["fetch_batch"] = "20";
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
    drive(*src, ar);  // whatever was already received, then the source gives up
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

TEST_F(ImapTest, DroppedConnectionIsReopenedAndTheRunContinues) {
    std::string filler;
    while (filler.size() < 100000) filler += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    for (int i = 0; i < 40; ++i) server->deliver("alice", "INBOX", message("m " + std::to_string(i), filler));
    DelayProxy proxy(server->imaps, 0, 1500000);  // the first connection dies after ~1.5 MB
    ASSERT_GT(proxy.port, 0);
    auto c = server->source("m", "imap", "alice");
    c.strings["port"] = std::to_string(proxy.port);
    c.strings["fetch_batch"] = "5";
    LogCapture log;
    MemoryArchive ar;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 40u);
    EXPECT_TRUE(src->report().errors.empty());
    EXPECT_NE(log.text().find("reconnecting to continue folder 'INBOX'"), std::string::npos) << log.text();
    EXPECT_NE(log.text().find("reconnected"), std::string::npos);
    EXPECT_FALSE(ar.has_duplicates());
    EXPECT_EQ(ar.normalized.size(), 40u);
    EXPECT_EQ(ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:last_uid")), "40");
}

TEST_F(ImapTest, FiftyMegabyteMessage) {
    std::string body;
    std::string line(98, 'x');
    while (body.size() < (50u << 20)) body += line + "\r\n";
    std::string big = message("big", body);
    server->deliver("alice", "INBOX", big);
    server->deliver("alice", "INBOX", message("after big"));
    MemoryArchive ar;
    ar.max_kept_bytes = 1 << 10;
    auto src = open_or_die(server->source("m", "imap", "alice"), ar);
    ASSERT_TRUE(src);
    std::size_t seen_big = 0;
    std::vector<std::uint64_t> acks;
    for (;;) {
        auto m = src->next();
        if (!m) break;
        if (m->bytes.size() > (40u << 20)) {
            ++seen_big;
            EXPECT_EQ(m->bytes.size(), big.size());
            EXPECT_TRUE(m->bytes == big);
        }
    }
    src->finish();
    EXPECT_EQ(seen_big, 1u);
}

}  // namespace
}  // namespace mv::test
