// The graph source with a large mailbox (label slow).
#include "fake_graph_fixture.hpp"

namespace mv::test::graph {
namespace {

TEST(GraphSlow, FiftyThousandMessageMailbox) {
    TempDir t;
    FakeGraph fake(t / "fake", {"--generate", "50000", "--folders", "Inbox,Inbox/Lists,Archive", "--concurrency", "4"});
    ASSERT_TRUE(fake.ok()) << fake.log();
    // The fake enforces no request window here, so the client need not pace itself to 10,000/10 min.
    write_config(t.path(), fake, {{"user0@contoso.test"}, "rate_limit = 0\n"});
    auto r = sync(t.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(archived_count(t.path()), 50000u);
    auto st = fake.stats();
    EXPECT_EQ(st["value_requests"], 50000);
    EXPECT_EQ(st["status_429_limit"], 0);
    EXPECT_LE(st["delta_requests"].get<long>(), 3 * 18 + 3) << "pages of 1000";
}

}  // namespace
}  // namespace mv::test::graph
