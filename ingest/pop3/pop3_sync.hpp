#pragma once
// The POP3 source: UIDL-incremental, pipelined RETR in a fetch thread, DELE after durable commit.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ingest/net/fetching_source.hpp"
#include "ingest/pop3/pop3_client.hpp"

namespace mv::ingest::pop3 {

// Checkpoint key (under checkpoint_key(source, ...)) marking one archived UIDL.
std::string uidl_key(const std::string& uidl);  // "pop3:uidl:<uidl>"

// Connects and logs in, then starts fetching; `checkpoints` are the committed values by full key.
Result<std::unique_ptr<Source>> open_pop3_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints);

// Built by open_pop3_source as net::Running<Pop3Source>.
class Pop3Source : public net::ClientSource<Client> {
  protected:
    using ClientSource::ClientSource;  // `client` is logged in

  private:
    void fetch() override;
    void keep_durable(const std::vector<std::uint64_t>& acks) override;
    void delete_durable() override;

    std::vector<std::string> uidls_;      // ack id - 1 -> UIDL (fixed before the first push), under mu_
    std::set<std::string> durable_;       // acked UIDLs, under mu_
};

}  // namespace mv::ingest::pop3
