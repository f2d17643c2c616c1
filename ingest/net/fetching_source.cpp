#include "ingest/net/fetching_source.hpp"

namespace mv::ingest::net {

FetchingSource::FetchingSource(Account account, std::map<std::string, std::string> checkpoints)
    : account_(std::move(account)),
      checkpoints_(std::move(checkpoints)),
      queue_(account_.queue_messages, account_.queue_bytes) {}

void FetchingSource::start() {
    thread_ = std::thread([this] {
        fetch();
        queue_.close();
    });
}

void FetchingSource::stop() {
    queue_.stop();
    if (thread_.joinable()) thread_.join();
}

const SourceReport& FetchingSource::report() const {
    std::lock_guard lk(mu_);
    return report_;
}

void FetchingSource::add_error(const std::string& line, std::uint64_t failed, bool unreachable) {
    log(line);
    std::lock_guard lk(mu_);
    report_.errors.push_back(line);
    report_.failed += failed;
    if (unreachable) report_.unreachable = true;
}

void FetchingSource::on_durable(const std::vector<std::uint64_t>& acks) {
    if (!account_.delete_after_archive) return;
    std::lock_guard lk(mu_);
    keep_durable(acks);
}

void FetchingSource::finish() {
    if (finished_) return;
    finished_ = true;
    queue_.close();
    if (thread_.joinable()) thread_.join();
    if (account_.delete_after_archive) delete_durable();
}

std::vector<std::string> check_header(const Account& account, bool tls) {
    return {"source '" + account.source + "': connected to " + account.describe() +
                (tls ? (account.endpoint.tls.trust_all ? ", TLS (certificate NOT verified)" : ", TLS (certificate verified)")
                     : ", no TLS"),
            "account: " + account.username};
}

}  // namespace mv::ingest::net
