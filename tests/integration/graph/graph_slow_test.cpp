// The graph source with a large mailbox (label slow).
#include "fake_graph_fixture.hpp"

namespace mv::test::graph {
namespace {

TEST(GraphSlow, FiftyThousandMessageMailbox) {
    TempDir t;
    FakeGraph fake(t / "fake", {"--generate", "50000", "--folders", "Inbox,Inbox/Lists,Archive", "--concurrency", "4"});
    ASSERT_TRUE(fake.ok()) << fake.log();
    write_config(t.path(), fake, {});
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
