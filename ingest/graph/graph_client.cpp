#include "ingest/graph/graph_client.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace mv::ingest::graph {

bool sleep_unless(const std::atomic<bool>* stop, std::chrono::milliseconds d) {
    auto until = Clock::now() + d;
    while (Clock::now() < until) {
        if (stop && stop->load()) return false;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(50)));
    }
    return !(stop && stop->load());
}

MailboxGate::MailboxGate(long limit, std::chrono::milliseconds window) : limit_(limit), window_(window) {}

bool MailboxGate::before_send(const std::atomic<bool>* stop) {
    for (;;) {
        Clock::time_point wait_until;
        {
            std::lock_guard lk(mu_);
            auto now = Clock::now();
            if (now < paused_until_) {
                wait_until = paused_until_;
            } else if (limit_ > 0) {
                while (!sent_.empty() && sent_.front() + window_ <= now) sent_.pop_front();
                if (static_cast<long>(sent_.size()) < limit_) {
                    sent_.push_back(now);
                    return true;
                }
                wait_until = sent_.front() + window_;
            } else {
                return true;
            }
        }
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(wait_until - Clock::now()) + std::chrono::milliseconds(1);
        if (!sleep_unless(stop, d)) return false;
    }
}

void MailboxGate::pause_for(std::chrono::milliseconds d) {
    std::lock_guard lk(mu_);
    paused_until_ = std::max(paused_until_, Clock::now() + d);
}

GraphClient::GraphClient(GraphSettings settings, std::shared_ptr<oauth::TokenCache> tokens)
    : settings_(std::move(settings)), tokens_(std::move(tokens)) {}

std::chrono::milliseconds GraphClient::backoff(int attempt) {
    thread_local std::mt19937 rng(std::random_device{}());
    long base = settings_.retry_base_ms << std::min(attempt - 1, 6);
    base = std::min<long>(base, 60000);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return std::chrono::milliseconds(static_cast<long>(static_cast<double>(base) * jitter(rng)));
}

Result<oauth::HttpResponse> GraphClient::get(oauth::HttpClient& http, const std::string& url, MailboxGate* gate,
                                             const std::vector<std::string>& headers, const std::atomic<bool>* stop) {
    int attempts = 0, throttles = 0, renewals = 0;
    for (;;) {
        if (gate && !gate->before_send(stop)) return fail(Error::Kind::failed, "stopped");
        if (stop && stop->load()) return fail(Error::Kind::failed, "stopped");
        auto tok = tokens_->token();
        if (!tok) return fail(tok.error());
        std::vector<std::string> h;
        h.reserve(headers.size() + 1);
        h.push_back("Authorization: Bearer " + *tok);
        h.insert(h.end(), headers.begin(), headers.end());
        ++counters.requests;
        http.set_timeouts(settings_.connect_timeout_s, settings_.timeout_s);
        auto r = http.get(url, h);
        if (!r) {
            if (++attempts > settings_.max_retries)
                return fail(Error::Kind::unreachable, "source '" + settings_.source + "': " + r.error().message);
            ++counters.retries;
            if (!sleep_unless(stop, backoff(attempts))) return fail(Error::Kind::failed, "stopped");
            continue;
        }
        long st = r->status;
        if (st == 401 && renewals < 2) {
            ++renewals;
            ++counters.renewals;
            auto t2 = tokens_->renew(*tok);
            if (!t2) return fail(t2.error());
            continue;
        }
        bool throttled = st == 429;
        bool transient = st == 500 || st == 502 || st == 503 || st == 504;
        if (throttled || transient) {
            if (throttled) ++counters.throttled;
            int& n = throttled ? throttles : attempts;
            if (++n > (throttled ? settings_.max_throttle_retries : settings_.max_retries)) return r;
            ++counters.retries;
            std::chrono::milliseconds delay{0};
            if (!r->retry_after.empty() && std::all_of(r->retry_after.begin(), r->retry_after.end(), ::isdigit)) {
                long s = std::min<long>(std::stol(r->retry_after), settings_.max_retry_after_s);
                delay = std::chrono::milliseconds(s * 1000);
            } else {
                delay = backoff(n);
            }
            if (gate && (throttled || st == 503)) {
                gate->pause_for(delay);  // the whole mailbox waits; before_send sleeps
            } else if (!sleep_unless(stop, delay)) {
                return fail(Error::Kind::failed, "stopped");
            }
            continue;
        }
        return r;
    }
}

GraphErrorInfo parse_graph_error(const std::string& body) {
    GraphErrorInfo info;
    try {
        auto j = nlohmann::json::parse(body);
        if (j.contains("error") && j["error"].is_object()) {
            info.code = j["error"].value("code", "");
            info.message = j["error"].value("message", "");
        }
    } catch (const std::exception&) {
    }
    return info;
}

Error describe_graph_error(const std::string& source, const std::string& mailbox, const std::string& what, long status,
                           const std::string& body) {
    auto info = parse_graph_error(body);
    std::string code = info.code.empty() ? "HTTP" : info.code;
    std::string advice;
    Error::Kind kind = Error::Kind::failed;
    if (status == 401) {
        kind = Error::Kind::auth;
        advice = "the access token was refused even after renewal: check that the app registration has the Mail.Read application permission with admin consent";
    } else if (status == 403) {
        kind = Error::Kind::auth;
        advice = "the app may not read this mailbox: grant the Mail.Read application permission with admin consent, and check any application access policy restricting the app";
    } else if (status == 404 && (code == "MailboxNotEnabledForRESTAPI" || code == "ResourceNotFound")) {
        kind = Error::Kind::not_found;
        advice = "this user has no Exchange Online mailbox (unlicensed, inactive or on-premises)";
    } else if (status == 404 && code == "ErrorInvalidUser") {
        kind = Error::Kind::not_found;
        advice = "no such mailbox in the tenant: check `mailboxes`";
    } else if (status == 404) {
        kind = Error::Kind::not_found;
        advice = "not found";
    } else if (status == 429) {
        kind = Error::Kind::unreachable;
        advice = "still throttled after many retries: run again later (progress is kept)";
    } else if (status >= 500) {
        kind = Error::Kind::unreachable;
        advice = "Graph kept failing after retries: run again later (progress is kept)";
    } else if (status == 400) {
        advice = "Graph rejected the request";
    } else {
        advice = "unexpected answer";
    }
    std::string msg = "source '" + source + "': ";
    if (!mailbox.empty()) msg += "mailbox " + mailbox + ": ";
    msg += what + ": Graph " + code + " (" + std::to_string(status) + "): " + advice;
    if (!info.message.empty()) msg += " [" + info.message + "]";
    return make_error(kind, msg);
}

}  // namespace mv::ingest::graph
