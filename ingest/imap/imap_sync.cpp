#include "ingest/imap/imap_sync.hpp"

#include <algorithm>
#include <chrono>

namespace mv::ingest::imap {
namespace {

std::string upper_ascii(std::string s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return s;
}

bool match_one(const std::string& pattern, const std::string& path) {
    if (net::glob_match(pattern, path)) return true;
    // INBOX is case-insensitive, also as the first level of a path.
    if (upper_ascii(path.substr(0, 5)) == "INBOX" && upper_ascii(pattern.substr(0, 5)) == "INBOX")
        return net::glob_match("INBOX" + pattern.substr(5), "INBOX" + path.substr(5));
    return false;
}

constexpr std::size_t k_window = 3;  // UID FETCH commands in flight

}  // namespace

std::string uidvalidity_key(const std::string& folder) { return "imap:" + folder + ":uidvalidity"; }
std::string last_uid_key(const std::string& folder) { return "imap:" + folder + ":last_uid"; }

bool folder_selected(const std::string& path, const std::vector<std::string>& folders,
                     const std::vector<std::string>& exclude) {
    bool in = std::any_of(folders.begin(), folders.end(), [&](const auto& p) { return match_one(p, path); });
    if (!in) return false;
    return std::none_of(exclude.begin(), exclude.end(), [&](const auto& p) { return match_one(p, path); });
}

Result<std::unique_ptr<Source>> open_imap_source(const SourceConfig& config,
                                                 std::map<std::string, std::string> checkpoints) {
    auto account = net::read_account(config, "imap");
    if (!account) return fail(account.error());
    auto client = Client::open(*account);
    if (!client) return fail(client.error());
    return std::unique_ptr<Source>(new ImapSource(*account, std::move(checkpoints), std::move(*client)));
}

ImapSource::ImapSource(net::Account account, std::map<std::string, std::string> checkpoints,
                       std::unique_ptr<Client> client)
    : account_(std::move(account)),
      checkpoints_(std::move(checkpoints)),
      client_(std::move(client)),
      queue_(account_.queue_messages, account_.queue_bytes) {
    thread_ = std::thread([this] { run(); });
}

ImapSource::~ImapSource() {
    queue_.stop();
    if (thread_.joinable()) thread_.join();
}

const SourceReport& ImapSource::report() const {
    std::lock_guard lk(mu_);
    return report_;
}

void ImapSource::add_error(const std::string& line, std::uint64_t failed, bool unreachable) {
    net::log(line);
    std::lock_guard lk(mu_);
    report_.errors.push_back(line);
    report_.failed += failed;
    if (unreachable) report_.unreachable = true;
}

std::optional<RawMessage> ImapSource::next() { return queue_.pop(); }

void ImapSource::on_durable(const std::vector<std::uint64_t>& acks) {
    if (!account_.delete_after_archive) return;
    std::lock_guard lk(mu_);
    for (auto a : acks) {
        std::size_t idx = static_cast<std::size_t>(a >> 32);
        if (idx == 0 || idx > folders_.size()) continue;
        folders_[idx - 1].durable.push_back(static_cast<std::uint32_t>(a & 0xffffffffu));
    }
}

Result<void> ImapSource::reconnect() {
    if (client_) client_.reset();
    Error last;
    for (int attempt = 1; attempt <= account_.reconnect_attempts; ++attempt) {
        if (queue_.stopped()) return fail(Error::Kind::failed, "stopped");
        std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
        auto c = Client::open(account_);
        if (c) {
            client_ = std::move(*c);
            net::log("source '" + account_.source + "': reconnected (attempt " + std::to_string(attempt) + ")");
            return ok();
        }
        last = c.error();
        if (last.kind == Error::Kind::auth) break;
    }
    return fail(last);
}

void ImapSource::run() {
    auto folders = client_->list();
    if (!folders) {
        add_error(folders.error().message, 0, true);
        queue_.close();
        return;
    }
    {
        std::lock_guard lk(mu_);
        for (auto& f : *folders)
            if (f.selectable && folder_selected(f.path, account_.folders, account_.exclude))
                folders_.push_back(FolderState{f, {}});
    }
    net::log("source '" + account_.source + "': " + std::to_string(folders_.size()) + " folders to sync");
    for (std::size_t i = 0; i < folders_.size(); ++i)
        if (!sync_folder(i)) break;
    if (client_) client_->logout();
    client_.reset();
    queue_.close();
}

bool ImapSource::sync_folder(std::size_t index) {
    const Folder folder = folders_[index].folder;  // copy: folders_ is only appended before the fetch
    const std::string vkey = checkpoint_key(account_.source, uidvalidity_key(folder.path));
    const std::string ukey = checkpoint_key(account_.source, last_uid_key(folder.path));
    const std::string where = "source '" + account_.source + "': folder '" + folder.path + "': ";
    std::uint32_t committed_last = 0;
    std::uint32_t known_validity = 0;
    if (auto it = checkpoints_.find(vkey); it != checkpoints_.end()) known_validity = static_cast<std::uint32_t>(std::stoul(it->second));
    if (auto it = checkpoints_.find(ukey); it != checkpoints_.end()) committed_last = static_cast<std::uint32_t>(std::stoul(it->second));

    // Dovecot runs pipelined FETCH commands in parallel, so UIDs arrive out of order: the
    // checkpoint is the low watermark below which every listed UID has been handed over.
    std::vector<std::uint32_t> uids;
    std::vector<char> done;
    std::size_t watermark = 0, done_count = 0, done_at_failure = static_cast<std::size_t>(-1);
    std::uint32_t base = 0, validity = 0;
    bool listed = false;
    int stalls = 0;
    auto remaining = [&]() -> std::uint64_t { return listed ? uids.size() - done_count : 1; };
    auto dropped = [&](const Error& e) {  // true: retry after reconnecting
        client_.reset();
        if (done_count != done_at_failure) stalls = 0;
        done_at_failure = done_count;
        if (++stalls > account_.reconnect_attempts) {
            add_error(where + net::detail(e.message) + " (no progress after " + std::to_string(stalls - 1) +
                      " reconnects, skipping the folder)", remaining());
            return false;
        }
        net::log(e.message + "; reconnecting to continue folder '" + folder.path + "'");
        return true;
    };
    for (;;) {
        if (!client_) {
            auto r = reconnect();
            if (!r) {
                add_error(where + net::detail(r.error().message) + "; giving up after " + std::to_string(account_.reconnect_attempts) +
                          " reconnect attempts", remaining(), fetched_ == 0);
                return false;  // the server is gone: the other folders would fail alike
            }
        }
        auto info = client_->select(folder.raw, true);
        if (!info) {
            if (info.error().kind == Error::Kind::unreachable) {
                if (dropped(info.error())) continue;
                return true;
            }
            add_error(where + net::detail(info.error().message), remaining());
            return true;
        }
        if (!listed) {
            if (known_validity != 0 && info->uidvalidity != known_validity) {
                net::log(where + "UIDVALIDITY changed (" + std::to_string(known_validity) + " -> " +
                         std::to_string(info->uidvalidity) + "), re-reading the folder");
                committed_last = 0;
            }
            validity = info->uidvalidity;
            base = committed_last;
            {
                std::lock_guard lk(mu_);
                folders_[index].validity = validity;
                folders_[index].archived_upto = committed_last;
            }
            if (info->exists > 0) {
                auto found = client_->uids_from(base + 1);
                if (!found) {
                    if (found.error().kind == Error::Kind::unreachable) {
                        if (dropped(found.error())) continue;
                        return true;
                    }
                    add_error(where + net::detail(found.error().message), remaining());
                    return true;
                }
                uids = std::move(*found);
            }
            done.assign(uids.size(), 0);
            expected_ += uids.size();
            listed = true;
        } else if (info->uidvalidity != validity) {
            add_error(where + "UIDVALIDITY changed during the run; the folder is read again on the next run", remaining());
            return true;
        }
        std::vector<std::uint32_t> todo;
        for (std::size_t i = 0; i < uids.size(); ++i)
            if (!done[i]) todo.push_back(uids[i]);
        if (todo.empty()) break;
        const std::string validity_text = std::to_string(validity);
        bool stopped = false;
        auto r = client_->fetch(todo, account_.fetch_batch, k_window, "(UID FLAGS INTERNALDATE BODY.PEEK[])",
                                [&](Fetched&& f) {
                                    auto it = std::lower_bound(uids.begin(), uids.end(), f.uid);
                                    if (it == uids.end() || *it != f.uid) return true;  // not asked for
                                    std::size_t i = static_cast<std::size_t>(it - uids.begin());
                                    if (done[i]) return true;  // replayed after a reconnect
                                    done[i] = 1;
                                    ++done_count;
                                    ++fetched_;
                                    while (watermark < uids.size() && done[watermark]) ++watermark;
                                    std::uint32_t safe = watermark ? uids[watermark - 1] : base;
                                    RawMessage m;
                                    m.bytes = std::move(*f.body);
                                    m.where = index::Location{account_.source, account_.username, folder.path,
                                                              std::to_string(f.uid)};
                                    m.flags = std::move(f.flags);
                                    m.fallback_date = f.internal_date;
                                    m.checkpoint = {{vkey, validity_text}, {ukey, std::to_string(safe)}};
                                    m.ack = (static_cast<std::uint64_t>(index + 1) << 32) | f.uid;
                                    if (!queue_.push(std::move(m))) {
                                        stopped = true;
                                        return false;
                                    }
                                    return true;
                                });
        if (stopped) return false;
        if (r) break;
        if (r.error().kind != Error::Kind::unreachable) {
            add_error(where + net::detail(r.error().message), remaining());
            return true;
        }
        if (!dropped(r.error())) return true;
    }
    net::log(where + std::to_string(done_count) + " messages fetched");
    return true;
}

void ImapSource::finish() {
    if (finished_) return;
    finished_ = true;
    queue_.close();
    if (thread_.joinable()) thread_.join();
    if (!account_.delete_after_archive) return;
    std::vector<FolderState> todo;
    {
        std::lock_guard lk(mu_);
        for (auto& f : folders_)
            if (!f.durable.empty()) todo.push_back(f);
    }
    if (todo.empty()) return;
    auto client = Client::open(account_);
    if (!client) {
        add_error("source '" + account_.source + "': delete_after_archive: " + net::detail(client.error().message));
        return;
    }
    for (auto& f : todo) {
        std::sort(f.durable.begin(), f.durable.end());
        f.durable.erase(std::unique(f.durable.begin(), f.durable.end()), f.durable.end());
        auto sel = (*client)->select(f.folder.raw, false);
        if (!sel) {
            add_error("source '" + account_.source + "': folder '" + f.folder.path + "': cannot delete archived messages: " +
                      net::detail(sel.error().message));
            continue;
        }
        if (sel->uidvalidity != f.validity) {
            add_error("source '" + account_.source + "': folder '" + f.folder.path +
                      "': UIDVALIDITY changed since the fetch; not deleting anything there");
            continue;
        }
        auto n = (*client)->delete_uids(f.durable, f.archived_upto);
        if (!n) {
            add_error("source '" + account_.source + "': folder '" + f.folder.path + "': deleting archived messages failed: " +
                      net::detail(n.error().message));
            continue;
        }
        net::log("source '" + account_.source + "': folder '" + f.folder.path + "': deleted " + std::to_string(*n) +
                 " archived messages from the server");
    }
    (*client)->logout();
}

}  // namespace mv::ingest::imap
