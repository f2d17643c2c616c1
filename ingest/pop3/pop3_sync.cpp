#include "ingest/pop3/pop3_sync.hpp"

#include <algorithm>

namespace mv::ingest::pop3 {
namespace {
constexpr std::size_t k_window = 64;  // RETR commands in flight with PIPELINING
}

std::string uidl_key(const std::string& uidl) { return "pop3:uidl:" + uidl; }

Result<std::unique_ptr<Source>> open_pop3_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints) {
    return net::open_source<Pop3Source, Client>(config, "pop3", std::move(checkpoints));
}

void Pop3Source::keep_durable(const std::vector<std::uint64_t>& acks) {
    for (auto a : acks)
        if (a >= 1 && a <= uidls_.size()) durable_.insert(uidls_[a - 1]);
}

void Pop3Source::fetch() {
    const std::string where = "source '" + account_.source + "': ";
    std::set<std::string> done;  // UIDLs handed over in this run
    std::size_t done_at_failure = static_cast<std::size_t>(-1);
    int stalls = 0;
    bool listed = false;
    auto remaining = [&]() -> std::uint64_t { return listed ? expected_.load() - done.size() : 1; };
    std::vector<std::string> wanted;  // UIDLs to fetch this run, for the completeness record
    // Every UIDL not handed over failed (or the maildrop as a whole, before its list).
    auto fail_rest = [&](const std::string& why) {
        if (!listed) tallies_.failed(account_.username, "INBOX", "", why);
        for (const auto& id : wanted)
            if (!done.count(id)) tallies_.failed(account_.username, "INBOX", id, why);
    };
    tallies_.selected(account_.username, "INBOX");
    for (;;) {
        if (!client_ && !reconnect_or_give_up(where, remaining(), done.empty())) {
            if (!queue_.stopped()) {
                std::lock_guard lk(mu_);
                fail_rest(report_.errors.empty() ? "the connection to the server was lost" : report_.errors.back());
            }
            break;
        }
        auto list = client_->uidl();
        std::vector<unsigned> todo;
        std::map<unsigned, std::string> uidl_of;
        if (list) {
            std::vector<std::string> archived_before;  // in a committed run, still on the server
            for (auto& [n, id] : *list) {
                if (checkpoints_.count(checkpoint_key(account_.source, uidl_key(id)))) {
                    archived_before.push_back(id);
                    continue;
                }
                if (done.count(id)) continue;
                todo.push_back(n);
                uidl_of[n] = id;
            }
            // With delete_after_archive these go too: a run stopped between its commit and its
            // DELE (kill -9, a lost connection, the option turned on later) left them there,
            // and no later run fetches them again to delete them then.
            if (account_.delete_after_archive && !archived_before.empty()) {
                std::lock_guard lk(mu_);
                durable_.insert(archived_before.begin(), archived_before.end());
            }
            if (!listed) {
                std::lock_guard lk(mu_);
                for (auto& [n, id] : uidl_of) uidls_.push_back(id);
                expected_ = todo.size();
                listed = true;
                for (auto& [n, id] : uidl_of) wanted.push_back(id);
                tallies_.listed(account_.username, "INBOX", list->size(), todo.size());
                net::log(where + std::to_string(list->size()) + " messages on the server, " + std::to_string(todo.size()) +
                         " new");
            }
        }
        Result<void> r = list ? ok() : Result<void>(fail(list.error()));
        bool stopped = false;
        if (r && !todo.empty()) {
            std::map<std::string, std::uint64_t> ack_of;
            {
                std::lock_guard lk(mu_);
                for (std::size_t i = 0; i < uidls_.size(); ++i) ack_of[uidls_[i]] = i + 1;
            }
            r = client_->retr(todo, k_window, [&](unsigned n, std::string&& bytes) {
                const std::string& id = uidl_of[n];
                if (!done.insert(id).second) return true;
                RawMessage m;
                m.bytes = std::move(bytes);
                m.where = index::Location{account_.source, account_.username, "INBOX", id};
                m.checkpoint = {{checkpoint_key(account_.source, uidl_key(id)), "1"}};
                auto a = ack_of.find(id);
                m.ack = a == ack_of.end() ? 0 : a->second;
                if (!queue_.push(std::move(m))) {
                    stopped = true;
                    return false;
                }
                return true;
            });
        }
        if (stopped) return;  // consumer gone; the queue is stopped
        if (r) {
            // The server answered every RETR: a UIDL not handed over was deleted meanwhile.
            tallies_.gone(account_.username, "INBOX",
                          static_cast<std::uint64_t>(std::count_if(wanted.begin(), wanted.end(), [&](const std::string& id) {
                              return !done.count(id);
                          })));
            break;
        }
        if (r.error().kind != Error::Kind::unreachable) {
            add_error(where + net::detail(r.error().message), remaining());
            fail_rest(net::detail(r.error().message));
            break;
        }
        client_.reset();
        if (done.size() != done_at_failure) stalls = 0;
        done_at_failure = done.size();
        if (++stalls > account_.reconnect_attempts) {
            add_error(where + net::detail(r.error().message) + " (no progress after " + std::to_string(stalls - 1) +
                      " reconnects)", remaining());
            fail_rest(net::detail(r.error().message) + " (no progress after reconnects)");
            break;
        }
        net::log(r.error().message + "; reconnecting to continue");
    }
    if (client_) {
        client_->quit();  // without DELE: nothing is removed here
        client_.reset();
    }
    net::log(where + std::to_string(done.size()) + " messages fetched");
}

void Pop3Source::delete_durable() {
    std::set<std::string> todo;
    {
        std::lock_guard lk(mu_);
        todo = durable_;
    }
    if (todo.empty()) return;
    const std::string where = "source '" + account_.source + "': ";
    auto client = Client::open(account_);
    if (!client) {
        add_error(where + "delete_after_archive: " + net::detail(client.error().message));
        return;
    }
    auto list = (*client)->uidl();  // message numbers are per session
    if (!list) {
        add_error(where + "delete_after_archive: " + net::detail(list.error().message));
        return;
    }
    std::vector<unsigned> numbers;
    for (auto& [n, id] : *list)
        if (todo.count(id)) numbers.push_back(n);
    if (auto r = (*client)->dele_and_quit(numbers); !r) {
        add_error(where + "delete_after_archive: " + net::detail(r.error().message));
        return;
    }
    net::log(where + "deleted " + std::to_string(numbers.size()) + " archived messages from the server");
}

}  // namespace mv::ingest::pop3
