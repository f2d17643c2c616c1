// TokenCache: caching, renewal before expiry and after a 401, identity-platform errors.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "ingest/oauth/client_credentials.hpp"

namespace mv::ingest::oauth {
namespace {

using namespace std::chrono_literals;

struct FakeEndpoint {
    int calls = 0;
    long expires_in = 3600;
    long status = 200;
    std::string error_body;
    std::string last_url, last_form;
    TokenTransport transport() {
        return [this](const std::string& url, const std::string& form) -> Result<HttpResponse> {
            ++calls;
            last_url = url;
            last_form = form;
            HttpResponse r;
            r.status = status;
            r.body = status == 200 ? "{\"token_type\":\"Bearer\",\"expires_in\":" + std::to_string(expires_in) +
                                         ",\"access_token\":\"tok" + std::to_string(calls) + "\"}"
                                   : error_body;
            return r;
        };
    }
};

ClientCredentials creds() {
    return {"office", "https://login.example/", "contoso.onmicrosoft.com", "client-1", "p@ss w0rd&=", "https://graph.example/.default"};
}

TEST(TokenCache, CachesUntilShortlyBeforeExpiry) {
    FakeEndpoint ep;
    auto now = std::chrono::steady_clock::time_point{} + 1000s;
    TokenCache cache(creds(), ep.transport(), [&] { return now; });
    EXPECT_EQ(*cache.token(), "tok1");
    EXPECT_EQ(*cache.token(), "tok1");
    EXPECT_EQ(ep.calls, 1);
    EXPECT_EQ(ep.last_url, "https://login.example/contoso.onmicrosoft.com/oauth2/v2.0/token");
    EXPECT_NE(ep.last_form.find("grant_type=client_credentials"), std::string::npos);
    EXPECT_NE(ep.last_form.find("client_secret=p%40ss%20w0rd%26%3D"), std::string::npos);
    EXPECT_NE(ep.last_form.find("scope=https%3A%2F%2Fgraph.example%2F.default"), std::string::npos);
    now += 3299s;  // 3600 - 300 = renewal point not reached yet
    EXPECT_EQ(*cache.token(), "tok1");
    now += 2s;
    EXPECT_EQ(*cache.token(), "tok2");
    EXPECT_EQ(ep.calls, 2);
}

TEST(TokenCache, ShortLifetimeRenewsAtFourFifths) {
    FakeEndpoint ep;
    ep.expires_in = 10;
    auto now = std::chrono::steady_clock::time_point{} + 5s;
    TokenCache cache(creds(), ep.transport(), [&] { return now; });
    EXPECT_EQ(*cache.token(), "tok1");
    now += 7s;
    EXPECT_EQ(*cache.token(), "tok1");
    now += 1s;
    EXPECT_EQ(*cache.token(), "tok2");
}

TEST(TokenCache, RenewAfter401IsSingleFlight) {
    FakeEndpoint ep;
    TokenCache cache(creds(), ep.transport());
    std::string first = *cache.token();
    EXPECT_EQ(*cache.renew(first), "tok2");
    // A second worker that saw the same 401 gets the already renewed token.
    EXPECT_EQ(*cache.renew(first), "tok2");
    EXPECT_EQ(ep.calls, 2);
    EXPECT_EQ(cache.fetches(), 2u);
}

TEST(TokenCache, ConcurrentCallersShareOneToken) {
    FakeEndpoint ep;
    TokenCache cache(creds(), ep.transport());
    std::vector<std::thread> ts;
    std::atomic<int> good{0};
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&] {
            for (int k = 0; k < 100; ++k)
                if (cache.token() && *cache.token() == "tok1") ++good;
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(good, 800);
    EXPECT_EQ(ep.calls, 1);
}

struct ErrorCase {
    long status;
    std::string error;
    long code;
    std::string expect;
};

TEST(TokenCache, IdentityPlatformErrorsBecomeOneLineWithCodeAndAdvice) {
    for (const auto& c : std::vector<ErrorCase>{
             {401, "invalid_client", 7000215, "Value (not its Secret ID)"},
             {401, "invalid_client", 7000222, "expired"},
             {400, "unauthorized_client", 700016, "client_id"},
             {400, "invalid_request", 90002, "tenant"},
             {400, "invalid_scope", 70011, "graph_url"},
             {400, "invalid_grant", 65001, "admin consent"},
         }) {
        FakeEndpoint ep;
        ep.status = c.status;
        ep.error_body = "{\"error\":\"" + c.error + "\",\"error_description\":\"AADSTS" + std::to_string(c.code) +
                        ": Something.\\r\\nTrace ID: 1\\r\\nCorrelation ID: 2\",\"error_codes\":[" + std::to_string(c.code) + "]}";
        TokenCache cache(creds(), ep.transport());
        auto t = cache.token();
        ASSERT_FALSE(t);
        EXPECT_EQ(t.error().kind, Error::Kind::auth);
        const auto& m = t.error().message;
        EXPECT_NE(m.find("source 'office'"), std::string::npos) << m;
        EXPECT_NE(m.find("AADSTS" + std::to_string(c.code)), std::string::npos) << m;
        EXPECT_NE(m.find(c.expect), std::string::npos) << m;
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
        EXPECT_EQ(m.find("Trace ID"), std::string::npos) << m;
        EXPECT_EQ(m.find("p@ss"), std::string::npos) << m;
    }
}

TEST(TokenCache, NonJsonErrorStillNamesTheStatus) {
    Error e = describe_token_error("office", 400, "<html>bad</html>");
    EXPECT_EQ(e.kind, Error::Kind::auth);
    EXPECT_NE(e.message.find("HTTP 400"), std::string::npos);
}

}  // namespace
}  // namespace mv::ingest::oauth
