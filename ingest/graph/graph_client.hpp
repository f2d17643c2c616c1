#pragma once
// Authenticated Graph GETs with throttling discipline: per-mailbox gate (pause on 429, sliding
// request window), Retry-After or exponential backoff with jitter, one token renewal on 401.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "index/util/result.hpp"
#include "ingest/oauth/client_credentials.hpp"
#include "ingest/oauth/http.hpp"

namespace mv::ingest::graph {

using Clock = std::chrono::steady_clock;

// Sleeps up to `d`; returns early (false) when `stop` is set.
bool sleep_unless(const std::atomic<bool>* stop, std::chrono::milliseconds d);

// Request discipline for one mailbox: Exchange limits are per app and mailbox.
class MailboxGate {
  public:
    // At most `limit` requests in any `window` (0: unlimited).
    MailboxGate(long limit, std::chrono::milliseconds window);
    // Blocks while the mailbox is paused or its window is full; false when stopped.
    bool before_send(const std::atomic<bool>* stop);
    // Nobody sends to this mailbox for `d` (a 429's Retry-After).
    void pause_for(std::chrono::milliseconds d);

  private:
    std::mutex mu_;
    long limit_;
    std::chrono::milliseconds window_;
    std::deque<Clock::time_point> sent_;
    Clock::time_point paused_until_{};
};

struct GraphCounters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> throttled{0};  // 429 answers
    std::atomic<std::uint64_t> retries{0};    // 429/5xx/transport retries
    std::atomic<std::uint64_t> renewals{0};   // token renewals after 401
};

struct GraphSettings {
    std::string source;
    std::string graph_url;           // no trailing slash
    int max_retries = 8;             // 5xx and transport failures
    int max_throttle_retries = 60;   // 429
    long retry_base_ms = 1000;       // first backoff step
    long max_retry_after_s = 300;
    long timeout_s = 120;            // a request that receives under 1 KiB in this long fails (and is retried)
    long connect_timeout_s = 30;
};

class GraphClient {
  public:
    GraphClient(GraphSettings settings, std::shared_ptr<oauth::TokenCache> tokens);
    // GET `url` (absolute) with the bearer token. Retryable statuses are retried; the final answer
    // is returned whatever its status. Errors: auth (token), unreachable (transport), or stopped.
    Result<oauth::HttpResponse> get(oauth::HttpClient& http, const std::string& url, MailboxGate* gate,
                                    const std::vector<std::string>& headers, const std::atomic<bool>* stop);
    // {graph_url}/v1.0{path}
    std::string url(const std::string& path) const { return settings_.graph_url + "/v1.0" + path; }
    const GraphSettings& settings() const { return settings_; }
    oauth::TokenCache& tokens() { return *tokens_; }
    GraphCounters counters;

  private:
    std::chrono::milliseconds backoff(int attempt);
    GraphSettings settings_;
    std::shared_ptr<oauth::TokenCache> tokens_;
};

struct GraphErrorInfo {
    std::string code;     // error.code, or "" when the body is not a Graph error
    std::string message;  // error.message
};
GraphErrorInfo parse_graph_error(const std::string& body);

// One line: "source 'S': mailbox M: <what>: Graph CODE (STATUS): advice [message]".
Error describe_graph_error(const std::string& source, const std::string& mailbox, const std::string& what,
                           long status, const std::string& body);

}  // namespace mv::ingest::graph
