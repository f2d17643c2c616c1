#include "ingest/pipeline.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_pipeline.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"
#include "index/store/pack_store.hpp"
#include "index/util/iso_date.hpp"

#if defined(__SANITIZE_THREAD__)
#define MV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MV_TSAN 1
#endif
#endif
#ifdef MV_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace mv::ingest {
namespace {

// oneTBB hands each item from one filter to the next, runs a serial filter's calls one after
// another, and returns from parallel_pipeline after the last call, all through its own atomics
// and futexes inside libtbb, which is not instrumented: ThreadSanitizer sees no order there and
// reports races that cannot happen (seen: the input filter's call of source.next() against the
// source's destruction after the run). FilterCall tells it exactly what oneTBB guarantees, no
// more (parallel filters are not ordered with each other); it is nothing in other builds.
//
// The start of a run: everything the caller did before parallel_pipeline (building the filter
// chain: the closures the filters read their captures from) happens before every filter call.
// A filter reads its closure before it could name a per-run address, so the run's start is one
// address per process (runs of one process follow each other: one per source), released once the
// chain is built and acquired first thing in every filter call: run_entered(). Releasing before
// the chain was built let TSan see the closure's construction race with its first read on every
// worker thread kept from an earlier run (`sync`'s second source; Pipeline.ManyRuns*).
#ifdef MV_TSAN
char g_run_start = 0;
#endif
void run_starts() {
#ifdef MV_TSAN
    __tsan_release(&g_run_start);
#endif
}
void run_entered() {
#ifdef MV_TSAN
    __tsan_acquire(&g_run_start);
#endif
}
struct PipelineSync {
    char end = 0;                                       // after the run
    char input = 0, dedupe = 0, store = 0, output = 0;  // the serial filters' calls
};
class FilterCall {
  public:
    FilterCall([[maybe_unused]] PipelineSync& sync, [[maybe_unused]] const char* serial, const void* item)
        : out(item) {
#ifdef MV_TSAN
        sync_ = &sync;
        serial_ = serial;
        if (serial) __tsan_acquire(const_cast<char*>(serial));
        if (item) __tsan_acquire(const_cast<void*>(item));
#endif
    }
    ~FilterCall() {
#ifdef MV_TSAN
        if (out) __tsan_release(const_cast<void*>(out));
        if (serial_) __tsan_release(const_cast<char*>(serial_));
        __tsan_release(&sync_->end);
#endif
    }
    FilterCall(const FilterCall&) = delete;
    FilterCall& operator=(const FilterCall&) = delete;
    const void* out;  // the item handed to the next filter (none from the last)

  private:
#ifdef MV_TSAN
    PipelineSync* sync_ = nullptr;
    const char* serial_ = nullptr;
#endif
};
void pipeline_ended([[maybe_unused]] PipelineSync& sync) {
#ifdef MV_TSAN
    __tsan_acquire(&sync.end);
#endif
}

struct Item {
    RawMessage raw;
    Digest sha{};
    Digest key{};
    std::uint64_t docno = 0;
    bool duplicate = false;
    bool broken = false;
    std::string rejected;  // why this is not mail; then nothing else is done with it
    Xapian::Document doc;
    std::string compressed;
    std::optional<Error> error;
};

std::string location_json(const RawMessage& m) {
    nlohmann::json j{{"source", m.where.source}, {"mailbox", m.where.mailbox}, {"folder", m.where.folder},
                     {"id", m.where.server_id}, {"date", m.fallback_date}};
    if (!m.flags.empty()) j["flags"] = m.flags;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The pack store record of a removal, for reindex.
std::string removal_json(const index::Location& l) {
    nlohmann::json j{{"source", l.source}, {"mailbox", l.mailbox}, {"folder", l.folder},
                     {"id", l.server_id}, {"removed", l.removed}, {"removed_at", l.removed_at}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Where a removal is kept when no archived document has that location (never archived).
std::pair<std::string, std::string> removal_metadata(const index::Location& l) {
    nlohmann::json j{{"mailbox", l.mailbox}, {"folder", l.folder}, {"reason", l.removed}, {"seen", index::iso_date(l.removed_at)}};
    return {checkpoint_key(l.source, "removed:" + l.mailbox + ":" + l.server_id),
            j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

// Stage: content hash and dedupe key (parallel).
struct HashStage {
    void operator()(Item& item) const {
        if (item.raw.checkpoint_only) return;
        item.rejected = index::not_mail_reason(item.raw.bytes);
        if (!item.rejected.empty()) return;
        item.sha = sha256(item.raw.bytes);
        item.key = index::dedupe_key(item.raw.bytes);
    }
};

// Stage: MIME parse, document build, compression (parallel, new messages only).
class ParseStage {
  public:
    ParseStage(std::string stemmer, index::ParseLimits limits) : stemmer_(std::move(stemmer)), limits_(limits) {}
    void operator()(Item& item) const {
        if (item.error || item.duplicate || item.raw.checkpoint_only || !item.rejected.empty()) return;
        thread_local std::unique_ptr<index::DocumentBuilder> builder;
        thread_local std::string builder_stemmer;
        if (!builder || builder_stemmer != stemmer_) {
            builder = std::make_unique<index::DocumentBuilder>(stemmer_);
            builder_stemmer = stemmer_;
        }
        auto parsed = index::parse_message(item.raw.bytes, limits_, item.raw.fallback_date);
        index::ParsedMessage msg;
        if (parsed) msg = std::move(*parsed);
        else {
            msg.broken = true;
            msg.date = item.raw.fallback_date;
            msg.defects.push_back(parsed.error().message);
        }
        item.broken = msg.broken || !msg.defects.empty();
        item.doc = builder->build(msg, item.raw.where, item.sha, item.key, item.raw.bytes.size());
        item.compressed = index::zstd_compress(item.raw.bytes);
    }

  private:
    std::string stemmer_;
    index::ParseLimits limits_;
};

}  // namespace

Result<ImportSummary> run_pipeline(index::Archive& archive, Source& source, const PipelineOptions& options,
                                   const ProgressFn& progress) {
    index::init_mime();
    ImportSummary summary;
    const auto t0 = std::chrono::steady_clock::now();
    unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);

    HashStage hash;
    ParseStage parse(archive.stemmer(), options.limits);
    std::vector<std::uint64_t> acks;
    std::size_t since_commit = 0;
    std::uint64_t bytes_since_commit = 0;
    bool checkpoints_blocked = false;  // after a message failed, later checkpoints would skip it
    // Set by the output filter (a failed write) and by a failed commit, read by the input filter,
    // which runs at the same time on another thread: atomic (a plain bool was a data race, found
    // by TSan in core.CoreE2E.FullDiskThenResume).
    std::atomic<bool> abort{false};
    bool summary_interrupted = false;  // written by the input filter, read after the pipeline
    std::optional<Error> fatal;
    std::mutex flight_mu;
    std::condition_variable flight_cv;
    std::size_t bytes_in_flight = 0;

    // Commits run on the archive's writer threads while the pipeline goes on; a source learns
    // that its messages are durable (e.g. may be deleted on the server) once theirs completes.
    std::deque<std::pair<std::uint64_t, std::vector<std::uint64_t>>> acks_waiting;  // commit seq, acks
    auto release_acks = [&] {
        const std::uint64_t durable = archive.durable_commits();
        while (!acks_waiting.empty() && acks_waiting.front().first <= durable) {
            source.on_durable(acks_waiting.front().second);
            acks_waiting.pop_front();
        }
    };
    auto start_commit = [&]() -> bool {
        auto seq = archive.commit_async();
        if (!seq) {
            fatal = seq.error();
            abort = true;
            return false;
        }
        if (!acks.empty()) acks_waiting.emplace_back(*seq, std::move(acks));
        acks.clear();
        since_commit = 0;
        bytes_since_commit = 0;
        return true;
    };

    auto note_error = [&](const std::string& line) {
        if (summary.errors.size() < 200) summary.errors.push_back(line);
    };
    // What an item asks to commit once it and everything before it is durable: removals (also
    // after a failed message: they are records, not resume points), checkpoints, its ack.
    // A rejected item (not mail) commits its checkpoints, since reading it again would reject it
    // again, but is never acknowledged: a source must not delete what was not archived.
    auto commit_entries = [&](const RawMessage& m, bool archived) {
        for (const auto& where : m.removals) {
            if (abort) return;
            auto ref = archive.store_removal(removal_json(where));
            auto r = ref ? archive.record_removal(where, removal_metadata(where), *ref) : Result<void>(fail(ref.error()));
            if (!r) {
                note_error(where.source + " " + where.mailbox + "/" + where.folder + " removal of message " + where.server_id +
                           ": " + r.error().message);
                abort = true;  // the store or index cannot be written
                if (!fatal) fatal = r.error();
            }
        }
        if (checkpoints_blocked) return;
        for (const auto& [k, v] : m.checkpoint) archive.set_metadata(k, v);
        if (m.ack && archived) acks.push_back(m.ack);
    };

    PipelineSync sync;
    auto chain =
        tbb::make_filter<void, Item*>(tbb::filter_mode::serial_in_order,
                                      [&](tbb::flow_control& fc) -> Item* {
                                          run_entered();
                                          FilterCall call(sync, &sync.input, nullptr);
                                          if (abort) {
                                              fc.stop();
                                              return nullptr;
                                          }
                                          // The safe point of an interruption: nothing more is
                                          // read; what is in flight is archived and committed.
                                          if (options.stop && options.stop->load()) {
                                              summary_interrupted = true;
                                              fc.stop();
                                              return nullptr;
                                          }
                                          auto m = source.next();
                                          if (!m) {
                                              fc.stop();
                                              return nullptr;
                                          }
                                          if (m->where.flags.empty()) m->where.flags = m->flags;  // is:/flag: terms
                                          // Bound memory in bytes too: wait for the tail of the
                                          // pipeline (on another thread) to release messages.
                                          const std::size_t size = m->bytes.size();
                                          if (threads > 1) {
                                              std::unique_lock lock(flight_mu);
                                              flight_cv.wait(lock, [&] {
                                                  return bytes_in_flight == 0 ||
                                                         bytes_in_flight + size <= options.max_bytes_in_flight;
                                              });
                                              bytes_in_flight += size;
                                          }
                                          auto* item = new Item;
                                          item->raw = std::move(*m);
                                          call.out = item;
                                          return item;
                                      }) &
            tbb::make_filter<Item*, Item*>(tbb::filter_mode::parallel,
                                           [&](Item* item) {
                                               run_entered();
                                               FilterCall call(sync, nullptr, item);
                                               hash(*item);
                                               return item;
                                           }) &
            tbb::make_filter<Item*, Item*>(tbb::filter_mode::serial_in_order,
                                           [&](Item* item) {
                                               run_entered();
                                               FilterCall call(sync, &sync.dedupe, item);
                                               if (item->raw.checkpoint_only || !item->rejected.empty()) return item;
                                               if (auto d = archive.find_duplicate(item->key)) {
                                                   item->docno = *d;
                                                   item->duplicate = true;
                                               } else {
                                                   item->docno = archive.allocate_docno(item->key);
                                               }
                                               return item;
                                           }) &
            tbb::make_filter<Item*, Item*>(tbb::filter_mode::parallel,
                                           [&](Item* item) {
                                               run_entered();
                                               FilterCall call(sync, nullptr, item);
                                               parse(*item);
                                               return item;
                                           }) &
            // Stored and queued for its shard's writer thread in one step, in order.
            tbb::make_filter<Item*, Item*>(
                tbb::filter_mode::serial_in_order,
                [&](Item* item) {
                    run_entered();
                    FilterCall call(sync, &sync.store, item);
                    if (item->error || item->raw.checkpoint_only || !item->rejected.empty()) return item;
                    std::string meta = location_json(item->raw);
                    if (item->duplicate) {
                        auto ref = archive.store_location(item->docno, item->sha, meta);
                        if (!ref) item->error = ref.error();
                        else if (auto r = archive.add_location(item->docno, item->raw.where, *ref); !r)
                            item->error = r.error();
                    } else {
                        auto ref = archive.store_original(item->docno, item->sha, item->raw.bytes.size(),
                                                          item->compressed, meta);
                        std::string().swap(item->compressed);
                        if (!ref) item->error = ref.error();
                        else {
                            item->doc.add_value(schema::k_slot_location, ref->encode());
                            if (auto r = archive.add_document(item->docno, std::move(item->doc), *ref); !r)
                                item->error = r.error();
                        }
                    }
                    return item;
                }) &
            tbb::make_filter<Item*, void>(tbb::filter_mode::serial_in_order, [&](Item* item) {
                run_entered();
                FilterCall call(sync, &sync.output, item);
                call.out = nullptr;  // freed here
                std::unique_ptr<Item> owned(item);
                if (threads > 1) {
                    std::lock_guard lock(flight_mu);
                    bytes_in_flight -= item->raw.bytes.size();
                    flight_cv.notify_all();
                }
                const bool message = !item->raw.checkpoint_only;
                if (message) {
                    ++summary.seen;
                    summary.bytes += item->raw.bytes.size();
                }
                if (!message) {
                    commit_entries(item->raw, true);  // checkpoint entries only: nothing to count
                } else if (!item->rejected.empty()) {
                    ++summary.rejected;
                    note_error(item->raw.where.source + " " + item->raw.where.mailbox + "/" + item->raw.where.folder +
                               " message " + item->raw.where.server_id + ": not mail, not archived: " + item->rejected);
                    commit_entries(item->raw, false);
                    if (options.on_message) options.on_message(item->raw.where, MessageFate::rejected, "not mail: " + item->rejected);
                } else if (item->error) {
                    ++summary.failed;
                    if (options.on_message) options.on_message(item->raw.where, MessageFate::failed, item->error->message);
                    note_error(item->raw.where.source + " " + item->raw.where.mailbox + "/" + item->raw.where.folder +
                               " message " + item->raw.where.server_id + ": " + item->error->message);
                    checkpoints_blocked = true;
                    if (item->error->kind == Error::Kind::io) {
                        abort = true;  // disk full or I/O failure: keep what is durable, stop
                        if (!fatal) fatal = *item->error;
                    }
                } else {
                    if (item->duplicate) ++summary.duplicates;
                    else ++summary.added;
                    if (options.on_message)
                        options.on_message(item->raw.where, item->duplicate ? MessageFate::duplicate : MessageFate::added, {});
                    if (item->broken) ++summary.broken;
                    commit_entries(item->raw, true);
                    ++since_commit;
                    bytes_since_commit += item->raw.bytes.size();
                }
                if (!abort) {
                    if (auto e = archive.write_error()) {  // a writer thread failed: disk full, I/O
                        abort = true;
                        if (!fatal) fatal = *e;
                    }
                }
                if (!abort && (since_commit >= options.commit_every || bytes_since_commit >= options.commit_bytes))
                    start_commit();
                release_acks();
                if (progress && message) {
                    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    progress(summary, {source.expected_total(), source.expected_is_estimate()}, false);  // known once the source has listed
                }
            });
    run_starts();  // after the chain is built: see run_entered()
    tbb::parallel_pipeline(options.max_in_flight, chain);
    pipeline_ended(sync);

    // Whatever got through is made durable, even after an error.
    if (!fatal || fatal->kind != Error::Kind::io || since_commit > 0) {
        auto r = archive.commit();
        if (r) {
            release_acks();
            if (!acks.empty()) source.on_durable(acks);
        } else if (!fatal) {
            fatal = r.error();
        }
    }
    summary.interrupted = summary_interrupted;
    source.finish();
    const auto& rep = source.report();
    summary.failed += rep.failed;
    for (const auto& e : rep.errors) note_error(e);
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(summary, {source.expected_total(), source.expected_is_estimate()}, true);
    if (fatal) {
        note_error(fatal->message);
        if (summary.seen == 0 && summary.added == 0) return fail(*fatal);
    }
    return summary;
}

}  // namespace mv::ingest
