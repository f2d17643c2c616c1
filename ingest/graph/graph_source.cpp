#include "ingest/graph/graph_source.hpp"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_set>

#include "ingest/graph/graph_client.hpp"
#include "ingest/net/account.hpp"
#include "ingest/oauth/client_credentials.hpp"
#include "ingest/oauth/http.hpp"
#include "ingest/server_listing.hpp"

namespace mv::ingest {

namespace {

using json = nlohmann::json;
using graph::GraphClient;
using graph::MailboxGate;
using oauth::HttpClient;
using oauth::url_encode;
using Checkpoints = std::vector<std::pair<std::string, std::string>>;

// Light $select for delta rounds: only what the archive needs (id for $value, date for fallback).
constexpr const char* k_delta_select = "id,receivedDateTime";
// Pages listed ahead per folder while the previous one downloads.
constexpr std::size_t k_open_pages = 2;

struct Settings {
    std::string name;
    std::string tenant, client_id, secret;
    std::string authority_url, graph_url;
    std::vector<std::string> mailboxes, folders, exclude;
    long page_size = 1000;
    long concurrency = 4;
    long parallel_mailboxes = 32;
    long rate_limit = 10000;
    long rate_window_s = 600;
    long retry_base_ms = 1000;
    long timeout_s = 120, connect_timeout_s = 30;
    bool include_hidden = false;
    std::size_t queue_bytes = 64u << 20;
};

std::string trim_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

Result<Settings> read_settings(const SourceConfig& c) {
    Settings s;
    s.name = c.name;
    auto need = [&](const char* key, std::string& out) -> Result<void> {
        out = c.get(key);
        if (out.empty()) return fail(Error::Kind::usage, "source '" + c.name + "': `" + key + "` is required for type graph");
        return ok();
    };
    if (auto r = need("tenant", s.tenant); !r) return fail(r.error());
    if (auto r = need("client_id", s.client_id); !r) return fail(r.error());
    auto secret = c.secret("client_secret");
    if (!secret) return fail(secret.error());
    s.secret = *secret;
    s.authority_url = trim_slash(c.get("authority_url", "https://login.microsoftonline.com"));
    s.graph_url = trim_slash(c.get("graph_url", "https://graph.microsoft.com"));
    s.mailboxes = c.get_list("mailboxes");
    if (s.mailboxes.empty() && !c.get("mailboxes").empty()) s.mailboxes = {c.get("mailboxes")};
    if (s.mailboxes.empty())
        return fail(Error::Kind::usage, "source '" + c.name + "': `mailboxes` is required (a list of addresses, or [\"*\"])");
    s.folders = c.get_list("folders", {"*"});
    s.exclude = c.get_list("exclude");
    struct IntKey {
        const char* key;
        long* out;
        long lo, hi;
    };
    for (IntKey k : {IntKey{"page_size", &s.page_size, 1, 1000}, IntKey{"concurrency", &s.concurrency, 1, 64},
                     IntKey{"parallel_mailboxes", &s.parallel_mailboxes, 1, 1024},
                     IntKey{"rate_limit", &s.rate_limit, 0, 1000000000}, IntKey{"rate_window", &s.rate_window_s, 1, 86400},
                     IntKey{"retry_base_ms", &s.retry_base_ms, 1, 600000}, IntKey{"timeout", &s.timeout_s, 1, 86400},
                     IntKey{"connect_timeout", &s.connect_timeout_s, 1, 86400}}) {
        auto v = c.get_int(k.key, *k.out);
        if (!v) return fail(v.error());
        if (*v < k.lo || *v > k.hi)
            return fail(Error::Kind::usage, "source '" + c.name + "': `" + k.key + "` must be between " + std::to_string(k.lo) +
                                                " and " + std::to_string(k.hi));
        *k.out = *v;
    }
    auto hidden = c.get_bool("include_hidden_folders", false);
    if (!hidden) return fail(hidden.error());
    s.include_hidden = *hidden;
    return s;
}

std::shared_ptr<oauth::TokenCache> make_tokens(const Settings& s) {
    oauth::ClientCredentials cc{s.name, s.authority_url, s.tenant, s.client_id, s.secret, s.graph_url + "/.default"};
    return std::make_shared<oauth::TokenCache>(std::move(cc));
}

graph::GraphSettings graph_settings(const Settings& s) {
    graph::GraphSettings g;
    g.source = s.name;
    g.graph_url = s.graph_url;
    g.retry_base_ms = s.retry_base_ms;
    g.timeout_s = s.timeout_s;
    g.connect_timeout_s = s.connect_timeout_s;
    return g;
}

std::vector<std::string> graph_headers(const Settings& s, bool paged) {
    std::vector<std::string> h = {"Prefer: IdType=\"ImmutableId\"", "Accept: application/json"};
    if (paged) h.push_back("Prefer: odata.maxpagesize=" + std::to_string(s.page_size));
    return h;
}

std::string user_path(const std::string& upn) { return "/users/" + url_encode(upn); }

bool folder_selected(const Settings& s, const std::string& path) {
    auto match = [&](const std::vector<std::string>& pats) {
        for (const auto& p : pats)
            if (fnmatch(p.c_str(), path.c_str(), FNM_CASEFOLD) == 0) return true;
        return false;
    };
    return match(s.folders) && !match(s.exclude);
}

std::int64_t parse_iso_time(const std::string& t) {
    std::tm tm{};
    if (t.size() < 19 || !strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    return static_cast<std::int64_t>(timegm(&tm));
}

struct FolderInfo {
    std::string id;
    std::string path;
    long total = 0;
};

// Every folder of a mailbox, depth first from the top level; search folders skipped.
Result<std::vector<FolderInfo>> list_folders(GraphClient& client, HttpClient& http, MailboxGate* gate, const Settings& s,
                                             const std::string& upn, const std::atomic<bool>* stop) {
    std::vector<FolderInfo> out;
    struct Pending {
        std::string url;
        std::string prefix;
    };
    std::string hidden = s.include_hidden ? "includeHiddenFolders=true&" : "";
    std::vector<Pending> todo = {{client.url(user_path(upn) + "/mailFolders?" + hidden + "%24top=250"), ""}};
    while (!todo.empty()) {
        Pending p = std::move(todo.back());
        todo.pop_back();
        std::string url = p.url;
        std::vector<Pending> children;
        while (!url.empty()) {
            auto r = client.get(http, url, gate, graph_headers(s, false), stop);
            if (!r) return fail(r.error());
            if (r->status != 200) return fail(graph::describe_graph_error(s.name, upn, "listing folders", r->status, r->body));
            // Wrong JSON types (a string where an object or number belongs) throw too: the
            // same error as unparsable JSON, never an exception out of the source (fuzz_graph).
            try {
                json j = json::parse(r->body);
                for (const auto& f : j.value("value", json::array())) {
                    if (f.value("@odata.type", "") == "#microsoft.graph.mailSearchFolder") continue;  // virtual
                    FolderInfo fi;
                    fi.id = f.value("id", "");
                    fi.path = p.prefix + f.value("displayName", "");
                    fi.total = f.value("totalItemCount", 0L);
                    if (fi.id.empty()) continue;
                    if (f.value("childFolderCount", 0L) > 0)
                        children.push_back({client.url(user_path(upn) + "/mailFolders/" + url_encode(fi.id) + "/childFolders?" + hidden + "%24top=250"),
                                            fi.path + "/"});
                    out.push_back(std::move(fi));
                }
                url = j.value("@odata.nextLink", "");
            } catch (const std::exception&) {
                return fail(Error::Kind::failed, "source '" + s.name + "': mailbox " + upn + ": listing folders: invalid JSON from Graph");
            }
        }
        for (auto it = children.rbegin(); it != children.rend(); ++it) todo.push_back(std::move(*it));
    }
    return out;
}

// Mailboxes to work on: the configured list, or every user of the tenant for "*".
Result<std::vector<std::string>> resolve_mailboxes(GraphClient& client, HttpClient& http, const Settings& s,
                                                   const std::atomic<bool>* stop) {
    if (!(s.mailboxes.size() == 1 && s.mailboxes[0] == "*")) return s.mailboxes;
    std::vector<std::string> out;
    std::string url = client.url("/users?%24select=id,userPrincipalName,mail&%24top=999");
    while (!url.empty()) {
        auto r = client.get(http, url, nullptr, {"Accept: application/json"}, stop);
        if (!r) return fail(r.error());
        if (r->status != 200) return fail(graph::describe_graph_error(s.name, "", "listing users", r->status, r->body));
        try {  // wrong JSON types throw too (see list_folders)
            json j = json::parse(r->body);
            for (const auto& u : j.value("value", json::array())) {
                std::string upn = u.value("userPrincipalName", "");
                if (!upn.empty()) out.push_back(upn);
            }
            url = j.value("@odata.nextLink", "");
        } catch (const std::exception&) {
            return fail(Error::Kind::failed, "source '" + s.name + "': listing users: invalid JSON from Graph");
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------------------
class GraphSource;

struct Page {
    std::string link;          // nextLink or deltaLink that follows this page: its checkpoint value
    std::size_t remaining = 0;  // messages not yet yielded or given up
    bool complete = false;
    bool failed = false;       // a message could not be fetched: the checkpoint must not pass it
    std::vector<index::Location> removals;  // @removed entries
};

struct FolderJob {
    std::string id, path, key;
    std::string initial;  // first URL of a fresh round
    std::mutex mu;
    std::deque<std::shared_ptr<Page>> pages;  // listed, in order, not yet checkpointed
    std::string next_link;                    // to list next; empty when the round is listed
    bool list_deferred = false;
    bool failed = false;
    bool counted = false;  // a first full round: the folder's totalItemCount is in the expected total
    int restarts = 0;
};

struct Task {
    enum class Kind { list, fetch } kind;
    FolderJob* folder = nullptr;
    std::shared_ptr<Page> page;
    std::string id;
    std::int64_t received = 0;
};

class GraphSource final : public Source {
  public:
    GraphSource(Settings s, std::shared_ptr<oauth::TokenCache> tokens, std::map<std::string, std::string> checkpoints)
        : s_(std::move(s)), client_(graph_settings(s_), std::move(tokens)), checkpoints_(std::move(checkpoints)) {
        coordinator_ = std::thread([this] { coordinate(); });
    }
    ~GraphSource() override {
        stop_ = true;
        q_not_full_.notify_all();
        q_not_empty_.notify_all();
        if (coordinator_.joinable()) coordinator_.join();
    }

    std::string name() const override { return s_.name; }
    std::optional<RawMessage> next() override;
    void finish() override;
    // Folders synced for the first time count with their totalItemCount as they are listed;
    // an incremental (delta) round has no count up front, so its messages count as they come.
    std::uint64_t expected_total() const override { return expected_.load(); }
    void add_expected(std::uint64_t n) { expected_ += n; }

    // ---- for the mailbox workers ----
    const Settings& settings() const { return s_; }
    GraphClient& client() { return client_; }
    const std::atomic<bool>* stop_flag() const { return &stop_; }
    std::string checkpoint(const std::string& key) const {
        auto it = checkpoints_.find(key);
        return it == checkpoints_.end() ? "" : it->second;
    }
    void push(std::optional<RawMessage> msg, Checkpoints cps, std::vector<index::Location> removals);
    void add_error(const std::string& line, std::uint64_t failed_messages = 1) {
        std::lock_guard lk(report_mu_);
        report_.failed += failed_messages;
        if (report_.errors.size() < 200) report_.errors.push_back(line);
    }
    void mailbox_done(bool ok) { (ok ? mailboxes_ok_ : mailboxes_failed_)++; }
    FolderTallies& tallies() { return tallies_; }
    void note_delivered(std::size_t bytes) {
        delivered_++;
        delivered_bytes_ += bytes;
    }
    std::atomic<std::uint64_t> restarts{0}, removed{0};

  private:
    void coordinate();
    void run_mailbox(const std::string& upn);

    Settings s_;
    GraphClient client_;
    std::map<std::string, std::string> checkpoints_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> expected_{0};
    std::thread coordinator_;

    struct Item {
        std::optional<RawMessage> msg;  // none: a checkpoint-only item
        Checkpoints cps;
        std::vector<index::Location> removals;
    };
    std::mutex q_mu_;
    std::condition_variable q_not_empty_, q_not_full_;
    std::deque<Item> q_;
    std::size_t q_bytes_ = 0;
    std::size_t waiting_producers_ = 0;
    static constexpr std::size_t k_queue_items = 4096;
    bool done_ = false;

    std::mutex report_mu_;
    std::atomic<std::uint64_t> mailboxes_ok_{0}, mailboxes_failed_{0}, delivered_{0}, delivered_bytes_{0};
};

// One mailbox: `concurrency` workers share a task list (list a delta page, fetch a $value), so
// the mailbox never has more requests in flight than Exchange allows.
class MailboxRun {
  public:
    // The request window gets 1% slack (at most 0.5 s) for skew between our send and Exchange's count.
    MailboxRun(GraphSource& src, std::string upn)
        : src_(src),
          s_(src.settings()),
          upn_(std::move(upn)),
          gate_(s_.rate_limit, std::chrono::milliseconds(s_.rate_window_s * 1000 + std::clamp(s_.rate_window_s * 10, 50L, 500L))) {}

    // Returns false when the mailbox failed as a whole.
    bool run();

  private:
    void worker(HttpClient& http);
    void list_page(HttpClient& http, FolderJob& f);
    void fetch(HttpClient& http, const Task& t);
    void complete(FolderJob& f, const std::shared_ptr<Page>& page, std::optional<RawMessage> msg, bool failed);
    void schedule(Task t, bool front) {
        {
            std::lock_guard lk(mu_);
            if (front) tasks_.push_front(std::move(t));
            else tasks_.push_back(std::move(t));
        }
        cv_.notify_one();
    }
    void folder_error(FolderJob& f, const std::string& line) {
        {
            std::lock_guard lk(f.mu);
            f.failed = true;
        }
        src_.add_error(line);
        src_.tallies().failed(upn_, f.path, "", line);
    }

    GraphSource& src_;
    const Settings& s_;
    std::string upn_;
    MailboxGate gate_;
    std::vector<std::unique_ptr<FolderJob>> folders_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> tasks_;
    int active_ = 0;
    std::atomic<bool> mailbox_failed_{false};
};

bool MailboxRun::run() {
    HttpClient http;
    auto list = list_folders(src_.client(), http, &gate_, s_, upn_, src_.stop_flag());
    if (!list) {
        if (list.error().message == "stopped") return false;
        if ((s_.mailboxes.size() == 1 && s_.mailboxes[0] == "*") && list.error().kind == Error::Kind::not_found)
            return true;  // a user without a mailbox
        src_.add_error(list.error().message);
        src_.tallies().failed(upn_, "", "", list.error().message);
        return false;
    }
    for (const auto& fi : *list) {
        if (!folder_selected(s_, fi.path)) continue;
        // The delta rounds of this run add what is to fetch; totalItemCount is what the folder has.
        src_.tallies().listed(upn_, fi.path, static_cast<std::uint64_t>(std::max(0L, fi.total)), 0);
        auto f = std::make_unique<FolderJob>();
        f->id = fi.id;
        f->path = fi.path;
        f->key = checkpoint_key(s_.name, "graph:" + upn_ + ":" + fi.id);
        f->initial = src_.client().url(user_path(upn_) + "/mailFolders/" + url_encode(fi.id) +
                                       "/messages/delta?%24select=" + k_delta_select);
        std::string saved = src_.checkpoint(f->key);
        f->next_link = saved.empty() ? f->initial : saved;
        if (saved.empty() && fi.total > 0) {
            f->counted = true;
            src_.add_expected(static_cast<std::uint64_t>(fi.total));
        }
        folders_.push_back(std::move(f));
    }
    for (auto& f : folders_) tasks_.push_back(Task{Task::Kind::list, f.get(), nullptr, "", 0});
    std::vector<std::thread> extra;
    for (long i = 1; i < s_.concurrency; ++i)
        extra.emplace_back([this] {
            HttpClient h;
            worker(h);
        });
    worker(http);
    for (auto& t : extra) t.join();
    return !mailbox_failed_;
}

void MailboxRun::worker(HttpClient& http) {
    for (;;) {
        Task t;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return !tasks_.empty() || active_ == 0 || src_.stop_flag()->load(); });
            if (src_.stop_flag()->load()) {
                cv_.notify_all();
                return;
            }
            if (tasks_.empty()) {  // and nobody can add more
                cv_.notify_all();
                return;
            }
            t = std::move(tasks_.front());
            tasks_.pop_front();
            ++active_;
        }
        if (t.kind == Task::Kind::list) list_page(http, *t.folder);
        else fetch(http, t);
        {
            std::lock_guard lk(mu_);
            --active_;
        }
        cv_.notify_all();
    }
}

void MailboxRun::list_page(HttpClient& http, FolderJob& f) {
    std::string url;
    {
        std::lock_guard lk(f.mu);
        url = f.next_link;
        f.next_link.clear();
    }
    if (url.empty() || mailbox_failed_) return;
    auto r = src_.client().get(http, url, &gate_, graph_headers(s_, true), src_.stop_flag());
    if (!r) {
        if (r.error().message != "stopped") folder_error(f, r.error().message + " (folder " + f.path + ")");
        return;
    }
    if (r->status == 410 || (r->status == 400 && graph::parse_graph_error(r->body).code == "SyncStateNotFound")) {
        // Expired or rejected delta/next link: a fresh round for this folder; dedupe absorbs repeats.
        std::lock_guard lk(f.mu);
        if (++f.restarts <= 3) {
            src_.restarts++;
            net::log("source '" + s_.name + "': mailbox " + upn_ + " folder " + f.path + ": delta state expired (" +
                     graph::parse_graph_error(r->body).code + "), restarting the folder's sync");
            f.next_link = f.initial;
            schedule(Task{Task::Kind::list, &f, nullptr, "", 0}, true);
            return;
        }
    }
    if (r->status != 200) {
        auto e = graph::describe_graph_error(s_.name, upn_, "folder " + f.path, r->status, r->body);
        if (r->status == 401 || r->status == 403) mailbox_failed_ = true;
        folder_error(f, e.message);
        return;
    }
    json j;
    try {
        j = json::parse(r->body);
    } catch (const std::exception&) {
        folder_error(f, "source '" + s_.name + "': mailbox " + upn_ + ": folder " + f.path + ": invalid JSON from Graph");
        return;
    }
    auto page = std::make_shared<Page>();
    std::string next;
    std::vector<std::pair<std::string, std::int64_t>> ids;
    try {  // wrong JSON types throw too: a folder error, never an exception out of the worker (fuzz_graph)
        next = j.value("@odata.nextLink", "");
        page->link = next.empty() ? j.value("@odata.deltaLink", "") : next;
        // The same id may appear more than once in a round: last wins. A page's removals are
        // recorded after its messages, so a page drops either the message or its removal.
        std::map<std::string, std::size_t> pos, removed_pos;
        const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
        for (const auto& item : j.value("value", json::array())) {
            std::string id = item.value("id", "");
            if (id.empty()) continue;
            if (auto it = pos.find(id); it != pos.end()) ids[it->second].first.clear();
            if (auto it = removed_pos.find(id); it != removed_pos.end()) page->removals[it->second].server_id.clear();
            pos.erase(id);
            removed_pos.erase(id);
            if (item.contains("@removed")) {
                std::string reason = item["@removed"].is_object() ? item["@removed"].value("reason", "deleted") : "deleted";
                removed_pos[id] = page->removals.size();
                page->removals.push_back(index::Location{s_.name, upn_, f.path, id, reason, now});
                continue;
            }
            pos[id] = ids.size();
            ids.emplace_back(id, parse_iso_time(item.value("receivedDateTime", "")));
        }
    } catch (const std::exception&) {
        folder_error(f, "source '" + s_.name + "': mailbox " + upn_ + ": folder " + f.path + ": invalid JSON from Graph");
        return;
    }
    std::erase_if(ids, [](const auto& p) { return p.first.empty(); });
    std::erase_if(page->removals, [](const index::Location& l) { return l.server_id.empty(); });
    src_.removed += page->removals.size();
    page->remaining = ids.size();
    src_.tallies().add_to_fetch(upn_, f.path, ids.size());
    {
        std::lock_guard lk(f.mu);
        f.pages.push_back(page);
        if (!next.empty()) {
            f.next_link = next;
            if (f.pages.size() < k_open_pages) schedule(Task{Task::Kind::list, &f, nullptr, "", 0}, true);
            else f.list_deferred = true;
        }
    }
    for (auto& [id, received] : ids) schedule(Task{Task::Kind::fetch, &f, page, id, received}, false);
    if (ids.empty()) complete(f, page, std::nullopt, false);
}

void MailboxRun::fetch(HttpClient& http, const Task& t) {
    FolderJob& f = *t.folder;
    if (mailbox_failed_) {
        src_.tallies().failed(upn_, f.path, t.id, "not fetched: the mailbox refused access");
        complete(f, t.page, std::nullopt, true);
        return;
    }
    std::string url = src_.client().url(user_path(upn_) + "/messages/" + url_encode(t.id) + "/$value");
    auto r = src_.client().get(http, url, &gate_, {"Prefer: IdType=\"ImmutableId\""}, src_.stop_flag());
    if (!r) {
        if (r.error().message != "stopped") {
            src_.add_error(r.error().message + " (mailbox " + upn_ + ", folder " + f.path + ", message " + t.id + ")", 1);
            src_.tallies().failed(upn_, f.path, t.id, r.error().message);
        }
        complete(f, t.page, std::nullopt, true);
        return;
    }
    if (r->status == 200) {
        RawMessage m;
        m.bytes = std::move(r->body);
        m.where = index::Location{s_.name, upn_, f.path, t.id};
        m.fallback_date = t.received;
        src_.note_delivered(m.bytes.size());
        if (!f.counted) src_.add_expected(1);
        complete(f, t.page, std::move(m), false);
        return;
    }
    if (r->status == 404) {  // deleted between listing and fetching
        src_.tallies().gone(upn_, f.path, 1);
        complete(f, t.page, std::nullopt, false);
        return;
    }
    auto e = graph::describe_graph_error(s_.name, upn_, "folder " + f.path + ", message " + t.id, r->status, r->body);
    src_.add_error(e.message, 1);
    src_.tallies().failed(upn_, f.path, t.id, e.message);
    complete(f, t.page, std::nullopt, true);
}

void MailboxRun::complete(FolderJob& f, const std::shared_ptr<Page>& page, std::optional<RawMessage> msg, bool failed) {
    std::lock_guard lk(f.mu);
    if (failed) page->failed = true;
    if (page->remaining > 0) --page->remaining;
    if (page->remaining == 0) page->complete = true;
    Checkpoints cps;
    std::vector<index::Location> removals;
    std::string link;
    while (!f.pages.empty() && f.pages.front()->complete) {
        auto p = f.pages.front();
        f.pages.pop_front();
        if (p->failed) f.failed = true;  // later pages are archived but the folder's checkpoint stays put
        if (!f.failed && !p->link.empty()) link = p->link;
        for (auto& l : p->removals) removals.push_back(std::move(l));
    }
    if (!link.empty()) cps.emplace_back(f.key, link);
    if (f.list_deferred && f.pages.size() < k_open_pages && !f.next_link.empty()) {
        f.list_deferred = false;
        schedule(Task{Task::Kind::list, &f, nullptr, "", 0}, true);
    }
    // Pushed under the folder lock: the queue order is the folder's page order.
    if (msg || !cps.empty() || !removals.empty()) src_.push(std::move(msg), std::move(cps), std::move(removals));
}

// ------------------------------------------------------------------------------------------------
void GraphSource::push(std::optional<RawMessage> msg, Checkpoints cps, std::vector<index::Location> removals) {
    std::unique_lock lk(q_mu_);
    std::size_t size = msg ? msg->bytes.size() : 0;
    auto fits = [&] { return stop_.load() || q_.empty() || (q_bytes_ + size <= s_.queue_bytes && q_.size() < k_queue_items); };
    if (!fits()) {
        ++waiting_producers_;
        q_not_full_.wait(lk, fits);
        --waiting_producers_;
    }
    if (stop_) return;
    q_bytes_ += size;
    q_.push_back(Item{std::move(msg), std::move(cps), std::move(removals)});
    q_not_empty_.notify_one();
}

std::optional<RawMessage> GraphSource::next() {
    std::unique_lock lk(q_mu_);
    q_not_empty_.wait(lk, [&] { return !q_.empty() || done_ || stop_.load(); });
    if (q_.empty()) return std::nullopt;
    Item item = std::move(q_.front());
    q_.pop_front();
    if (item.msg) q_bytes_ -= item.msg->bytes.size();
    // Wake blocked producers only below a low-water mark: with 100+ fetch threads, waking
    // them all on every message costs more than the messages.
    if (waiting_producers_ > 0 && (q_.empty() || (q_.size() <= k_queue_items * 3 / 4 && q_bytes_ <= s_.queue_bytes * 3 / 4)))
        q_not_full_.notify_all();
    lk.unlock();
    // Checkpoints without a message of their own (empty delta pages, @removed, the deltaLink
    // after a failed last fetch) travel as a checkpoint-only item, committed in order.
    RawMessage out;
    if (item.msg) out = std::move(*item.msg);
    else out.checkpoint_only = true;
    out.checkpoint = std::move(item.cps);
    out.removals = std::move(item.removals);
    return out;
}

void GraphSource::coordinate() {
    HttpClient http;
    auto list = resolve_mailboxes(client_, http, s_, &stop_);
    if (!list) {
        if (list.error().message != "stopped") {
            add_error(list.error().message);
            std::lock_guard lk(report_mu_);
            report_.unreachable = true;
        }
    } else {
        std::atomic<std::size_t> next_index{0};
        auto runner = [&] {
            for (;;) {
                std::size_t i = next_index++;
                if (i >= list->size() || stop_) return;
                MailboxRun run(*this, (*list)[i]);
                mailbox_done(run.run());
            }
        };
        std::vector<std::thread> runners;
        std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(s_.parallel_mailboxes), list->size());
        for (std::size_t i = 0; i < n; ++i) runners.emplace_back(runner);
        for (auto& t : runners) t.join();
        if (mailboxes_ok_ == 0 && mailboxes_failed_ > 0) {
            std::lock_guard lk(report_mu_);
            report_.unreachable = true;  // nothing could be fetched at all
        }
    }
    {
        std::lock_guard lk(q_mu_);
        done_ = true;
    }
    q_not_empty_.notify_all();
}

// The source's summary line; a log line, so --quiet silences it.
void GraphSource::finish() {
    auto& c = client_.counters;
    std::string line = "source '" + s_.name + "': " + std::to_string(delivered_.load()) + " messages fetched from " +
                       std::to_string(mailboxes_ok_.load()) + " mailbox(es)" +
                       (mailboxes_failed_ ? " (" + std::to_string(mailboxes_failed_.load()) + " failed)" : "") + ", " +
                       std::to_string(c.requests.load()) + " Graph requests, " + std::to_string(c.throttled.load()) +
                       " throttled (429), " + std::to_string(c.retries.load()) + " retries, " +
                       std::to_string(client_.tokens().fetches()) + " token requests";
    if (restarts) line += ", " + std::to_string(restarts.load()) + " delta restarts";
    if (removed) line += ", " + std::to_string(removed.load()) + " removed on the server (recorded, kept in the archive)";
    net::log(line);
}

}  // namespace

Result<std::unique_ptr<Source>> make_graph_source(const SourceConfig& config, const index::Archive& archive) {
    auto s = read_settings(config);
    if (!s) return fail(s.error());
    auto tokens = make_tokens(*s);
    if (auto t = tokens->token(); !t) return fail(t.error());  // wrong secret etc.: exit 3 before any work
    std::map<std::string, std::string> cps;
    for (auto& [k, v] : archive.metadata_with_prefix(checkpoint_key(config.name, "graph:"))) cps[k] = v;
    return std::unique_ptr<Source>(new GraphSource(std::move(*s), std::move(tokens), std::move(cps)));
}

Result<std::vector<std::string>> check_graph_source(const SourceConfig& config) {
    auto s = read_settings(config);
    if (!s) return fail(s.error());
    auto tokens = make_tokens(*s);
    if (auto t = tokens->token(); !t) return fail(t.error());
    GraphClient client(graph_settings(*s), tokens);
    HttpClient http;
    std::vector<std::string> lines;
    lines.push_back("source '" + s->name + "': signed in to tenant " + s->tenant + " as application " + s->client_id);
    auto mailboxes = resolve_mailboxes(client, http, *s, nullptr);
    if (!mailboxes) return fail(mailboxes.error());
    bool all_star = s->mailboxes.size() == 1 && s->mailboxes[0] == "*";
    std::size_t good = 0;
    Error last_error;
    for (const auto& upn : *mailboxes) {
        auto folders = list_folders(client, http, nullptr, *s, upn, nullptr);
        if (!folders) {
            if (all_star && folders.error().kind == Error::Kind::not_found) continue;
            last_error = folders.error();
            lines.push_back(upn + ": FAILED: " + folders.error().message);
            continue;
        }
        std::size_t selected = 0;
        for (auto& f : *folders)
            if (folder_selected(*s, f.path)) ++selected;
        std::string line = upn + ": " + std::to_string(folders->size()) + " folders (" + std::to_string(selected) + " selected)";
        auto inbox = client.get(http, client.url(user_path(upn) + "/mailFolders/inbox"), nullptr, graph_headers(*s, false), nullptr);
        if (inbox && inbox->status == 200) {
            try {
                line += ", Inbox " + std::to_string(json::parse(inbox->body).value("totalItemCount", 0L)) + " messages";
            } catch (const std::exception&) {
            }
        }
        auto newest = client.get(http,
                                 client.url(user_path(upn) + "/mailFolders/inbox/messages?%24top=1&%24orderby=receivedDateTime%20desc"
                                                             "&%24select=subject,receivedDateTime"),
                                 nullptr, graph_headers(*s, false), nullptr);
        if (newest && newest->status == 200) {
            try {
                auto v = json::parse(newest->body).value("value", json::array());
                if (v.empty()) line += ", Inbox is empty";
                else line += ", newest: \"" + v[0].value("subject", "") + "\" (" + v[0].value("receivedDateTime", "") + ")";
            } catch (const std::exception&) {
            }
        } else if (!newest) {
            line += ", newest: " + newest.error().message;
        } else {
            line += ", newest: " + graph::describe_graph_error(s->name, upn, "Inbox", newest->status, newest->body).message;
        }
        lines.push_back(line);
        ++good;
    }
    if (good == 0 && !last_error.message.empty()) return fail(last_error);
    return lines;
}

Result<std::vector<ListedFolder>> list_unarchived_graph(const SourceConfig& config, const ArchivedFn& archived) {
    auto s = read_settings(config);
    if (!s) return fail(s.error());
    auto tokens = make_tokens(*s);
    if (auto t = tokens->token(); !t) return fail(t.error());
    GraphClient client(graph_settings(*s), tokens);
    HttpClient http;
    auto mailboxes = resolve_mailboxes(client, http, *s, nullptr);
    if (!mailboxes) return fail(mailboxes.error());
    const bool all_star = s->mailboxes.size() == 1 && s->mailboxes[0] == "*";
    std::vector<ListedFolder> out;
    for (const auto& upn : *mailboxes) {
        auto folders = list_folders(client, http, nullptr, *s, upn, nullptr);
        if (!folders) {
            if (all_star && folders.error().kind == Error::Kind::not_found) continue;
            if (folders.error().kind == Error::Kind::unreachable) return fail(folders.error());
            out.push_back(ListedFolder{upn, "", "", 0, {}, folders.error().message});
            continue;
        }
        for (const auto& fi : *folders) {
            if (!folder_selected(*s, fi.path)) continue;
            ListedFolder lf{upn, fi.path, "", 0, {}, ""};
            // A fresh delta round lists exactly what the folder holds now, with the ids the source records.
            std::string url = client.url(user_path(upn) + "/mailFolders/" + url_encode(fi.id) +
                                         "/messages/delta?%24select=id,subject,receivedDateTime");
            std::map<std::string, ListedMessage> listed;  // by id: a round may name one twice
            while (!url.empty()) {
                auto r = client.get(http, url, nullptr, graph_headers(*s, true), nullptr);
                if (!r) return fail(r.error());
                if (r->status != 200) {
                    lf.error = graph::describe_graph_error(s->name, upn, "folder " + fi.path, r->status, r->body).message;
                    break;
                }
                json j = json::parse(r->body, nullptr, false);
                if (!j.is_object()) {
                    lf.error = "source '" + s->name + "': mailbox " + upn + ": folder " + fi.path + ": invalid JSON from Graph";
                    break;
                }
                for (const auto& item : j.value("value", json::array())) {
                    std::string id = item.value("id", "");
                    if (id.empty()) continue;
                    if (item.contains("@removed")) {
                        listed.erase(id);
                        continue;
                    }
                    listed[id] = ListedMessage{id, item.value("subject", ""), item.value("receivedDateTime", "")};
                }
                url = j.value("@odata.nextLink", "");
            }
            if (lf.error.empty()) {
                lf.listed = listed.size();
                for (auto& [id, m] : listed)
                    if (!archived(lf, id)) lf.missing.push_back(std::move(m));
            }
            out.push_back(std::move(lf));
        }
    }
    return out;
}

}  // namespace mv::ingest
