#pragma once
// The POP3 source: UIDL-incremental, pipelined RETR in a fetch thread, DELE after durable commit.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ingest/net/account.hpp"
#include "ingest/net/message_queue.hpp"
#include "ingest/pop3/pop3_client.hpp"
#include "ingest/source.hpp"

namespace mv::ingest::pop3 {

// Checkpoint key (under checkpoint_key(source, ...)) marking one archived UIDL.
std::string uidl_key(const std::string& uidl);  // "pop3:uidl:<uidl>"

// Connects and logs in, then starts fetching; `checkpoints` are the committed values by full key.
Result<std::unique_ptr<Source>> open_pop3_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints);

class Pop3Source : public Source {
  public:
    Pop3Source(net::Account account, std::map<std::string, std::string> checkpoints, std::unique_ptr<Client> client);
    ~Pop3Source() override;

    std::string name() const override { return account_.source; }
    std::optional<RawMessage> next() override { return queue_.pop(); }
    std::uint64_t expected_total() const override { return expected_.load(); }
    void on_durable(const std::vector<std::uint64_t>& acks) override;
    void finish() override;
    const SourceReport& report() const override;

  private:
    void run();
    Result<void> reconnect();
    // Logs and reports `line`; `failed` messages could not be fetched.
    void add_error(const std::string& line, std::uint64_t failed = 0, bool unreachable = false);

    net::Account account_;
    std::map<std::string, std::string> checkpoints_;
    std::unique_ptr<Client> client_;
    net::MessageQueue queue_;
    std::atomic<std::uint64_t> expected_{0};
    mutable std::mutex mu_;
    std::vector<std::string> uidls_;      // ack id - 1 -> UIDL (fixed before the first push)
    std::set<std::string> durable_;       // acked UIDLs
    std::thread thread_;
    bool finished_ = false;
};

}  // namespace mv::ingest::pop3
