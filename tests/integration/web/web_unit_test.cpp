// Pieces of the web side without a server: the access rule's globs and filter, `next`
// validation, form and listen parsing, throttling, sessions, durations, facet queries.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xapian.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "query/access.hpp"
#include "query/facets.hpp"
#include "support/testutil.hpp"
#include "web/app.hpp"
#include "web/audit.hpp"
#include "web/auth.hpp"
#include "web/html.hpp"
#include "web/http.hpp"

namespace mv::test {
namespace {

using namespace std::chrono_literals;

// The group commit: records from many threads at once are all in the file, in one unbroken
// chain, as soon as append() returns; sync() waits for the disk; the last ones are made
// durable when the log closes.
TEST(WebUnit, AuditGroupCommitKeepsEveryRecordInOneChain) {
    TempDir d;
    {
        auto log = web::AuditLog::open(d.path());
        ASSERT_TRUE(log) << log.error().message;
        std::vector<std::thread> threads;
        std::atomic<int> failures{0};
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 100; ++i)
                    if (!(*log)->append("search", "u" + std::to_string(t), "127.0.0.1", {{"query", std::to_string(i)}}))
                        ++failures;
            });
        for (auto& th : threads) th.join();
        EXPECT_EQ(failures.load(), 0);
        auto read = web::read_audit(d.path());  // written before append returned
        ASSERT_TRUE(read);
        EXPECT_EQ(read->records.size(), 800u);
        EXPECT_FALSE(read->broken_at);
        EXPECT_TRUE((*log)->sync());
        ASSERT_TRUE((*log)->append("login", "u0", "127.0.0.1"));
    }
    auto read = web::read_audit(d.path());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->records.size(), 801u);
    EXPECT_FALSE(read->broken_at);
    // Reopened, the chain goes on from the last line.
    {
        auto log = web::AuditLog::open(d.path());
        ASSERT_TRUE(log);
        ASSERT_TRUE((*log)->append("logout", "u0", "127.0.0.1"));
    }
    read = web::read_audit(d.path());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->records.size(), 802u);
    EXPECT_FALSE(read->broken_at);
}

// Records appended without pause share fdatasyncs: at most one per k_sync_interval (each
// costs the disk milliseconds and a core ~0.7 ms), however many records; sync() still makes
// the last one durable.
TEST(WebUnit, AuditSyncsAtMostOncePerInterval) {
    TempDir d;
    auto log = web::AuditLog::open(d.path());
    ASSERT_TRUE(log) << log.error().message;
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t records = 0;
    while (std::chrono::steady_clock::now() - start < 400ms) {
        ASSERT_TRUE((*log)->append("search", "u", "127.0.0.1", {{"query", std::to_string(records)}}));
        ++records;
        std::this_thread::sleep_for(200us);
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const std::uint64_t syncs = (*log)->syncs();
    EXPECT_GT(records, 100u);
    EXPECT_GE(syncs, 1u);
    EXPECT_LE(syncs, std::uint64_t(elapsed / web::k_sync_interval) + 2) << records << " records";
    ASSERT_TRUE((*log)->append("logout", "u", "127.0.0.1"));
    ASSERT_TRUE((*log)->sync());
    EXPECT_GT((*log)->syncs(), syncs);
    auto read = web::read_audit(d.path());
    ASSERT_TRUE(read);
    EXPECT_EQ(read->records.size(), records + 1);
}

// A handler that throws something that is no std::exception (Xapian::Error is not one) gets
// a 500, and the server goes on; without the catch-all the exception would unwind into
// libmicrohttpd's C code and end the process.
TEST(WebUnit, AnyExceptionFromAHandlerIsA500AndTheServerGoesOn) {
    web::Limits limits;
    limits.threads = 1;
    auto server = web::HttpServer::start("127.0.0.1", 0, limits, [](const web::Request& r) {
        if (r.raw_path == "/xapian") throw Xapian::DatabaseCorruptError("dir_end invalid in block 12");
        if (r.raw_path == "/int") throw 7;
        web::Response ok;
        ok.body = "fine";
        return ok;
    });
    ASSERT_TRUE(server) << server.error().message;
    auto get = [&](const std::string& path) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((*server)->port());
        if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            return std::string("connect failed");
        }
        const std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
        (void)!write(fd, req.data(), req.size());
        std::string out;
        char buf[4096];
        for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
        close(fd);
        return out.substr(0, out.find("\r\n"));
    };
    EXPECT_EQ(get("/xapian"), "HTTP/1.1 500 Internal Server Error");
    EXPECT_EQ(get("/int"), "HTTP/1.1 500 Internal Server Error");
    EXPECT_EQ(get("/other"), "HTTP/1.1 200 OK");
}

// Two connections opened together go to two workers: a request that takes long on one does
// not hold up the other. (libmicrohttpd's own pool often let one worker accept both, and the
// second request waited for the first, which waited for the second, until its 10 s ran out:
// this test failed 1 run in 3 with it.)
TEST(WebUnit, ConnectionsOpenedTogetherAreServedByDifferentWorkers) {
    web::Limits limits;
    limits.threads = 2;
    std::mutex mu;
    std::condition_variable cv;
    bool fast_seen = false;
    auto server = web::HttpServer::start("127.0.0.1", 0, limits, [&](const web::Request& r) {
        web::Response out;
        std::unique_lock lock(mu);
        if (r.raw_path == "/slow") {
            out.body = cv.wait_for(lock, 10s, [&] { return fast_seen; }) ? "released" : "alone";
        } else {
            fast_seen = true;
            cv.notify_all();
            out.body = "fast";
        }
        return out;
    });
    ASSERT_TRUE(server) << server.error().message;
    auto open_connection = [&] {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((*server)->port());
        EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        return fd;
    };
    auto send_get = [](int fd, const std::string& path) {
        const std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
        (void)!write(fd, req.data(), req.size());
    };
    auto body_of = [](int fd) {
        std::string out;
        char buf[4096];
        for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
        close(fd);
        auto end = out.find("\r\n\r\n");
        return end == std::string::npos ? out : out.substr(end + 4);
    };
    const int a = open_connection();
    const int b = open_connection();
    std::this_thread::sleep_for(100ms);  // both accepted and handed to workers, still idle
    send_get(a, "/slow");
    std::this_thread::sleep_for(100ms);  // /slow is waiting in its worker
    send_get(b, "/fast");
    EXPECT_EQ(body_of(b), "fast");
    EXPECT_EQ(body_of(a), "released");
}

TEST(WebUnit, AccessRuleGlobs) {
    query::AccessRule alice({"alice@example.com"});
    EXPECT_TRUE(alice.allows_mailbox("alice@example.com"));
    EXPECT_TRUE(alice.allows_mailbox("Alice@Example.com"));  // folded like the index
    EXPECT_FALSE(alice.allows_mailbox("alice@example.com.evil"));
    EXPECT_FALSE(alice.allows_mailbox("bob@example.com"));
    EXPECT_FALSE(alice.everything());
    query::AccessRule shared({"shared-*@example.com", "team?@example.org"});
    EXPECT_TRUE(shared.allows_mailbox("shared-sales@example.com"));
    EXPECT_TRUE(shared.allows_mailbox("team1@example.org"));
    EXPECT_FALSE(shared.allows_mailbox("team12@example.org"));
    query::AccessRule all({"*"});
    EXPECT_TRUE(all.everything());
    EXPECT_TRUE(all.allows_mailbox("anything"));
    query::AccessRule none({});
    EXPECT_FALSE(none.allows_mailbox("alice@example.com"));
    index::DocData d;
    d.locations = {{"s", "alice@example.com", "Inbox", "1"}, {"s", "bob@example.com", "Secret", "2"}};
    auto v = alice.visible(d);
    ASSERT_EQ(v.locations.size(), 1u);
    EXPECT_EQ(v.locations[0].mailbox, "alice@example.com");
}

TEST(WebUnit, AccessRuleFilterOnAnIndex) {
    TempDir t;
    Xapian::WritableDatabase w((t / "db").string(), Xapian::DB_CREATE_OR_OPEN);
    for (const char* mb : {"alice@example.com", "bob@example.com", "alice@example.com"}) {
        Xapian::Document doc;
        doc.add_boolean_term(std::string("XMB") + mb);
        doc.add_boolean_term("Bword");
        w.add_document(doc);
    }
    w.commit();
    Xapian::Database db((t / "db").string());
    query::AccessRule alice({"alice@*"});
    EXPECT_TRUE(alice.allows(db, 1));
    EXPECT_FALSE(alice.allows(db, 2));
    EXPECT_TRUE(alice.allows(db, 3));
    EXPECT_FALSE(alice.allows(db, 0));
    EXPECT_FALSE(alice.allows(db, 4));
    EXPECT_FALSE(alice.allows(db, ~0ull));
    // OR inside the user's query cannot reach outside the filter.
    Xapian::Query widening(Xapian::Query::OP_OR, Xapian::Query("Bword"), Xapian::Query("XMBbob@example.com"));
    Xapian::Enquire e(db);
    e.set_query(alice.restrict(db, widening));
    Xapian::MSet m = e.get_mset(0, 10);
    EXPECT_EQ(m.size(), 2u);
    for (auto it = m.begin(); it != m.end(); ++it) EXPECT_NE(*it, 2u);
    e.set_query(query::AccessRule({"nobody@*"}).restrict(db, Xapian::Query::MatchAll));
    EXPECT_EQ(e.get_mset(0, 10).size(), 0u);
}

TEST(WebUnit, NextMustBeARelativePath) {
    EXPECT_EQ(web::safe_next("/m/12"), "/m/12");
    EXPECT_EQ(web::safe_next("/search?q=a%20b"), "/search?q=a%20b");
    for (const char* bad : {"", "//evil.example", "/\\evil.example", "http://evil.example/", "evil", "javascript:alert(1)",
                            "/a\r\nSet-Cookie: x=y", "/a\\b"})
        EXPECT_EQ(web::safe_next(bad), "/") << bad;
}

TEST(WebUnit, FormsUrlsAndListen) {
    auto f = web::parse_form("a=1&b=x+y%21&c&d=%zz&a=2");
    EXPECT_EQ(f["a"], "1");  // first wins
    EXPECT_EQ(f["b"], "x y!");
    EXPECT_EQ(f["c"], "");
    EXPECT_EQ(f["d"], "%zz");
    EXPECT_EQ(web::url_decode("12%2F..%2F13", false), "12/../13");
    EXPECT_EQ(web::url_decode("a+b%", false), "a+b%");
    EXPECT_EQ(web::url_component("a b/<é>"), "a%20b%2F%3C%C3%A9%3E");
    auto l = web::parse_listen("127.0.0.1:8025");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->first, "127.0.0.1");
    EXPECT_EQ(l->second, 8025);
    auto v6 = web::parse_listen("[::1]:0");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->first, "::1");
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "[::1]8025", "host:abc"})
        EXPECT_FALSE(web::parse_listen(bad)) << bad;
}

TEST(WebUnit, EscapingReplacesMarkupAndBadUtf8) {
    EXPECT_EQ(web::esc("<script>\"x\"&'y'</script>"), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
    EXPECT_EQ(web::esc("caf\xc3\xa9"), "caf\xc3\xa9");
    EXPECT_EQ(web::esc("a\xff<"), "a\xEF\xBF\xBD&lt;");
    EXPECT_EQ(web::esc("\xe2\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(WebUnit, ThrottleCountsUsersAndAddresses) {
    web::LoginThrottle::Options o;
    o.free_failures = 2;
    o.base_delay = 60s;
    web::LoginThrottle t(o);
    EXPECT_EQ(t.blocked_for("alice", "10.0.0.1"), 0);
    t.failed("alice", "10.0.0.1");
    EXPECT_EQ(t.blocked_for("alice", "10.0.0.1"), 0);
    t.failed("alice", "10.0.0.1");
    EXPECT_GT(t.blocked_for("alice", "10.0.0.1"), 0);
    EXPECT_GT(t.blocked_for("alice", "10.0.0.2"), 0);  // the user, from anywhere
    EXPECT_GT(t.blocked_for("carol", "10.0.0.1"), 0);  // the address, for any name
    EXPECT_EQ(t.blocked_for("carol", "10.0.0.2"), 0);
}

TEST(WebUnit, SessionsAreRandomHashedAndExpire) {
    web::SessionStore s(1s, 60s);
    web::User u{"alice", {"*"}, web::Role::user};
    std::string a = s.create(u), b = s.create(u);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.size(), 64u);
    auto got = s.get(a);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->user.name, "alice");
    EXPECT_EQ(got->csrf.size(), 64u);
    EXPECT_NE(got->csrf, a);
    EXPECT_FALSE(s.get(a + "0"));
    s.end(a);
    EXPECT_FALSE(s.get(a));
    std::this_thread::sleep_for(1100ms);
    EXPECT_FALSE(s.get(b));
}

TEST(WebUnit, PasswordsAndDurations) {
    auto h = web::hash_password("correct horse");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
    web::LocalAuthenticator auth({{"alice", *h, {"*"}, "auditor"}, {"nohash", "", {"*"}, "user"}});
    auto ok = auth.authenticate("alice", "correct horse");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->role, web::Role::auditor);
    EXPECT_FALSE(auth.authenticate("alice", "wrong"));
    EXPECT_FALSE(auth.authenticate("bob", "correct horse"));
    EXPECT_FALSE(auth.authenticate("nohash", ""));
    EXPECT_EQ(*web::parse_duration("30m"), 1800s);
    EXPECT_EQ(*web::parse_duration("12h"), 43200s);
    EXPECT_EQ(*web::parse_duration("5"), 5s);
    EXPECT_FALSE(web::parse_duration("5 minutes"));
    EXPECT_FALSE(web::parse_duration(""));
}

TEST(WebUnit, FacetLinksNarrowTheQuery) {
    EXPECT_EQ(query::narrow_query("", "mailbox", "a@b.c"), "mailbox:\"a@b.c\"");
    EXPECT_EQ(query::narrow_query("*", "year", "2023"), "date:2023");
    EXPECT_EQ(query::narrow_query("kernel OR patch", "folder", "Inbox/Sub \"x\""), "(kernel OR patch) folder:\"Inbox/Sub x\"");
}

}  // namespace
}  // namespace mv::test
