#pragma once
// What the IMAP and POP3 sources share: a logged-in client, a fetch thread feeding a bounded
// queue, the report, reconnecting with backoff, and delete-after-archive once at the end.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ingest/net/account.hpp"
#include "ingest/net/message_queue.hpp"
#include "ingest/source.hpp"

namespace mv::ingest::net {

// Built only as Running<S> (below): the fetch thread must neither see a half-built source nor
// outlive the members of one.
class FetchingSource : public Source {
  public:
    ~FetchingSource() override = default;  // a thread still running here terminates: not Running<S>

    std::string name() const override { return account_.source; }
    std::optional<RawMessage> next() override { return queue_.pop(); }
    std::uint64_t expected_total() const override { return expected_.load(); }
    // Keeps the acks (under mu_) only where delete_after_archive is set.
    void on_durable(const std::vector<std::uint64_t>& acks) override;
    // Once: waits for the fetch thread, then deletes what is durable when delete_after_archive is set.
    void finish() override;
    const SourceReport& report() const override;

  protected:
    FetchingSource(Account account, std::map<std::string, std::string> checkpoints);

    void start();  // runs fetch() on the fetch thread, then closes the queue
    void stop();   // consumer gone: stops the queue and joins the fetch thread
    // Logs and reports `line`; `failed` messages could not be fetched.
    void add_error(const std::string& line, std::uint64_t failed = 0, bool unreachable = false);

    virtual void fetch() = 0;                                               // fetch thread
    virtual void keep_durable(const std::vector<std::uint64_t>& acks) = 0;  // under mu_
    virtual void delete_durable() = 0;                                      // after the fetch thread

    Account account_;
    std::map<std::string, std::string> checkpoints_;  // committed values by full key
    MessageQueue queue_;
    std::atomic<std::uint64_t> expected_{0};
    mutable std::mutex mu_;  // report_ and the derived class's durable lists

  private:
    std::thread thread_;
    bool finished_ = false;
};

// Adds the logged-in `Client` (its static open(account) logs in) and reconnect().
template <class Client>
class ClientSource : public FetchingSource {
  protected:
    ClientSource(Account account, std::map<std::string, std::string> checkpoints, std::unique_ptr<Client> client)
        : FetchingSource(std::move(account), std::move(checkpoints)), client_(std::move(client)) {}

    // Drops the connection and logs in again: up to reconnect_attempts tries with a growing
    // pause; an auth error ends it early.
    Result<void> reconnect() {
        client_.reset();
        Error last;
        for (int attempt = 1; attempt <= account_.reconnect_attempts; ++attempt) {
            if (queue_.stopped()) return fail(Error::Kind::failed, "stopped");
            std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
            auto c = Client::open(account_);
            if (c) {
                client_ = std::move(*c);
                log("source '" + account_.source + "': reconnected (attempt " + std::to_string(attempt) + ")");
                return ok();
            }
            last = c.error();
            if (last.kind == Error::Kind::auth) break;
        }
        return fail(last);
    }

    // reconnect(); a failure is reported as giving up `failed` messages, and gives false.
    bool reconnect_or_give_up(const std::string& where, std::uint64_t failed, bool unreachable) {
        auto r = reconnect();
        if (!r)
            add_error(where + detail(r.error().message) + "; giving up after " +
                      std::to_string(account_.reconnect_attempts) + " reconnect attempts", failed, unreachable);
        return r.has_value();
    }

    std::unique_ptr<Client> client_;  // fetch thread only
};

// S with its fetch thread, started once S is fully built and joined before S's members go.
template <class S>
class Running final : public S {
  public:
    template <class... Args>
    explicit Running(Args&&... args) : S(std::forward<Args>(args)...) {
        this->start();
    }
    ~Running() override { this->stop(); }
};

// The account of `config` read for `protocol` and a client logged in to it.
template <class Client>
struct Login { Account account; std::unique_ptr<Client> client; };
template <class Client>
Result<Login<Client>> log_in(const SourceConfig& config, const std::string& protocol) {
    auto account = read_account(config, protocol);
    if (!account) return fail(account.error());
    auto client = Client::open(*account);
    if (!client) return fail(client.error());
    return Login<Client>{std::move(*account), std::move(*client)};
}

// Logs in, then starts fetching into a new Running<S>.
template <class S, class Client>
Result<std::unique_ptr<Source>> open_source(const SourceConfig& config, const std::string& protocol,
                                            std::map<std::string, std::string> checkpoints) {
    auto login = log_in<Client>(config, protocol);
    if (!login) return fail(login.error());
    return std::unique_ptr<Source>(new Running<S>(std::move(login->account), std::move(checkpoints), std::move(login->client)));
}

// The first lines of `check SOURCE`: where it connected (and how securely), and as whom.
std::vector<std::string> check_header(const Account& account, bool tls);

}  // namespace mv::ingest::net
