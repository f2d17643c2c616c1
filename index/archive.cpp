#include "index/archive.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <fstream>
#include <thread>
#include <sstream>

#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/reindex.hpp"
#include "index/store/generations.hpp"
#include "index/util/crash_point.hpp"
#include "index/schema.hpp"

namespace mv::index {
namespace fs = std::filesystem;
namespace {

constexpr const char* k_format_file = "FORMAT";
constexpr const char* k_meta_next_docno = "mv:next_docno";
constexpr const char* k_meta_store_end = "mv:store_end";

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

std::optional<StorePos> parse_end(const std::string& s) {
    std::uint32_t seg = 0;
    unsigned long long size = 0;
    if (std::sscanf(s.c_str(), "%u:%llu", &seg, &size) != 2 || seg == 0) return std::nullopt;
    return StorePos{seg, size};
}

std::string end_text(StorePos e) { return std::to_string(e.first) + ":" + std::to_string(e.second); }

Error missing_index(const fs::path& dir) {
    return Error{Error::Kind::not_found, "the index of " + dir.string() +
                                             " is missing; the originals are intact: run `mailvault --archive " +
                                             dir.string() + " reindex` to rebuild it from them"};
}

// The smallest and the largest store end the index databases recorded at their commits:
// everything before the smallest is in every shard; everything before the largest was
// durable before some commit recorded it.
struct RecordedEnds {
    StorePos low{1, 0}, high{1, 0};
    bool any = false;
};

RecordedEnds recorded_ends(const std::vector<std::string>& texts) {
    RecordedEnds r;
    bool first = true;
    for (const auto& t : texts) {
        auto e = parse_end(t);
        if (!e) {  // a database that never recorded one (new, or from an older version)
            r.low = {1, 0};
            first = false;
            continue;
        }
        r.any = true;
        r.high = std::max(r.high, *e);
        r.low = first ? *e : std::min(r.low, *e);
        first = false;
    }
    return r;
}

// Reading while a writer may switch index generations: open what is current, and if that
// failed because the writer switched and removed it in between, open the new one.
template <typename F>
auto with_current_index(const fs::path& dir, F&& f) {
    for (int attempt = 0;; ++attempt) {
        const auto index_dir = find_index_dir(dir);
        try {
            return f(index_dir);
        } catch (const Xapian::DatabaseError&) {
            const bool switched = find_index_dir(dir) != index_dir;
            if (attempt >= 20 || !switched) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(5 * (attempt + 1)));
        }
    }
}

// The dedupe reader's reopen() reads each shard's newest revision while the other shards'
// writer threads go on committing the next tickets: a shard that commits twice during it
// reuses the blocks being read, and Xapian (1.4, glass) says so either as DatabaseModifiedError
// or, reading such a block, as DatabaseCorruptError ("Expected block 6 to be level 1, not 0");
// both mean: reopen again. Seen at the end of a run with many commits queued: the run, and
// every later run of the process (the write error stays), failed with "reopening the index"
// (Pipeline.ManyRunsInOneProcessReuseTheWorkerThreads). A shard really damaged fails every time.
void reopen_retrying(Xapian::Database& db) {
    for (int attempt = 1;; ++attempt) {
        try {
            db.reopen();
            return;
        } catch (const Xapian::DatabaseModifiedError&) {
            if (attempt >= 100) throw;
        } catch (const Xapian::DatabaseCorruptError&) {
            if (attempt >= 100) throw;
        }
    }
}

// An archive created but not yet written to has no index: it reads as empty.
Xapian::Database empty_database() { return Xapian::Database(std::string(), Xapian::DB_BACKEND_INMEMORY); }

Xapian::Database open_shards(const fs::path& index_dir, unsigned shards) {
    Xapian::Database db;
    for (unsigned i = 0; i < shards; ++i) db.add_database(Xapian::Database(shard_path_for_read(index_dir, i).string()));
    return db;
}

}  // namespace

fs::path Archive::shard_path(unsigned i) const { return index_dir_ / ("shard-" + std::to_string(i)); }
fs::path Archive::meta_path() const { return index_dir_ / "meta"; }

Result<std::unique_ptr<Archive>> Archive::open(const fs::path& dir, OpenMode mode, const ArchiveOptions& options) {
    std::unique_ptr<Archive> a(new Archive());
    a->dir_ = dir;
    a->mode_ = mode;
    a->index_use_ = mode == OpenMode::write ? options.index_use : IndexUse::full;
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
    a->shard_count_ = format->shards;

    std::optional<fs::path> index_dir;
    if (mode == OpenMode::write) {
        auto settled = settle_index_dir(dir, format->shards);
        if (!settled) return fail(settled.error());
        index_dir = *settled;
    } else {
        index_dir = find_index_dir(dir);
    }
    auto store = PackStore::open(dir / "originals", mode == OpenMode::write);
    if (!store) return fail(store.error());
    a->store_ = std::move(*store);
    // The originals are the archive of record: an index that is gone is rebuilt from them by
    // `reindex`, never replaced by an empty one (which would make them look unreferenced).
    const bool has_mail = a->store_->total_bytes() > 0;
    if (!index_dir && has_mail && a->index_use_ == IndexUse::full) return fail(missing_index(dir));
    if (index_dir) a->index_dir_ = *index_dir;

    if (mode == OpenMode::read) return a;
    if (a->index_use_ == IndexUse::rebuild) {
        // Only the originals: their torn tail is recovered, trusting what the index recorded.
        RecordedEnds ends;
        if (index_dir) {
            // Each database on its own: a damaged shard must not make every record past the
            // start count as unverified (a damaged record there would move the rest aside).
            std::vector<std::string> texts;
            auto read_end = [&](const fs::path& db) {
                try {
                    texts.push_back(Xapian::Database(db.string()).get_metadata(k_meta_store_end));
                } catch (const Xapian::Error&) {
                }
            };
            read_end(*index_dir / "meta");
            for (unsigned i = 0; i < format->shards; ++i) read_end(shard_path_for_read(*index_dir, i));
            ends = texts.empty() ? RecordedEnds{} : recorded_ends(texts);  // none readable: verify every record
        }
        if (auto r = a->recover_store(ends.high); !r) return fail(r.error());
        return a;
    }

    const bool create = !index_dir;
    if (create) {
        auto gen = create_generation(dir);
        if (!gen) return fail(gen.error());
        a->index_dir_ = *gen;
    }
    if (auto r = a->open_databases(create); !r) return fail(r.error());
    if (create) {
        if (auto r = switch_generation(dir, a->index_dir_); !r) return fail(r.error());
    }
    RecordedEnds ends;
    auto r = xapian_guard(
        [&]() -> Result<void> {
            std::uint64_t next = 1;
            std::string n = a->meta_->get_metadata(k_meta_next_docno);
            if (!n.empty()) next = std::stoull(n);
            const std::size_t count = a->shards_.size();
            std::vector<std::string> texts{a->meta_->get_metadata(k_meta_store_end)};
            for (std::size_t i = 0; i < count; ++i) {
                Xapian::docid last = a->shards_[i]->wdb->get_lastdocid();
                if (last > 0) next = std::max<std::uint64_t>(next, (std::uint64_t{last} - 1) * count + i + 2);
                texts.push_back(a->shards_[i]->wdb->get_metadata(k_meta_store_end));
            }
            a->next_docno_ = next;
            ends = recorded_ends(texts);
            return ok();
        },
        "reading the index");
    if (!r) return fail(r.error());
    if (auto rs = a->recover_store(ends.high); !rs) return fail(rs.error());
    a->committed_ = std::make_unique<Xapian::Database>(a->database());
    for (std::size_t i = 0; i < a->shards_.size(); ++i) {
        a->shards_[i]->writer = std::thread([arch = a.get(), s = a->shards_[i].get(), i] {
            pthread_setname_np(pthread_self(), ("mv-shard-" + std::to_string(i)).c_str());
            arch->writer_loop(*s);
        });
    }
    // Records past what every shard committed may be missing from some shard: a crashed
    // run stored them, or a shard committed and another did not. Index what is missing.
    if (ends.low < a->store_->end()) {
        if (auto ri = a->index_unreferenced(ends.low); !ri) return fail(ri.error());
    }
    return a;
}

// Opens (or creates) the databases of index_dir_ and starts their transactions.
Result<void> Archive::open_databases(bool create) {
    return xapian_guard(
        [&]() -> Result<void> {
            // An existing index must be whole: a missing shard is an error, never a new empty one.
            const int shard_flags = create ? Xapian::DB_CREATE : Xapian::DB_OPEN;
            if (shards_.empty())
                for (unsigned i = 0; i < shard_count_; ++i) shards_.push_back(std::make_unique<Shard>());
            for (unsigned i = 0; i < shard_count_; ++i)
                shards_[i]->wdb = std::make_unique<Xapian::WritableDatabase>(shard_path(i).string(), shard_flags);
            meta_ = std::make_unique<Xapian::WritableDatabase>(meta_path().string(), Xapian::DB_CREATE_OR_OPEN);
            // Work between commits runs inside a transaction: Xapian commits pending changes
            // when a WritableDatabase is destroyed, but cancels an open transaction. Only
            // commit() may make documents durable (after their originals).
            for (auto& sh : shards_) sh->wdb->begin_transaction();
            meta_->begin_transaction();
            return ok();
        },
        "opening the index");
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

// A crashed run may have left a torn record at the end of the store: move it aside. Records
// past `durable` are each verified; nothing whole is ever cut.
Result<void> Archive::recover_store(StorePos durable) {
    auto r = store_->recover_tail(durable);
    if (!r) return fail(r.error());
    for (auto& n : r->notes) recovery_notes_.push_back("originals: " + n);
    committed_end_ = store_->end();
    return ok();
}

// Indexes what the store holds from `from` on that the committed index does not reflect:
// originals stored by a run that was stopped before its commit (under their own docnos, or
// as another place of an already indexed message), their further places, and removals.
// Whatever a source re-delivers afterwards is then a duplicate, not a second copy.
Result<void> Archive::index_unreferenced(StorePos from) {
    DocumentBuilder builder(stemmer_);
    std::unordered_map<std::uint64_t, std::uint64_t> moved;  // record docno -> document
    std::unordered_map<std::uint64_t, bool> adopted;         // docnos indexed here
    std::optional<Error> failure;
    std::uint64_t indexed = 0, places = 0, damaged = 0;
    auto indexed_sha = [&](std::uint64_t docno) -> std::optional<std::string> {
        try {
            return committed_->get_document(static_cast<Xapian::docid>(docno)).get_value(schema::k_slot_sha256);
        } catch (const Xapian::DocNotFoundError&) {
            return std::nullopt;
        }
    };
    auto scanned = xapian_guard(
        [&]() -> Result<void> {
            return store_->scan(
                [&](const RecordHeader& h, const StoredRef& ref, std::string_view meta) {
                    const std::string sha(reinterpret_cast<const char*>(h.sha.data()), h.sha.size());
                    if (h.type == RecordType::original) {
                        if (auto s = indexed_sha(h.docno); s && *s == sha) return true;  // in the index
                        auto raw = read_original(ref);
                        if (!raw || sha256(*raw) != h.sha) {
                            ++damaged;
                            return true;
                        }
                        const Digest key = dedupe_key(*raw);
                        if (auto d = find_duplicate(key)) {  // stored twice: one document, two places
                            moved[h.docno] = *d;
                            if (auto r = add_location(*d, location_from_meta(meta), ref); !r) failure = r.error();
                            ++places;
                            return !failure;
                        }
                        std::uint64_t docno = h.docno;
                        if (docno == 0 || indexed_sha(docno) || adopted.count(docno)) {
                            docno = allocate_docno(key);  // its docno went to another message
                            moved[h.docno] = docno;
                        } else {
                            reserve_docno(key, docno);
                        }
                        adopted[docno] = true;
                        Xapian::Document doc = document_for_record(builder, *raw, h.sha, key, ref, meta);
                        if (auto r = add_document(docno, std::move(doc), ref); !r) failure = r.error();
                        ++indexed;
                        return !failure;
                    }
                    if (h.type == RecordType::location) {
                        std::uint64_t docno = moved.count(h.docno) ? moved[h.docno] : h.docno;
                        if (!adopted.count(docno) && !indexed_sha(docno)) return true;  // its original is not here
                        if (auto r = add_location(docno, location_from_meta(meta), ref); !r) failure = r.error();
                        ++places;
                        return !failure;
                    }
                    if (h.type == RecordType::removal) {
                        if (auto r = record_removal(location_from_meta(meta), {}, ref); !r) failure = r.error();
                        return !failure;
                    }
                    return true;
                },
                from);
        },
        "indexing stored originals");
    if (!scanned) return fail(scanned.error());
    if (failure) return fail(*failure);
    // Commit even when everything was known: every shard then records the whole store as
    // reflected, and the next open scans nothing.
    if (auto c = commit(); !c) return fail(c.error());
    if (indexed || places || damaged)
        recovery_notes_.push_back("index: " + std::to_string(indexed) + " stored messages and " +
                                  std::to_string(places) + " further places indexed that an interrupted run had " +
                                  "stored without committing" +
                                  (damaged ? ", " + std::to_string(damaged) + " damaged originals skipped" : ""));
    return ok();
}

Xapian::Database Archive::database() const {
    if (mode_ == OpenMode::write) {
        if (index_dir_.empty()) return empty_database();
        return open_shards(index_dir_, shard_count_);
    }
    return with_current_index(dir_, [&](const std::optional<fs::path>& index_dir) {
        return index_dir ? open_intact_shards(*index_dir) : empty_database();
    });
}

Xapian::Database Archive::open_intact_shards(const fs::path& index_dir) const {
    const auto damaged = damaged_shards();
    Xapian::Database db;
    for (unsigned i = 0; i < shard_count_; ++i) {
        if (damaged.count(i)) {
            db.add_database(empty_database());  // keeps docno = combined docid for the others
            continue;
        }
        try {
            db.add_database(Xapian::Database(shard_path_for_read(index_dir, i).string()));
        } catch (const Xapian::DatabaseCorruptError& e) {
            mark_shard_damaged(i, e.get_msg());
            db.add_database(empty_database());
        }
    }
    return db;
}

void Archive::mark_shard_damaged(unsigned shard, const std::string& why) const {
    std::lock_guard lk(damage_mu_);
    damaged_.emplace(shard, why);
}

std::map<unsigned, std::string> Archive::damaged_shards() const {
    std::lock_guard lk(damage_mu_);
    return damaged_;
}

fs::path Archive::shard_location(unsigned shard) const {
    if (!index_dir_.empty()) return shard_path_for_read(index_dir_, shard);
    auto index_dir = find_index_dir(dir_);
    return index_dir ? shard_path_for_read(*index_dir, shard) : dir_ / "index";
}

std::size_t Archive::find_damaged_shards() const {
    const auto known = damaged_shards();
    std::size_t found = 0;
    for (unsigned i = 0; i < shard_count_; ++i) {
        if (known.count(i)) continue;
        const fs::path path = shard_location(i);
        try {
            if (auto errors = Xapian::Database::check(path.string(), 0, nullptr); errors > 0) {
                mark_shard_damaged(i, std::to_string(errors) + " errors found by a check of its tables");
                ++found;
            }
        } catch (const Xapian::Error& e) {
            if (!is_index_damage(e)) continue;
            mark_shard_damaged(i, e.get_msg());
            ++found;
        }
    }
    return found;
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
    } catch (const Xapian::Error& e) {
        if (is_index_damage(e) && shard_count_ > 0) mark_shard_damaged(static_cast<unsigned>((docno - 1) % shard_count_), e.get_msg());
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
    if (!doc && shard_count_ > 0) {
        const unsigned shard = static_cast<unsigned>((docno - 1) % shard_count_);
        const auto damaged = damaged_shards();
        const std::uint64_t next = std::strtoull(metadata(k_meta_next_docno).c_str(), nullptr, 10);
        if (auto it = damaged.find(shard); it != damaged.end() && (next == 0 || docno < next))
            return fail(Error::Kind::corrupt, "message " + std::to_string(docno) + ": its index entry is in the damaged index shard " +
                                                  shard_location(shard).filename().string() + " (" + it->second +
                                                  "); `mailvault reindex` rebuilds the index from the originals");
    }
    if (!doc) return fail(Error::Kind::not_found, "no message " + std::to_string(docno));
    return read_original(docno, *doc);
}

Result<std::string> Archive::read_original(std::uint64_t docno, const Xapian::Document& doc) const {
    auto ref = StoredRef::decode(doc.get_value(schema::k_slot_location));
    if (!ref) return fail(Error::Kind::corrupt, "message " + std::to_string(docno) + " has no stored original");
    const std::string where = "the original of message " + std::to_string(docno) + " is damaged (" +
                              store_->segment_name(ref->segment) + " at offset " + std::to_string(ref->offset) + ")";
    auto payload = store_->read_payload(*ref);
    if (!payload) {
        if (payload.error().kind == Error::Kind::corrupt) return fail(Error::Kind::corrupt, where + ": " + payload.error().message);
        return fail(payload.error());
    }
    auto raw = zstd_decompress(*payload, ref->raw_size);
    if (!raw) return fail(Error::Kind::corrupt, where + ": not a whole zstd frame: " + raw.error().message);
    // The bytes must be the ones archived: what the index recorded when it was stored.
    const std::string want = doc.get_value(schema::k_slot_sha256);
    if (want.size() == sizeof(Digest)) {
        const Digest got = sha256(*raw);
        if (std::memcmp(got.data(), want.data(), want.size()) != 0)
            return fail(Error::Kind::corrupt, where + ": its SHA-256 does not match the index");
    }
    return raw;
}

std::string Archive::metadata(const std::string& key) const {
    try {
        if (meta_) {
            std::lock_guard lock(const_cast<std::mutex&>(meta_mu_));
            return meta_->get_metadata(key);
        }
        if (mode_ == OpenMode::write) {  // rebuild: what the index being replaced holds
            if (index_dir_.empty()) return {};
            return Xapian::Database(meta_path().string()).get_metadata(key);
        }
        return with_current_index(dir_, [&](const std::optional<fs::path>& index_dir) -> std::string {
            return index_dir ? Xapian::Database((*index_dir / "meta").string()).get_metadata(key) : std::string();
        });
    } catch (const Xapian::Error&) {
        return {};
    }
}

std::vector<std::pair<std::string, std::string>> Archive::metadata_with_prefix(const std::string& prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    auto collect = [&](const Xapian::Database& db) {
        for (auto it = db.metadata_keys_begin(prefix); it != db.metadata_keys_end(prefix); ++it)
            out.emplace_back(*it, db.get_metadata(*it));
    };
    try {
        if (meta_) {
            std::lock_guard lock(const_cast<std::mutex&>(meta_mu_));
            collect(Xapian::Database(*meta_));
        } else if (mode_ == OpenMode::write) {
            if (!index_dir_.empty()) collect(Xapian::Database(meta_path().string()));
        } else {
            with_current_index(dir_, [&](const std::optional<fs::path>& index_dir) {
                out.clear();
                if (index_dir) collect(Xapian::Database((*index_dir / "meta").string()));
                return 0;
            });
        }
    } catch (const Xapian::Error&) {
        out.clear();
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
            reopen_retrying(*committed_);
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

void Archive::reserve_docno(const Digest& dedupe_key, std::uint64_t docno) {
    std::lock_guard lock(pending_mu_);
    next_docno_ = std::max(next_docno_, docno + 1);
    pending_[dedupe_key] = docno;
    pending_keys_[docno] = dedupe_key;
}

std::uint64_t Archive::next_docno() const {
    std::lock_guard lock(const_cast<std::mutex&>(pending_mu_));
    return next_docno_;
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
    if (shards_.empty()) return fail(Error::Kind::io, "the index is not open for writing");
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
    if (shards_.empty()) return fail(Error::Kind::io, "the index is not open for writing");
    if (auto e = write_error()) return fail(*e);
    std::lock_guard lock(enqueue_mu_);
    note_indexed(record);
    Task t{Task::Kind::location, docno, {}, where};
    push(shard_of(docno), std::move(t));
    return ok();
}

Result<void> Archive::record_removal(const Location& where, std::pair<std::string, std::string> fallback,
                                     const StoredRef& record) {
    if (shards_.empty()) return fail(Error::Kind::io, "the index is not open for writing");
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
    if (shards_.empty()) return fail(Error::Kind::io, "the index is not open for writing");
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
            t->end_text = end_text(end);
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
                    reopen_retrying(*committed_);
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

// Builds the compacted copy as a new generation beside the current one, then switches to
// it in one atomic step: a crash at any moment leaves one complete index current.
Result<void> Archive::compact() {
    // Called after commit(): the writer threads wait on empty queues and leave wdb alone.
    if (shards_.empty()) return fail(Error::Kind::io, "compacting the index: the index is not open");
    auto gen = create_generation(dir_);
    if (!gen) return fail(gen.error());
    std::vector<std::string> errors(shards_.size());
    std::vector<std::thread> workers;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        workers.emplace_back([&, i] {
            try {
                Xapian::Database(shard_path(static_cast<unsigned>(i)).string())
                    .compact((*gen / ("shard-" + std::to_string(i))).string(), Xapian::DBCOMPACT_NO_RENUMBER);
            } catch (const Xapian::Error& e) {
                errors[i] = e.get_msg();
            }
        });
    }
    for (auto& w : workers) w.join();
    auto built = xapian_guard(
        [&]() -> Result<void> {
            for (const auto& e : errors)
                if (!e.empty()) return fail(Error::Kind::io, "compacting the index: " + e);
            // The metadata database (checkpoints, run records) goes along as it is.
            Xapian::WritableDatabase meta((*gen / "meta").string(), Xapian::DB_CREATE);
            {
                std::lock_guard mlock(meta_mu_);
                for (auto it = meta_->metadata_keys_begin(); it != meta_->metadata_keys_end(); ++it)
                    meta.set_metadata(*it, meta_->get_metadata(*it));
            }
            meta.commit();
            meta.close();
            return ok();
        },
        "compacting the index");
    if (!built) {
        std::error_code ec;
        fs::remove_all(*gen, ec);
        return built;
    }
    crash_point("compact-built");
    for (auto& sh : shards_) sh->wdb.reset();  // their open transactions hold no changes after commit()
    meta_.reset();
    auto switched = switch_generation(dir_, *gen);
    // Whatever happened, continue with the generation CURRENT names now.
    if (auto current = find_index_dir(dir_)) index_dir_ = *current;
    if (switched) crash_point("compact-swapped");
    auto reopened = open_databases(false);
    if (!reopened) return reopened;
    auto r = xapian_guard(
        [&]() -> Result<void> {
            std::lock_guard plock(pending_mu_);
            committed_ = std::make_unique<Xapian::Database>(database());
            return ok();
        },
        "compacting the index");
    if (!r) return r;
    if (!switched) return fail(Error::Kind::io, "installing the compacted index: " + switched.error().message);
    return ok();
}

}  // namespace mv::index
