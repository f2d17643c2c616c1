#pragma once
// OAuth 2.0 client-credentials tokens from the Microsoft identity platform, cached and shared.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "index/util/result.hpp"
#include "ingest/oauth/http.hpp"

namespace mv::ingest::oauth {

struct ClientCredentials {
    std::string source;         // source name, for error lines
    std::string authority_url;  // https://login.microsoftonline.com
    std::string tenant;
    std::string client_id;
    std::string client_secret;  // never logged
    std::string scope;          // {graph_url}/.default
};

// POSTs a form to a URL; the default uses HttpClient. Tests swap it.
using TokenTransport = std::function<Result<HttpResponse>(const std::string& url, const std::string& form)>;
using NowFn = std::function<std::chrono::steady_clock::time_point()>;

// Thread-safe token cache: one token for all workers, renewed shortly before expiry
// (min(300 s, expires_in / 5) early) and after a 401, single-flight.
class TokenCache {
  public:
    explicit TokenCache(ClientCredentials creds, TokenTransport transport = {}, NowFn now = {});

    // A valid access token; fetches one when none is cached or it is about to expire.
    Result<std::string> token();
    // `rejected` got a 401: drop it (unless another thread already renewed) and fetch anew.
    Result<std::string> renew(const std::string& rejected);
    std::uint64_t fetches() const;

  private:
    Result<std::string> fetch_locked();

    ClientCredentials creds_;
    TokenTransport transport_;
    NowFn now_;
    mutable std::mutex mu_;
    std::string token_;
    std::chrono::steady_clock::time_point renew_at_{};
    std::uint64_t fetches_ = 0;
};

// One line for a failed token request: source, AADSTS code, error and what to do.
Error describe_token_error(const std::string& source, long status, const std::string& body);

}  // namespace mv::ingest::oauth
