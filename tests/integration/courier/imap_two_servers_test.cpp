// IMAP against Courier and Dovecot: first sync, a repeat sync fetches nothing, incremental sync,
// a server that renumbers, namespace-free folder labels, every security mode.
#include <chrono>
#include <thread>

#include "ingest/imap/imap_source.hpp"
#include "ingest/imap/imap_sync.hpp"
#include "servers.hpp"

namespace mv::test {
namespace {

std::unique_ptr<ingest::Source> open_or_die(const SourceConfig& c, const MemoryArchive& ar) {
    auto s = ingest::imap::open_imap_source(c, ar.metadata);
    EXPECT_TRUE(s) << (s ? "" : s.error().message);
    return s ? std::move(*s) : nullptr;
}

// Messages whose bytes (line ends aside) are `bytes`.
std::size_t count_bytes(const MemoryArchive& ar, const std::string& bytes) {
    std::size_t n = 0;
    for (auto& m : ar.messages) {
        std::string a, b;
        for (char c : m.bytes) if (c != '\r') a += c;
        for (char c : bytes) if (c != '\r') b += c;
        n += a == b;
    }
    return n;
}

class ImapServers : public TwoServerTest {};

TEST_P(ImapServers, FirstSyncThenRepeatFetchesNothingThenOnlyNewMail) {
    if (!server->fill_from_corpus("alice", "INBOX", "varied.mbox.zst", 30)) GTEST_SKIP() << "corpus missing";
    const std::string eight_bit = message("Grüße aus Köln", "Bärlauch", "Jörg Müller <joerg@example.com>");
    server->deliver("alice", "Archiv", eight_bit);
    server->deliver("alice", "Archiv", message("plain archived"));
    server->deliver("alice", "Archiv/2023", message("old stuff"));
    server->deliver("alice", "Entwürfe", message("Entwurf eins"));
    server->deliver("alice", "Trash", message("junk"));
    auto c = server->source("m", "imap", "alice", "tls");
    c.lists["exclude"] = {"Trash"};
    c.strings["fetch_batch"] = "7";
    MemoryArchive ar;
    {
        LogCapture log;
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 34u) << log.text();
        EXPECT_TRUE(src->report().errors.empty()) << log.text();
    }
    // Labels without the personal namespace ("INBOX." on Courier): the same on both servers.
    EXPECT_EQ(ar.count("INBOX"), 30u);
    EXPECT_EQ(ar.count("Archiv"), 2u);
    EXPECT_EQ(ar.count("Archiv/2023"), 1u);
    EXPECT_EQ(ar.count("Entwürfe"), 1u);
    for (auto& m : ar.messages) EXPECT_NE(m.where.folder.rfind("INBOX/", 0), 0u) << m.where.folder;
    EXPECT_EQ(count_bytes(ar, eight_bit), 1u);  // 8-bit headers arrive as they are
    EXPECT_FALSE(ar.has_duplicates());

    if (courier()) {
        // SELECT made Courier keep the numbers it gave: a folder no client had opened before.
        auto& cs = static_cast<CourierServer&>(*server).courier();
        EXPECT_NE(cs.stored_uidvalidity("alice", "Archiv"), 0u);
        EXPECT_NE(cs.stored_uidvalidity("alice", "Entwürfe"), 0u);
    }
    // Courier derives a fresh UIDVALIDITY from the clock for a folder whose numbers it did not
    // keep: the repeat sync runs in another second.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    {
        LogCapture log;
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 0u) << log.text();
        EXPECT_EQ(log.text().find("UIDVALIDITY changed"), std::string::npos) << log.text();
        EXPECT_EQ(log.text().find("renumbered"), std::string::npos) << log.text();
    }
    // Nothing was marked read (BODY.PEEK[] in a SELECTed folder).
    {
        MemoryArchive fresh;
        auto src = open_or_die(c, fresh);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, fresh), 34u);
        for (auto& m : fresh.messages)
            EXPECT_EQ(std::find(m.flags.begin(), m.flags.end(), "\\Seen"), m.flags.end()) << m.where.folder;
    }
    // New mail: exactly that.
    server->deliver("alice", "INBOX", message("new one"));
    server->deliver("alice", "INBOX", message("new two"));
    server->deliver("alice", "Entwürfe", message("Entwurf zwei"));
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 3u);
    }
    EXPECT_EQ(count_bytes(ar, message("new one")), 1u);
    EXPECT_EQ(count_bytes(ar, message("new two")), 1u);
    EXPECT_EQ(count_bytes(ar, message("Entwurf zwei")), 1u);
    EXPECT_FALSE(ar.has_duplicates());
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 0u);
    }
}

// The lost mail: after the first sync, three new messages get the UIDs of three archived
// ones (same UIDVALIDITY, consistent UIDNEXT and counts), the archived ones move up. Reading
// past the checkpoint would fetch the old three again and never the new ones.
TEST_P(ImapServers, RenumberedServerLosesNothing) {
    std::vector<std::string> old_names, new_names;
    auto basename = [](const std::filesystem::path& p) { return p.filename().string(); };
    for (int i = 1; i <= 5; ++i) old_names.push_back(basename(server->deliver("alice", "INBOX", message("old " + std::to_string(i)))));
    server->renumber("alice", "INBOX", old_names);  // old 1..5 = UIDs 1..5
    auto c = server->source("m", "imap", "alice", "starttls");
    MemoryArchive ar;
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        ASSERT_EQ(drive(*src, ar), 5u);
    }
    EXPECT_EQ(ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:last_uid")), "5");
    for (int i = 1; i <= 3; ++i) new_names.push_back(basename(server->deliver("alice", "INBOX", message("new " + std::to_string(i)))));
    server->renumber("alice", "INBOX",
                     {old_names[0], old_names[1], new_names[0], new_names[1], new_names[2], old_names[2], old_names[3], old_names[4]});
    {
        LogCapture log;
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        drive(*src, ar);
        EXPECT_NE(log.text().find("renumbered"), std::string::npos) << log.text();
        EXPECT_TRUE(src->report().errors.empty());
    }
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(count_bytes(ar, message("new " + std::to_string(i))), 1u) << i;
    EXPECT_EQ(ar.normalized.size(), 8u);  // every message, repeats left to dedupe
    EXPECT_EQ(ar.metadata.at(ingest::checkpoint_key("m", "imap:INBOX:last_uid")), "8");
    {
        LogCapture log;
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 0u) << log.text();
    }
    // Mail arriving later still comes, once.
    server->deliver("alice", "INBOX", message("new 4"));
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 1u);
    }
    EXPECT_EQ(count_bytes(ar, message("new 4")), 1u);
}

TEST_P(ImapServers, EverySecurityModeConnects) {
    server->deliver("alice", "INBOX", message("first one"));
    server->deliver("alice", "Archiv", message("filed"));
    for (std::string security : {"none", "auto", "starttls", "tls"}) {
        SCOPED_TRACE(security);
        auto r = ingest::check_imap_source(server->source("m", "imap", "alice", security));
        ASSERT_TRUE(r) << r.error().message;
        std::string out = joined(*r);
        EXPECT_NE(out.find(security == "none" ? "no TLS" : "certificate verified"), std::string::npos) << out;
        EXPECT_NE(out.find("folder INBOX: 1 messages"), std::string::npos) << out;
        EXPECT_NE(out.find("folder Archiv: 1 messages"), std::string::npos) << out;
        MemoryArchive ar;
        auto src = open_or_die(server->source("m", "imap", "alice", security), ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 2u);
    }
}

TEST_P(ImapServers, DeleteAfterArchiveThenNewMail) {
    for (int i = 0; i < 4; ++i) server->deliver("alice", "INBOX", message("to delete " + std::to_string(i)));
    server->deliver("alice", "Archiv", message("filed and deleted"));
    auto c = server->source("m", "imap", "alice");
    c.strings["delete_after_archive"] = "true";
    MemoryArchive ar;
    {
        auto src = open_or_die(c, ar);
        ASSERT_TRUE(src);
        EXPECT_EQ(drive(*src, ar), 5u);
        EXPECT_TRUE(src->report().errors.empty());
    }
    auto lines = ingest::check_imap_source(server->source("m", "imap", "alice"));
    ASSERT_TRUE(lines) << lines.error().message;
    EXPECT_NE(joined(*lines).find("folder INBOX: 0 messages"), std::string::npos) << joined(*lines);
    EXPECT_NE(joined(*lines).find("folder Archiv: 0 messages"), std::string::npos) << joined(*lines);
    // The checkpoint's message is gone: not a reason to doubt it, and new mail still comes.
    server->deliver("alice", "INBOX", message("after the deletion"));
    LogCapture log;
    auto src = open_or_die(c, ar);
    ASSERT_TRUE(src);
    EXPECT_EQ(drive(*src, ar), 1u);
    EXPECT_EQ(count_bytes(ar, message("after the deletion")), 1u);
    EXPECT_EQ(log.text().find("renumbered"), std::string::npos) << log.text();
}

INSTANTIATE_TEST_SUITE_P(Servers, ImapServers, ::testing::Values("courier", "dovecot"), server_name);

}  // namespace
}  // namespace mv::test
