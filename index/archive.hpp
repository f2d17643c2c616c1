#pragma once
// The archive: originals store + sharded Xapian index + checkpoints, in one directory:
//   FORMAT, lock, originals/pack-NNNNNN.mvp, index/CURRENT naming the index generation in
//   use, index/gen-NNNNNN/shard-K (documents) and index/gen-NNNNNN/meta (metadata); see
//   index/store/generations.hpp (older archives: index/shard-K and index/meta).
//
// Docno d lives in shard (d-1) % N as shard-local docid (d-1)/N + 1, which is exactly
// how Xapian numbers documents of N databases searched together, so the combined
// Xapian::Database's docid *is* the docno.
#include <xapian.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "index/store/pack_store.hpp"
#include "index/util/result.hpp"
#include "index/util/sha256.hpp"

namespace mv::index {

// Where a message was seen.
struct Location {
    std::string source;   // source name, "import" for local import
    std::string mailbox;
    std::string folder;
    std::string server_id;  // IMAP UID, POP3 UIDL, Graph id, file name
    // Set when the server reported the message gone from here (Graph @removed); it stays archived.
    std::string removed;          // the server's reason ("deleted", "changed"); empty: not reported
    std::int64_t removed_at = 0;  // when that was seen, UTC seconds
    std::vector<std::string> flags;  // as the source reported them (IMAP flags, Maildir letters)
    bool operator==(const Location&) const = default;
};

enum class OpenMode { read, write };

// full: the index is opened (created for a new archive). rebuild (write mode, for reindex):
// the lock is taken, leftovers are settled and the originals' torn tail is recovered, but the
// index is not opened (it may be missing); metadata() reads what it holds.
enum class IndexUse { full, rebuild };

struct ArchiveOptions {
    std::string stemmer = "english";  // "none" disables stemming
    unsigned shards = 2;              // only used when the archive is created
    IndexUse index_use = IndexUse::full;
};

struct DigestHash {
    std::size_t operator()(const Digest& d) const noexcept {
        std::size_t h;
        static_assert(sizeof(h) <= sizeof(Digest));
        std::memcpy(&h, d.data(), sizeof(h));
        return h;
    }
};

class Archive {
  public:
    // Creates the directory on first write. A second writer gets Error::Kind::locked.
    // Opening for writing recovers from a crash: a half-done index switch left by an older
    // version is finished or rolled back, a torn tail of the originals is moved aside
    // (PackStore::recover_tail), and stored records that no committed index entry reflects
    // are indexed now (index_unreferenced). An archive whose originals survive but whose
    // index is gone is refused (Error::Kind::not_found, naming `mailvault reindex`), never
    // restarted empty.
    static Result<std::unique_ptr<Archive>> open(const std::filesystem::path& dir, OpenMode mode,
                                                 const ArchiveOptions& options = {});
    ~Archive();
    Archive(const Archive&) = delete;
    Archive& operator=(const Archive&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    const std::string& stemmer() const { return stemmer_; }
    unsigned shard_count() const { return shard_count_; }
    // What opening for writing repaired (torn tail moved aside, records indexed), one line each.
    const std::vector<std::string>& recovery_notes() const { return recovery_notes_; }

    // ---- reading (any mode) ----
    // All shards as one database; docids are docnos. Reopened on each call in read mode.
    Xapian::Database database() const;
    std::uint64_t document_count() const;
    std::optional<Xapian::Document> document(std::uint64_t docno) const;
    Result<std::string> read_original(std::uint64_t docno) const;  // decompressed bytes
    // The same for `doc`, the index entry of `docno` read through a database of the caller's.
    Result<std::string> read_original(std::uint64_t docno, const Xapian::Document& doc) const;
    Result<std::string> read_original(const StoredRef& ref) const;
    std::string metadata(const std::string& key) const;  // committed value or ""
    std::vector<std::pair<std::string, std::string>> metadata_with_prefix(const std::string& prefix) const;
    PackStore& store() { return *store_; }
    const PackStore& store() const { return *store_; }

    // ---- damaged index shards (read side) ----
    // A shard found damaged is left out of database() from then on (an empty stand-in keeps
    // docno arithmetic), so searches go on over the others; callers say results are incomplete.
    void mark_shard_damaged(unsigned shard, const std::string& why) const;
    std::map<unsigned, std::string> damaged_shards() const;  // shard -> what Xapian said
    // Checks every shard not yet known damaged (Xapian::Database::check: reads it all) and marks
    // the damaged ones; returns how many it found. Called after Xapian reported damage, and by verify.
    std::size_t find_damaged_shards() const;
    // Where shard `i` of the index in use is (for messages naming it).
    std::filesystem::path shard_location(unsigned shard) const;

    // ---- writing (write mode). Thread safety as noted per call. ----
    // Serial stage: the docno of an archived message with this dedupe key, committed or pending.
    std::optional<std::uint64_t> find_duplicate(const Digest& dedupe_key);
    // Serial stage: reserves a new docno for `dedupe_key` (registered as pending).
    std::uint64_t allocate_docno(const Digest& dedupe_key);
    // Serial stage: registers `docno`, read from a stored record, for `dedupe_key` as pending;
    // new docnos continue after it.
    void reserve_docno(const Digest& dedupe_key, std::uint64_t docno);
    // The docno the next new message gets.
    std::uint64_t next_docno() const;
    // Serial stage: appends the compressed original; durable at the next commit.
    Result<StoredRef> store_original(std::uint64_t docno, const Digest& sha, std::uint64_t raw_size,
                                     std::string_view compressed, std::string_view meta_json);
    // Serial stage: notes another place a stored original was seen (replayed by reindex).
    Result<StoredRef> store_location(std::uint64_t docno, const Digest& sha, std::string_view meta_json);
    // Serial stage: notes a removal on the server (see record_removal), replayed by reindex.
    Result<StoredRef> store_removal(std::string_view meta_json);
    // Indexing runs on one writer thread per shard, so the pipeline never waits for a shard
    // that is busy committing; the calls below only queue work (bounded) for those threads.
    // Any thread: indexes a new document (moved, never copied). `record` is its stored
    // original: commits record how far the store is reflected in the index, and the next
    // open indexes whatever a crashed run stored past that.
    Result<void> add_document(std::uint64_t docno, Xapian::Document&& doc, const StoredRef& record = {});
    // Any thread: records another place where an archived message was seen. No-op if known.
    Result<void> add_location(std::uint64_t docno, const Location& where, const StoredRef& record = {});
    // Any thread: the server no longer has the message at `where` (source, mailbox, server_id,
    // and folder unless empty; `removed` and `removed_at` set). Marks that location of its
    // document removed; the message stays archived. Queued on every shard's writer thread, so it
    // sees every document and location queued before it. If no document has that location,
    // `fallback` (a metadata key and value, unless the key is empty) is committed instead.
    Result<void> record_removal(const Location& where, std::pair<std::string, std::string> fallback = {},
                                const StoredRef& record = {});
    // Any thread: a key/value to commit with the next commit (checkpoints, last-sync records).
    void set_metadata(const std::string& key, const std::string& value);
    // Starts a commit of everything queued so far and returns without waiting for it: the
    // originals are made durable first, then each shard commits on its writer thread, then
    // the metadata (checkpoints) set so far — so a checkpoint never covers a document that
    // is not durable. Returns the commit's sequence number (1, 2, ...).
    Result<std::uint64_t> commit_async();
    // The highest sequence number up to which every commit has succeeded.
    std::uint64_t durable_commits() const;
    // The first error a writer thread met (nothing is written after it), if any.
    std::optional<Error> write_error() const;
    // commit_async() and wait for it: everything added before is durable, or an error.
    Result<void> commit();
    // Rewrites every shard compactly (docnos kept), in parallel, into a new index generation
    // that replaces the current one in one atomic step; call after commit().
    // A bulk import leaves B-tree blocks half full: this roughly halves the index.
    Result<void> compact();

  private:
    // One commit in flight: what it records once every shard has committed.
    struct Ticket {
        std::uint64_t seq = 0;
        std::string end_text;                                    // store end the index refers to
        std::uint64_t next_docno = 1;
        std::vector<std::pair<std::string, std::string>> meta;   // set_metadata() before it
        std::vector<std::uint64_t> added;                        // docnos it makes durable
        std::size_t remaining = 0;  // shards still to commit      (state_mu_)
        bool synced = false;        // originals durable           (state_mu_)
        bool failed = false;        //                              (state_mu_)
    };
    // One record_removal(), looked up by every shard: the last one to look decides on the fallback.
    struct RemovalTicket {
        std::pair<std::string, std::string> fallback;
        std::size_t remaining = 0;  // shards still to look     (state_mu_)
        bool found = false;         //                          (state_mu_)
    };
    struct Task {
        enum class Kind { add, location, removal, commit, stop } kind = Kind::add;
        std::uint64_t docno = 0;
        Xapian::Document doc;
        Location where;
        std::shared_ptr<Ticket> ticket;
        std::shared_ptr<RemovalTicket> removal;
        std::uint64_t weight = 0;  // raw bytes of the message behind a document (queue bound)
    };
    struct Shard {
        std::unique_ptr<Xapian::WritableDatabase> wdb;  // its writer thread's only, between commits
        std::mutex mu;                                  // queue
        std::condition_variable cv;
        std::deque<Task> queue;
        std::uint64_t queue_bytes = 0;  // sum of the queued tasks' weight
        std::thread writer;
        std::unordered_map<std::uint64_t, std::vector<Location>> early_locations;  // dup seen before add
    };
    Archive() = default;
    Shard& shard_of(std::uint64_t docno) { return *shards_[(docno - 1) % shards_.size()]; }
    Xapian::docid local_id(std::uint64_t docno) const { return static_cast<Xapian::docid>((docno - 1) / shards_.size() + 1); }
    Result<void> open_databases(bool create);
    Result<void> close_and_reopen_databases();
    Result<void> recover_store(StorePos durable);
    Result<void> index_unreferenced(StorePos from);
    std::filesystem::path shard_path(unsigned i) const;
    std::filesystem::path meta_path() const;
    void note_indexed(const StoredRef& record);
    void push(Shard& sh, Task&& task);
    void writer_loop(Shard& sh);
    void apply(Shard& sh, Task& task);
    void apply_removal(Shard& sh, Task& task);
    void commit_shard(Shard& sh, Ticket& ticket);
    void finish_ticket(Ticket& ticket);
    void set_write_error(Error e);

    std::filesystem::path dir_;
    std::filesystem::path index_dir_;  // shard-K and meta; empty: no index (read or rebuild)
    OpenMode mode_ = OpenMode::read;
    IndexUse index_use_ = IndexUse::full;
    unsigned shard_count_ = 0;
    std::vector<std::string> recovery_notes_;
    std::string stemmer_;
    int lock_fd_ = -1;
    std::vector<std::unique_ptr<Shard>> shards_;
    // Checkpoints, docno counter, run records: committed after the shards, so a checkpoint
    // never covers documents that are not durable.
    std::unique_ptr<Xapian::WritableDatabase> meta_;
    std::unique_ptr<PackStore> store_;
    std::uint64_t next_docno_ = 1;
    StorePos indexed_end_{0, 0};    // store end referenced by the index
    StorePos committed_end_{1, 0};  // as recorded by the last commit
    bool untracked_adds_ = false;

    std::mutex enqueue_mu_;  // adds vs. the place of a commit in the shards' queues
    std::mutex store_mu_;    // appends vs. commit's sync
    std::mutex meta_mu_;     // meta_
    mutable std::mutex state_mu_;
    std::condition_variable state_cv_;
    std::uint64_t next_seq_ = 1, completed_seq_ = 0, durable_seq_ = 0;  // (state_mu_)
    std::optional<Error> write_error_;               // (state_mu_)
    std::vector<std::pair<std::string, std::string>> unmatched_removals_;  // fallbacks for the next commit (state_mu_)
    std::atomic<bool> stopping_{false};
    std::mutex pending_mu_;
    std::unordered_map<Digest, std::uint64_t, DigestHash> pending_;   // this run, until committed
    std::unordered_map<std::uint64_t, Digest> pending_keys_;          // docno -> key of pending_
    std::vector<std::uint64_t> added_since_commit_;
    std::vector<std::pair<std::string, std::string>> pending_meta_;
    std::unique_ptr<Xapian::Database> committed_;  // snapshot for dedupe lookups
    mutable std::mutex damage_mu_;
    mutable std::map<unsigned, std::string> damaged_;  // shards left out of database() (damage_mu_)
    Xapian::Database open_intact_shards(const std::filesystem::path& index_dir) const;
};

// Xapian's word for a damaged database (corrupt blocks, tables that do not add up), as
// opposed to a lock, a concurrent modification or a missing file.
inline bool is_index_damage(const Xapian::Error& e) {
    const std::string_view type = e.get_type();  // Xapian::Error is not polymorphic: its type name
    return type == "DatabaseCorruptError" || type == "DatabaseError";
}

// Runs f(), which reads archive.database(); when Xapian reports damage, finds the damaged
// shards, leaves them out and runs f() once more over the rest (other errors propagate).
template <typename F>
auto on_intact_shards(const Archive& archive, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const Xapian::Error& e) {
        if (!is_index_damage(e) || archive.find_damaged_shards() == 0) throw;
    }
    return f();
}

// Xapian throws its own hierarchy; this guard turns it into an Error.
template <typename F>
auto xapian_guard(F&& f, std::string_view what) -> decltype(f()) {
    try {
        return f();
    } catch (const Xapian::DatabaseLockError& e) {
        return fail(Error::Kind::locked, std::string(what) + ": archive is locked by another writer");
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, std::string(what) + ": " + e.get_msg());
    }
}

}  // namespace mv::index
