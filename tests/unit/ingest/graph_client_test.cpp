// Graph error lines and the per-mailbox gate.
#include <gtest/gtest.h>

#include <atomic>

#include "ingest/graph/graph_client.hpp"

namespace mv::ingest::graph {
namespace {

TEST(GraphErrors, ParsesTheErrorObject) {
    auto e = parse_graph_error(R"({"error":{"code":"ErrorAccessDenied","message":"Access is denied.","innerError":{"request-id":"x"}}})");
    EXPECT_EQ(e.code, "ErrorAccessDenied");
    EXPECT_EQ(e.message, "Access is denied.");
    EXPECT_EQ(parse_graph_error("not json").code, "");
}

struct Case {
    long status;
    std::string code;
    Error::Kind kind;
    std::string advice;
};

TEST(GraphErrors, OneLineWithCodeAndWhatToDo) {
    for (const auto& c : std::vector<Case>{
             {403, "ErrorAccessDenied", Error::Kind::auth, "Mail.Read"},
             {401, "InvalidAuthenticationToken", Error::Kind::auth, "admin consent"},
             {404, "ErrorInvalidUser", Error::Kind::not_found, "`mailboxes`"},
             {404, "MailboxNotEnabledForRESTAPI", Error::Kind::not_found, "no Exchange Online mailbox"},
             {429, "TooManyRequests", Error::Kind::unreachable, "throttled"},
             {503, "ServiceUnavailable", Error::Kind::unreachable, "run again later"},
         }) {
        std::string body = R"({"error":{"code":")" + c.code + R"(","message":"m"}})";
        Error e = describe_graph_error("office", "bob@contoso.test", "listing folders", c.status, body);
        EXPECT_EQ(e.kind, c.kind) << c.code;
        EXPECT_NE(e.message.find("source 'office': mailbox bob@contoso.test: listing folders: Graph " + c.code + " (" +
                                 std::to_string(c.status) + ")"),
                  std::string::npos)
            << e.message;
        EXPECT_NE(e.message.find(c.advice), std::string::npos) << e.message;
        EXPECT_EQ(e.message.find('\n'), std::string::npos);
    }
}

TEST(MailboxGate, UnlimitedNeverBlocks) {
    MailboxGate gate(0, std::chrono::milliseconds(1000));
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(gate.before_send(nullptr));
}

TEST(MailboxGate, StopsWaitingWhenStopped) {
    MailboxGate gate(2, std::chrono::hours(1));
    std::atomic<bool> stop{false};
    EXPECT_TRUE(gate.before_send(&stop));
    EXPECT_TRUE(gate.before_send(&stop));
    stop = true;
    EXPECT_FALSE(gate.before_send(&stop)) << "the window is full and the run is stopping";
}

TEST(MailboxGate, PauseHoldsEverySender) {
    MailboxGate gate(0, std::chrono::milliseconds(1));
    gate.pause_for(std::chrono::hours(1));
    std::atomic<bool> stop{true};
    EXPECT_FALSE(gate.before_send(&stop));
}

}  // namespace
}  // namespace mv::ingest::graph
