#include "index/archive.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <thread>
#include <sstream>

#include "index/document/builder.hpp"
#include "index/util/crash_point.hpp"
#include "index/schema.hpp"

namespace mv::index {
namespace fs = std::filesystem;
namespace {

constexpr const char* k_format_file = "FORMAT";
constexpr const char* k_meta_next_docno = "mv:next_docno";
constexpr const char* k_meta_store_end = "mv:store_end";

fs::path shard_path(const fs::path& dir, unsigned i) { return dir / "index" / ("shard-" + std::to_string(i)); }
fs::path meta_path(const fs::path& dir) { return dir / "index" / "meta"; }

struct Format {
    unsigned shards = 0;
    std::string stemmer;
};

std::optional<Format> read_format(const fs::path& dir) {
    std::ifstream in(dir / k_format_file);
    if (!in) return std::nullopt;
    Format f;
    std::string key, value;
    while (in >> key >> value) {
        if (key == "shards") f.shards = static_cast<unsigned>(std::stoul(value));
        if (key == "stemmer") f.stemmer = value;
    }
    if (f.shards == 0) return std::nullopt;
    return f;
}

std::pair<std::uint32_t, std::uint64_t> parse_end(const std::string& s) {
    std::uint32_t seg = 0;
    unsigned long long size = 0;
    if (std::sscanf(s.c_str(), "%u:%llu", &seg, &size) != 2) return {0, 0};
    return {seg, size};
}

// A compaction killed between its two renames leaves "shard-K.compact" (complete) and no
// "shard-K", or a stale "shard-K.old": finish what it started.
void finish_compaction_swap(const fs::path& shard) {
    std::error_code ec;
    fs::path compacted = shard.string() + ".compact", old = shard.string() + ".old";
    if (!fs::exists(shard, ec) && fs::exists(compacted, ec)) fs::rename(compacted, shard, ec);
    fs::remove_all(old, ec);
    fs::remove_all(compacted, ec);
}

}  // namespace

Result<std::unique_ptr<Archive>> Archive::open(const fs::path& dir, OpenMode mode, const ArchiveOptions& options) {
    std::unique_ptr<Archive> a(new Archive());
    a->dir_ = dir;
    a->mode_ = mode;
    std::error_code ec;
    auto format = read_format(dir);
    if (!format && ::access((dir / k_format_file).c_str(), R_OK) != 0 && errno == EACCES)
        return fail(Error::Kind::io, "archive " + dir.string() + ": permission denied (run as the archive's owner)");
    if (mode == OpenMode::read && !format)
        return fail(Error::Kind::not_found, "no archive at " + dir.string() + " (run `mailvault import` or `sync` first)");
    if (mode == OpenMode::write) {
        fs::create_directories(dir, ec);
        if (ec) return fail(Error::Kind::io, "cannot create archive " + dir.string() + ": " + ec.message());
        if (!format) fs::permissions(dir, fs::perms::owner_all, ec);  // a new archive is 0700 whatever existed
        a->lock_fd_ = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (a->lock_fd_ < 0) return fail(Error::Kind::io, "cannot open " + (dir / "lock").string());
        if (::flock(a->lock_fd_, LOCK_EX | LOCK_NB) != 0)
            return fail(Error::Kind::locked, "archive " + dir.string() + " is in use by another import or sync; try again when it has finished");
        if (!format) {
            Format f{options.shards == 0 ? 1u : options.shards, options.stemmer.empty() ? "none" : options.stemmer};
            try {
                (void)Xapian::Stem(f.stemmer == "none" ? "" : f.stemmer);
            } catch (const Xapian::Error&) {
                return fail(Error::Kind::usage, "archive.stemmer: unknown language '" + f.stemmer + "'");
            }
            std::ofstream out(dir / k_format_file);
            out << "mailvault-archive 1\nshards " << f.shards << "\nstemmer " << f.stemmer << "\n";
            out.close();
            if (!out) return fail(Error::Kind::io, "cannot write " + (dir / k_format_file).string());
            format = f;
        }
    }
    a->stemmer_ = format->stemmer;
    auto opened = xapian_guard(
        [&]() -> Result<void> {
            for (unsigned i = 0; i < format->shards; ++i) {
                auto sh = std::make_unique<Shard>();
                auto path = shard_path(dir, i);
                if (mode == OpenMode::write) finish_compaction_swap(path);
                if (mode == OpenMode::write) {
                    fs::create_directories(path.parent_path());
                    sh->wdb = std::make_unique<Xapian::WritableDatabase>(path.string(), Xapian::DB_CREATE_OR_OPEN);
                }
                a->shards_.push_back(std::move(sh));
            }
            if (mode == OpenMode::write) {
                a->meta_ = std::make_unique<Xapian::WritableDatabase>(meta_path(dir).string(), Xapian::DB_CREATE_OR_OPEN);
                // Work between commits runs inside a transaction: Xapian commits pending changes
                // when a WritableDatabase is destroyed, but cancels an open transaction. Only
                // commit() may make documents durable (after their originals).
                for (auto& sh : a->shards_) sh->wdb->begin_transaction();
                a->meta_->begin_transaction();
            }
            return ok();
        },
        "opening the index");
    if (!opened) return fail(opened.error());
    auto store = PackStore::open(dir / "originals", mode == OpenMode::write);
    if (!store) return fail(store.error());
    a->store_ = std::move(*store);
    if (mode == OpenMode::write) {
        auto r = xapian_guard(
            [&]() -> Result<void> {
                std::uint64_t next = 1;
                std::string n = a->meta_->get_metadata(k_meta_next_docno);
                if (!n.empty()) next = std::stoull(n);
                const std::size_t count = a->shards_.size();
                for (std::size_t i = 0; i < count; ++i) {
                    Xapian::docid last = a->shards_[i]->wdb->get_lastdocid();
                    if (last > 0) next = std::max<std::uint64_t>(next, (std::uint64_t{last} - 1) * count + i + 2);
                }
                a->next_docno_ = next;
                return ok();
            },
            "reading the index");
        if (!r) return fail(r.error());
        if (auto rs = a->recover_store(); !rs) return fail(rs.error());
        a->committed_ = std::make_unique<Xapian::Database>(a->database());
        for (std::size_t i = 0; i < a->shards_.size(); ++i) {
            a->shards_[i]->writer = std::thread([arch = a.get(), s = a->shards_[i].get(), i] {
                pthread_setname_np(pthread_self(), ("mv-shard-" + std::to_string(i)).c_str());
                arch->writer_loop(*s);
            });
        }
    }
    return a;
}

Archive::~Archive() {
    // Work not committed is dropped: the open transactions are cancelled when the shards close.
    stopping_ = true;
    for (auto& sh : shards_) {
        if (!sh->writer.joinable()) continue;
        push(*sh, Task{Task::Kind::stop});
        sh->writer.join();
    }
    meta_.reset();
    shards_.clear();  // Xapian closes (and releases its own lock) before ours goes
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

// A crashed run may have appended originals that no commit refers to: cut them off.
Result<void> Archive::recover_store() {
    std::pair<std::uint32_t, std::uint64_t> end{1, 0};
    return xapian_guard(
        [&]() -> Result<void> {
            std::vector<std::string> ends{meta_->get_metadata(k_meta_store_end)};
            for (auto& sh : shards_) ends.push_back(sh->wdb->get_metadata(k_meta_store_end));
            for (const auto& text : ends) {
                auto e = parse_end(text);
                if (e.first > end.first || (e.first == end.first && e.second > end.second)) end = e;
            }
            committed_end_ = end;
            return store_->truncate_to(end.first, end.second);
        },
        "recovering the originals store");
}

Xapian::Database Archive::database() const {
    Xapian::Database db;
    for (unsigned i = 0; i < shards_.size(); ++i) db.add_database(Xapian::Database(shard_path(dir_, i).string()));
    return db;
}

std::uint64_t Archive::document_count() const {
    try {
        return database().get_doccount();
    } catch (const Xapian::Error&) {
        return 0;
    }
}

std::optional<Xapian::Document> Archive::document(std::uint64_t docno) const {
    if (docno == 0) return std::nullopt;
    try {
        return database().get_document(static_cast<Xapian::docid>(docno));
    } catch (const Xapian::Error&) {
        return std::nullopt;
    }
}

Result<std::string> Archive::read_original(const StoredRef& ref) const {
    auto payload = store_->read_payload(ref);
    if (!payload) return fail(payload.error());
    return zstd_decompress(*payload, ref.raw_size);
}

Result<std::string> Archive::read_original(std::uint64_t docno) const {
    auto doc = document(docno);
    if (!doc) return fail(Error::Kind::not_found, "no message " + std::to_string(docno));
    auto ref = StoredRef::decode(doc->get_value(schema::k_slot_location));
    if (!ref) return fail(Error::Kind::corrupt, "message " + std::to_string(docno) + " has no stored original");
    return read_original(*ref);
}

std::string Archive::metadata(const std::string& key) const {
    try {
        if (mode_ == OpenMode::write) {
            std::lock_guard lock(const_cast<std::mutex&>(meta_mu_));
            return meta_->get_metadata(key);
        }
        return Xapian::Database(meta_path(dir_).string()).get_metadata(key);
    } catch (const Xapian::Error&) {
        return {};
    }
}

std::vector<std::pair<std::string, std::string>> Archive::metadata_with_prefix(const std::string& prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    try {
        std::unique_lock lock(const_cast<std::mutex&>(meta_mu_), std::defer_lock);
        if (mode_ == OpenMode::write) lock.lock();
        Xapian::Database db = mode_ == OpenMode::write ? Xapian::Database(*meta_)
                                                       : Xapian::Database(meta_path(dir_).string());
        for (auto it = db.metadata_keys_begin(prefix); it != db.metadata_keys_end(prefix); ++it)
            out.emplace_back(*it, db.get_metadata(*it));
    } catch (const Xapian::Error&) {
    }
    return out;
}

std::optional<std::uint64_t> Archive::find_duplicate(const Digest& dedupe_key) {
    std::lock_guard lock(pending_mu_);
    if (auto it = pending_.find(dedupe_key); it != pending_.end()) return it->second;
    std::string term = std::string(schema::k_dedupe_prefix) + to_hex(dedupe_key);
    for (int attempt = 0; attempt < 3; ++attempt) {
        try {
            auto it = committed_->postlist_begin(term);
            if (it != committed_->postlist_end(term)) return *it;
            return std::nullopt;
        } catch (const Xapian::DatabaseModifiedError&) {
            committed_->reopen();
        }
    }
    throw std::runtime_error("index keeps changing under the dedupe reader");
}

std::uint64_t Archive::allocate_docno(const Digest& dedupe_key) {
    std::lock_guard lock(pending_mu_);
    std::uint64_t d = next_docno_++;
    pending_[dedupe_key] = d;
    pending_keys_[d] = dedupe_key;
    return d;
}

Result<StoredRef> Archive::store_original(std::uint64_t docno, const Digest& sha, std::uint64_t raw_size,
                                          std::string_view compressed, std::string_view meta_json) {
    std::lock_guard lock(store_mu_);
    RecordHeader h;
    h.type = RecordType::original;
    h.docno = docno;
    h.sha = sha;
    h.raw_size = raw_size;
    crash_point("store");
    return store_->append(h, meta_json, compressed);
}

Result<StoredRef> Archive::store_location(std::uint64_t docno, const Digest& sha, std::string_view meta_json) {
    std::lock_guard lock(store_mu_);
    RecordHeader h;
    h.type = RecordType::location;
    h.docno = docno;
    h.sha = sha;
    crash_point("store");
    return store_->append(h, meta_json, {});
}

Result<StoredRef> Archive::store_removal(std::string_view meta_json) {
    std::lock_guard lock(store_mu_);
    RecordHeader h;
    h.type = RecordType::removal;
    crash_point("store");
    return store_->append(h, meta_json, {});
}

namespace {

// XSTATEremoved while any location is marked removed.
void update_removed_term(Xapian::Document& doc, const DocData& data) {
    const std::string term(schema::k_removed_term);
    bool any = std::any_of(data.locations.begin(), data.locations.end(), [](const Location& l) { return !l.removed.empty(); });
    if (any) {
        doc.add_boolean_term(term);
        return;
    }
    auto it = doc.termlist_begin();
    it.skip_to(term);
    if (it != doc.termlist_end() && *it == term) doc.remove_term(term);
}

// Adds `where` to a document's terms and data; false if it was already recorded. A place
// marked removed on the server that is seen again takes the new sighting (the mail is back).
bool merge_location(Xapian::Document& doc, const Location& where) {
    DocData data = DocData::from_json(doc.get_data());
    for (auto& l : data.locations) {
        if (l.source != where.source || l.mailbox != where.mailbox || l.folder != where.folder) continue;
        if (l.removed.empty() || !where.removed.empty()) return false;
        l = where;
        add_location_terms(doc, where);
        update_removed_term(doc, data);
        doc.set_data(data.to_json());
        return true;
    }
    data.locations.push_back(where);
    add_location_terms(doc, where);
    doc.set_data(data.to_json());
    return true;
}

enum class Mark { absent, known, marked };

// Marks the locations `removal` names (source, mailbox, server id; its folder unless empty).
Mark mark_removed(std::vector<Location>& locations, const Location& removal) {
    Mark m = Mark::absent;
    for (auto& l : locations) {
        if (l.source != removal.source || l.mailbox != removal.mailbox || l.server_id != removal.server_id) continue;
        if (!removal.folder.empty() && l.folder != removal.folder) continue;
        if (!l.removed.empty()) {
            if (m == Mark::absent) m = Mark::known;
            continue;
        }
        l.removed = removal.removed;
        l.removed_at = removal.removed_at;
        m = Mark::marked;
    }
    return m;
}

}  // namespace

void Archive::note_indexed(const StoredRef& record) {
    std::lock_guard lock(store_mu_);
    if (record.end == 0) {  // caller without a record: fall back to the whole store
        untracked_adds_ = true;
        return;
    }
    std::pair<std::uint32_t, std::uint64_t> e{record.segment, record.end};
    if (e > indexed_end_) indexed_end_ = e;
}

// The queues are deep enough to keep parsing going while a shard commits and syncs, and
// bounded in count and in the size of the messages behind the documents: memory stays flat.
void Archive::push(Shard& sh, Task&& task) {
    constexpr std::size_t k_queue_tasks = 1024;
    constexpr std::uint64_t k_queue_bytes = 64ull << 20;
    std::unique_lock lock(sh.mu);
    sh.cv.wait(lock, [&] {
        return sh.queue.empty() || (sh.queue.size() < k_queue_tasks && sh.queue_bytes + task.weight <= k_queue_bytes);
    });
    sh.queue_bytes += task.weight;
    sh.queue.push_back(std::move(task));
    lock.unlock();
    sh.cv.notify_all();
}

void Archive::set_write_error(Error e) {
    std::lock_guard lock(state_mu_);
    if (!write_error_) write_error_ = std::move(e);
}

std::optional<Error> Archive::write_error() const {
    std::lock_guard lock(state_mu_);
    return write_error_;
}

std::uint64_t Archive::durable_commits() const {
    std::lock_guard lock(state_mu_);
    return durable_seq_;
}

Result<void> Archive::add_document(std::uint64_t docno, Xapian::Document&& doc, const StoredRef& record) {
    if (auto e = write_error()) return fail(*e);
    std::lock_guard lock(enqueue_mu_);
    note_indexed(record);
    {
        std::lock_guard plock(pending_mu_);
        added_since_commit_.push_back(docno);
    }
    Task t{Task::Kind::add, docno, std::move(doc)};
    t.weight = record.raw_size;
    push(shard_of(docno), std::move(t));
    return ok();
}

Result<void> Archive::add_location(std::uint64_t docno, const Location& where, const StoredRef& record) {
    if (auto e = write_error()) return fail(*e);
    std::lock_guard lock(enqueue_mu_);
    note_indexed(record);
    Task t{Task::Kind::location, docno, {}, where};
    push(shard_of(docno), std::move(t));
    return ok();
}

Result<void> Archive::record_removal(const Location& where, std::pair<std::string, std::string> fallback,
                                     const StoredRef& record) {
    if (auto e = write_error()) return fail(*e);
    std::lock_guard lock(enqueue_mu_);
    note_indexed(record);
    if (where.server_id.empty()) {  // no lookup term: nothing to find it by
        if (!fallback.first.empty()) set_metadata(fallback.first, fallback.second);
        return ok();
    }
    auto ticket = std::make_shared<RemovalTicket>();
    ticket->fallback = std::move(fallback);
    ticket->remaining = shards_.size();
    for (auto& sh : shards_) push(*sh, Task{Task::Kind::removal, 0, {}, where, nullptr, ticket});
    return ok();
}

void Archive::writer_loop(Shard& sh) {
    for (;;) {
        Task task;
        {
            std::unique_lock lock(sh.mu);
            sh.cv.wait(lock, [&] { return !sh.queue.empty(); });
            task = std::move(sh.queue.front());
            sh.queue.pop_front();
            sh.queue_bytes -= task.weight;
        }
        sh.cv.notify_all();
        if (task.kind == Task::Kind::stop) return;
        try {
            if (task.kind == Task::Kind::commit) commit_shard(sh, *task.ticket);
            else if (!stopping_ && !write_error()) apply(sh, task);  // after an error nothing more is written
        } catch (const std::exception& e) {  // e.g. out of memory: the run stops, the archive stays whole
            set_write_error(Error{Error::Kind::io, std::string("indexing: ") + e.what()});
        }
    }
}

// On each shard's writer thread: the shard's own documents (committed or not) with the
// location's lookup term, and locations still waiting for their document.
void Archive::apply_removal(Shard& sh, Task& task) {
    bool found = false;
    auto r = xapian_guard(
        [&]() -> Result<void> {
            const std::string term = location_id_term(task.where);
            std::vector<Xapian::docid> ids;
            for (auto it = sh.wdb->postlist_begin(term); it != sh.wdb->postlist_end(term); ++it) ids.push_back(*it);
            for (Xapian::docid id : ids) {
                Xapian::Document doc = sh.wdb->get_document(id);
                DocData data = DocData::from_json(doc.get_data());
                Mark m = mark_removed(data.locations, task.where);
                if (m != Mark::absent) found = true;
                if (m != Mark::marked) continue;
                update_removed_term(doc, data);
                doc.set_data(data.to_json());
                sh.wdb->replace_document(id, doc);
            }
            for (auto& [docno, locations] : sh.early_locations)
                if (mark_removed(locations, task.where) != Mark::absent) found = true;
            return ok();
        },
        "recording a removal of " + task.where.mailbox + " message " + task.where.server_id);
    if (!r) {
        set_write_error(r.error());
        return;
    }
    RemovalTicket& t = *task.removal;
    std::lock_guard st(state_mu_);
    if (found) t.found = true;
    if (--t.remaining == 0 && !t.found && !t.fallback.first.empty()) unmatched_removals_.push_back(std::move(t.fallback));
}

void Archive::apply(Shard& sh, Task& task) {
    if (task.kind == Task::Kind::removal) {
        apply_removal(sh, task);
        return;
    }
    const std::uint64_t docno = task.docno;
    const bool add = task.kind == Task::Kind::add;
    auto r = xapian_guard(
        [&]() -> Result<void> {
            if (add) {
                if (auto it = sh.early_locations.find(docno); it != sh.early_locations.end()) {
                    for (const auto& where : it->second) merge_location(task.doc, where);
                    sh.early_locations.erase(it);
                }
                sh.wdb->replace_document(local_id(docno), task.doc);
                return ok();
            }
            Xapian::Document doc;
            try {
                doc = sh.wdb->get_document(local_id(docno));
            } catch (const Xapian::DocNotFoundError&) {
                sh.early_locations[docno].push_back(task.where);  // its add_document is still to come
                return ok();
            }
            if (merge_location(doc, task.where)) sh.wdb->replace_document(local_id(docno), doc);
            return ok();
        },
        add ? "indexing message " + std::to_string(docno) : "recording a location of message " + std::to_string(docno));
    if (!r) set_write_error(r.error());
}

Result<std::uint64_t> Archive::commit_async() {
    if (auto e = write_error()) return fail(*e);
    auto t = std::make_shared<Ticket>();
    {
        // Nothing is queued between the store end recorded here and the commit's place in
        // the queues, so the commit covers exactly the documents that end refers to.
        std::lock_guard qlock(enqueue_mu_);
        {
            std::lock_guard slock(store_mu_);
            // Records stored for messages still on their way to the index are not referenced
            // yet: a crash must let the next open cut them off, so record only what is queued.
            auto end = untracked_adds_ ? store_->end() : std::max(indexed_end_, committed_end_);
            committed_end_ = end;
            untracked_adds_ = false;
            t->end_text = std::to_string(end.first) + ":" + std::to_string(end.second);
        }
        {
            std::lock_guard plock(pending_mu_);
            t->meta = std::move(pending_meta_);
            pending_meta_.clear();
            t->added = std::move(added_since_commit_);
            added_since_commit_.clear();
            t->next_docno = next_docno_;
        }
        {
            std::lock_guard st(state_mu_);
            t->seq = next_seq_++;
            t->remaining = shards_.size();
        }
        for (auto& sh : shards_) push(*sh, Task{Task::Kind::commit, 0, {}, {}, t});
    }
    // Originals first: nothing the index points to may be lost. The shards wait for this.
    Result<void> synced = ok();
    {
        std::lock_guard slock(store_mu_);
        synced = store_->sync();
    }
    if (synced) crash_point("commit-store-synced");
    {
        std::lock_guard st(state_mu_);
        if (!synced) {
            t->failed = true;
            if (!write_error_) write_error_ = synced.error();
        }
        t->synced = true;
    }
    state_cv_.notify_all();
    if (!synced) return fail(synced.error());
    return t->seq;
}

// On a shard's writer thread, in queue order: everything queued before `t` is in this shard.
void Archive::commit_shard(Shard& sh, Ticket& t) {
    bool go;
    {
        std::unique_lock st(state_mu_);
        state_cv_.wait(st, [&] { return t.synced; });
        go = !t.failed && !write_error_ && !stopping_;
    }
    if (go) {
        auto r = xapian_guard(
            [&]() -> Result<void> {
                sh.wdb->set_metadata(k_meta_store_end, t.end_text);
                sh.wdb->commit_transaction();
                sh.wdb->begin_transaction();
                return ok();
            },
            "committing the index");
        if (!r) {
            set_write_error(r.error());
            go = false;
        }
    }
    bool last;
    {
        std::lock_guard st(state_mu_);
        if (!go) t.failed = true;
        last = --t.remaining == 0;
    }
    if (last) finish_ticket(t);
}

// On the writer thread of the shard that committed last: the metadata database records
// what the shards now hold, then the dedupe reader sees the new documents.
void Archive::finish_ticket(Ticket& t) {
    bool failed;
    {
        std::lock_guard st(state_mu_);
        failed = t.failed;
    }
    if (!failed) {
        crash_point("commit-shards-done");
        // Removals queued before this commit have been looked up by every shard by now.
        std::vector<std::pair<std::string, std::string>> unmatched;
        {
            std::lock_guard st(state_mu_);
            unmatched.swap(unmatched_removals_);
        }
        auto r = xapian_guard(
            [&]() -> Result<void> {
                std::lock_guard mlock(meta_mu_);
                meta_->set_metadata(k_meta_store_end, t.end_text);
                meta_->set_metadata(k_meta_next_docno, std::to_string(t.next_docno));
                for (const auto& [k, v] : unmatched) meta_->set_metadata(k, v);
                for (const auto& [k, v] : t.meta) meta_->set_metadata(k, v);
                meta_->commit_transaction();
                meta_->begin_transaction();
                return ok();
            },
            "committing the index");
        if (r) {
            r = xapian_guard(
                [&]() -> Result<void> {
                    std::lock_guard plock(pending_mu_);
                    committed_->reopen();
                    for (std::uint64_t d : t.added) {
                        if (auto it = pending_keys_.find(d); it != pending_keys_.end()) {
                            pending_.erase(it->second);
                            pending_keys_.erase(it);
                        }
                    }
                    return ok();
                },
                "reopening the index");
        }
        if (!r) {
            set_write_error(r.error());
            failed = true;
        }
    }
    {
        std::lock_guard st(state_mu_);
        t.failed = failed;
        completed_seq_ = t.seq;
        if (!failed && durable_seq_ + 1 == t.seq) durable_seq_ = t.seq;
    }
    state_cv_.notify_all();
}

Result<void> Archive::commit() {
    auto seq = commit_async();
    if (!seq) return fail(seq.error());
    std::unique_lock st(state_mu_);
    state_cv_.wait(st, [&] { return completed_seq_ >= *seq; });
    if (write_error_) return fail(*write_error_);
    return ok();
}

void Archive::set_metadata(const std::string& key, const std::string& value) {
    std::lock_guard lock(pending_mu_);
    pending_meta_.emplace_back(key, value);
}

Result<void> Archive::compact() {
    // Called after commit(): the writer threads wait on empty queues and leave wdb alone.
    std::vector<std::string> errors(shards_.size());
    std::vector<std::thread> workers;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        workers.emplace_back([&, i] {
            const fs::path path = shard_path(dir_, static_cast<unsigned>(i));
            const std::string compacted = path.string() + ".compact", old = path.string() + ".old";
            std::error_code ec;
            fs::remove_all(compacted, ec);
            try {
                Xapian::Database(path.string()).compact(compacted, Xapian::DBCOMPACT_NO_RENUMBER);
            } catch (const Xapian::Error& e) {
                errors[i] = e.get_msg();
            }
        });
    }
    for (auto& w : workers) w.join();
    for (const auto& e : errors)
        if (!e.empty()) return fail(Error::Kind::io, "compacting the index: " + e);
    return xapian_guard(
        [&]() -> Result<void> {
            for (std::size_t i = 0; i < shards_.size(); ++i) {
                const fs::path path = shard_path(dir_, static_cast<unsigned>(i));
                shards_[i]->wdb.reset();  // its open transaction holds no changes after commit()
                std::error_code ec;
                fs::rename(path, path.string() + ".old", ec);
                if (!ec) fs::rename(path.string() + ".compact", path, ec);
                if (ec) return fail(Error::Kind::io, "installing the compacted index: " + ec.message());
                crash_point("compact-swapped");
                fs::remove_all(path.string() + ".old", ec);
                shards_[i]->wdb = std::make_unique<Xapian::WritableDatabase>(path.string(), Xapian::DB_CREATE_OR_OPEN);
                shards_[i]->wdb->begin_transaction();
            }
            std::lock_guard plock(pending_mu_);
            committed_ = std::make_unique<Xapian::Database>(database());
            return ok();
        },
        "compacting the index");
}


}  // namespace mv::index
