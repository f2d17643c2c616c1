#include "ingest/imap/imap_sync.hpp"

#include <algorithm>

#include "index/util/sha256.hpp"

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
std::string below_key(const std::string& folder) { return "imap:" + folder + ":below"; }
std::string mark_key(const std::string& folder) { return "imap:" + folder + ":mark"; }

std::string header_mark(std::string_view message) {
    std::string head;
    head.reserve(std::min<std::size_t>(message.size(), 1 << 16));
    for (char c : message) {
        if (c == '\r') continue;
        if (c == '\n' && !head.empty() && head.back() == '\n') break;  // the blank line ends the header
        head += c;
    }
    while (!head.empty() && head.back() == '\n') head.pop_back();
    return to_hex(sha256(head)).substr(0, 16) + ":" + std::to_string(head.size());
}

std::string renumbering_doubt(const ArchivedUpto& archived, const FolderNow& now) {
    if (archived.last_uid == 0) return {};
    const std::string last = std::to_string(archived.last_uid);
    if (now.uidnext != 0 && now.uidnext <= archived.last_uid)
        return "UIDNEXT " + std::to_string(now.uidnext) + " is not past the archived UID " + last;
    std::uint64_t below = now.exists >= now.above ? now.exists - now.above : 0;
    if (archived.below && below > *archived.below)
        return std::to_string(below) + " messages at or below UID " + last + ", " + std::to_string(*archived.below) +
               " when archived";
    if (!archived.mark.empty() && now.mark && *now.mark != archived.mark)
        return "UID " + last + " is another message than the archived one";
    return {};
}

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
            if (f.selectable && folder_selected(f.path, account_.folders, account_.exclude)) {
                folders_.push_back(FolderState{f, {}});
                tallies_.selected(account_.username, f.path);
            }
    }
    net::log("source '" + account_.source + "': " + std::to_string(folders_.size()) + " folders to sync");
    for (std::size_t i = 0; i < folders_.size(); ++i)
        if (!sync_folder(i)) {
            if (queue_.stopped()) break;  // stopped (deadline, Ctrl-C): the rest is pending, not failed
            for (std::size_t j = i + 1; j < folders_.size(); ++j)
                tallies_.failed(account_.username, folders_[j].folder.path, "", "not reached: the connection to the server was lost");
            break;
        }
    if (client_) client_->logout();
    client_.reset();
}

bool ImapSource::sync_folder(std::size_t index) {
    const Folder folder = folders_[index].folder;  // copy: folders_ is only appended before the fetch
    const std::string vkey = checkpoint_key(account_.source, uidvalidity_key(folder.path));
    const std::string ukey = checkpoint_key(account_.source, last_uid_key(folder.path));
    const std::string where = "source '" + account_.source + "': folder '" + folder.path + "': ";
    const std::string bkey = checkpoint_key(account_.source, below_key(folder.path));
    const std::string mkey = checkpoint_key(account_.source, mark_key(folder.path));
    std::uint32_t committed_last = 0;
    std::uint32_t known_validity = 0;
    ArchivedUpto archived;
    auto number = [&](const std::string& key) -> std::optional<std::uint64_t> {
        auto it = checkpoints_.find(key);
        if (it == checkpoints_.end()) return std::nullopt;
        try {
            return static_cast<std::uint64_t>(std::stoull(it->second));
        } catch (...) {
            return std::nullopt;  // unreadable: as if absent (the folder is then read from its start)
        }
    };
    known_validity = static_cast<std::uint32_t>(number(vkey).value_or(0));
    committed_last = static_cast<std::uint32_t>(number(ukey).value_or(0));
    archived.below = number(bkey);
    if (auto it = checkpoints_.find(mkey); it != checkpoints_.end()) archived.mark = it->second;

    // Dovecot runs pipelined FETCH commands in parallel, so UIDs arrive out of order: the
    // checkpoint is the low watermark below which every listed UID has been handed over.
    std::vector<std::uint32_t> uids;
    std::vector<std::string> marks;  // header_mark of each fetched UID, for the checkpoint
    std::vector<char> done;
    std::size_t watermark = 0, done_count = 0, done_at_failure = static_cast<std::size_t>(-1);
    std::uint32_t base = 0, validity = 0;
    std::uint64_t below_base = 0;  // messages with UID <= base when listed
    std::string base_mark;         // header_mark of UID base (when verified)
    bool listed = false;
    int stalls = 0;
    auto remaining = [&]() -> std::uint64_t { return listed ? uids.size() - done_count : 1; };
    // The completeness record: every UID not handed over failed (or the folder, before its list).
    auto fail_rest = [&](const std::string& why) {
        if (!listed) {
            tallies_.failed(account_.username, folder.path, "", why);
            return;
        }
        for (std::size_t i = 0; i < uids.size(); ++i)
            if (!done[i]) tallies_.failed(account_.username, folder.path, std::to_string(uids[i]), why);
    };
    auto last_error = [&] {
        std::lock_guard lk(mu_);
        return report_.errors.empty() ? std::string("the connection to the server was lost") : report_.errors.back();
    };
    auto retry = [&](const Error& e) {  // true: reconnect and retry; false: reported
        if (e.kind != Error::Kind::unreachable) {
            add_error(where + net::detail(e.message), remaining());
            fail_rest(net::detail(e.message));
            return false;
        }
        client_.reset();
        if (done_count != done_at_failure) stalls = 0;
        done_at_failure = done_count;
        if (++stalls > account_.reconnect_attempts) {
            add_error(where + net::detail(e.message) + " (no progress after " + std::to_string(stalls - 1) +
                      " reconnects, skipping the folder)", remaining());
            fail_rest(net::detail(e.message) + " (no progress after reconnects)");
            return false;
        }
        net::log(e.message + "; reconnecting to continue folder '" + folder.path + "'");
        return true;
    };
    for (;;) {
        if (!client_ && !reconnect_or_give_up(where, remaining(), fetched_ == 0)) {
            if (!queue_.stopped()) fail_rest(last_error());
            return false;  // the server is gone: the other folders would fail alike
        }
        // SELECT, not EXAMINE: Courier keeps the UIDs (and UIDVALIDITY) it gives new mail only in a
        // read-write session; BODY.PEEK[] still marks nothing read.
        auto info = client_->select(folder.raw, Client::Access::read_write);
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
            std::vector<std::uint32_t> found;
            if (committed_last != 0) {
                // Cross-check the checkpoint: on any doubt read the folder from its start and let
                // dedupe absorb the repeats, never skip mail behind numbers given out twice.
                FolderNow now;
                now.exists = info->exists;
                now.uidnext = info->uidnext;
                if (now.uidnext == 0) {  // Courier's SELECT does not say
                    auto next = client_->status_uidnext(folder.raw);
                    if (!next && next.error().kind == Error::Kind::unreachable) {
                        if (retry(next.error())) continue;
                        return true;
                    }
                    if (next) now.uidnext = *next;
                }
                if (info->exists > 0) {
                    auto above = client_->uids_from(committed_last + 1);
                    if (!above) {
                        if (retry(above.error())) continue;
                        return true;
                    }
                    found = std::move(*above);
                }
                now.above = found.size();
                archived.last_uid = committed_last;
                if (!archived.mark.empty() && info->exists > now.above) {
                    std::vector<std::uint32_t> one{committed_last};
                    auto r = client_->fetch(one, 1, 1, "(UID BODY.PEEK[HEADER])", [&](Fetched&& f) {
                        if (f.uid == committed_last && f.body) now.mark = header_mark(*f.body);
                        return true;
                    });
                    if (!r) {
                        if (retry(r.error())) continue;
                        return true;
                    }
                }
                auto doubt = renumbering_doubt(archived, now);
                if (!doubt.empty()) {
                    net::log(where + "the server renumbered its messages (" + doubt +
                             "); reading the whole folder again, repeats are deduplicated");
                    committed_last = 0;
                    found.clear();
                } else if (now.mark) {
                    base_mark = *now.mark;
                } else if (now.exists > now.above) {
                    base_mark = archived.mark;  // not asked (old checkpoint): keep what was known
                }
            }
            base = committed_last;
            if (base == 0 && info->exists > 0) {
                auto all = client_->uids_from(1);
                if (!all) {
                    if (retry(all.error())) continue;
                    return true;
                }
                found = std::move(*all);
            }
            uids = std::move(found);
            below_base = info->exists >= uids.size() ? info->exists - uids.size() : 0;
            {
                std::lock_guard lk(mu_);
                folders_[index].validity = validity;
                folders_[index].archived_upto = committed_last;
            }
            done.assign(uids.size(), 0);
            marks.assign(uids.size(), std::string());
            expected_ += uids.size();
            listed = true;
            tallies_.listed(account_.username, folder.path, info->exists, uids.size());
        } else if (info->uidvalidity != validity) {
            add_error(where + "UIDVALIDITY changed during the run; the folder is read again on the next run", remaining());
            fail_rest("UIDVALIDITY changed during the run");
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
                                    marks[i] = header_mark(*f.body);
                                    while (watermark < uids.size() && done[watermark]) ++watermark;
                                    std::uint32_t safe = watermark ? uids[watermark - 1] : base;
                                    const std::string& safe_mark = watermark ? marks[watermark - 1] : base_mark;
                                    RawMessage m;
                                    m.checkpoint = {{vkey, validity_text},
                                                    {ukey, std::to_string(safe)},
                                                    {bkey, std::to_string(below_base + watermark)},
                                                    {mkey, safe_mark}};
                                    m.bytes = std::move(*f.body);
                                    m.where = index::Location{account_.source, account_.username, folder.path,
                                                              std::to_string(f.uid)};
                                    m.flags = std::move(f.flags);
                                    m.fallback_date = f.internal_date;
                                    m.ack = (static_cast<std::uint64_t>(index + 1) << 32) | f.uid;
                                    if (!queue_.push(std::move(m))) {
                                        stopped = true;
                                        return false;
                                    }
                                    return true;
                                });
        if (stopped) return false;
        if (r) {
            // The server answered the whole list: a UID it did not return was expunged meanwhile.
            tallies_.gone(account_.username, folder.path,
                          static_cast<std::uint64_t>(std::count(done.begin(), done.end(), 0)));
            break;
        }
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
        auto sel = (*client)->select(f.folder.raw, Client::Access::read_write);
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
