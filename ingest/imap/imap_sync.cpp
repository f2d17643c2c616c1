#include "ingest/imap/imap_sync.hpp"

#include <algorithm>

namespace mv::ingest::imap {
namespace {

bool match_one(const std::string& pattern, const std::string& path) {
    if (net::glob_match(pattern, path)) return true;
    // INBOX is case-insensitive, also as the first level of a path.
    if (net::upper_ascii(path.substr(0, 5)) == "INBOX" && net::upper_ascii(pattern.substr(0, 5)) == "INBOX")
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
    return net::open_source<ImapSource, Client>(config, "imap", std::move(checkpoints));
}

void ImapSource::keep_durable(const std::vector<std::uint64_t>& acks) {
    for (auto a : acks) {
        std::size_t idx = static_cast<std::size_t>(a >> 32);
        if (idx == 0 || idx > folders_.size()) continue;
        folders_[idx - 1].durable.push_back(static_cast<std::uint32_t>(a & 0xffffffffu));
    }
}

void ImapSource::fetch() {
    auto folders = client_->list();
    if (!folders) {
        add_error(folders.error().message, 0, true);
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
    auto retry = [&](const Error& e) {  // true: reconnect and retry; false: reported
        if (e.kind != Error::Kind::unreachable) {
            add_error(where + net::detail(e.message), remaining());
            return false;
        }
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
        if (!client_ && !reconnect_or_give_up(where, remaining(), fetched_ == 0))
            return false;  // the server is gone: the other folders would fail alike
        auto info = client_->select(folder.raw, true);
        if (!info) {
            if (retry(info.error())) continue;
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
                    if (retry(found.error())) continue;
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
        if (!retry(r.error())) return true;
    }
    net::log(where + std::to_string(done_count) + " messages fetched");
    return true;
}

void ImapSource::delete_durable() {
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
