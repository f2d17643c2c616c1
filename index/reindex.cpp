#include "index/reindex.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

#include "index/archive.hpp"
#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"
#include "index/store/generations.hpp"
#include "index/util/crash_point.hpp"

namespace mv::index {
namespace fs = std::filesystem;

namespace {

constexpr const char* k_meta_next_docno = "mv:next_docno";
constexpr const char* k_meta_store_end = "mv:store_end";

std::int64_t date_from_meta(std::string_view meta) {
    auto j = nlohmann::json::parse(meta, nullptr, false);
    return j.is_object() ? j.value("date", std::int64_t{0}) : 0;
}

}  // namespace

Location location_from_meta(std::string_view meta) {
    auto j = nlohmann::json::parse(meta, nullptr, false);
    if (!j.is_object()) return {};
    Location l{j.value("source", ""), j.value("mailbox", ""), j.value("folder", ""), j.value("id", ""),
               j.value("removed", ""), j.value("removed_at", std::int64_t{0})};
    if (j.contains("flags") && j["flags"].is_array())
        for (const auto& f : j["flags"])
            if (f.is_string()) l.flags.push_back(f.get<std::string>());
    return l;
}

Xapian::Document document_for_record(DocumentBuilder& builder, const std::string& raw, const Digest& sha,
                                     const Digest& dedupe_key, const StoredRef& ref, std::string_view meta) {
    auto parsed = parse_message(raw, ParseLimits{}, date_from_meta(meta));
    ParsedMessage msg;
    if (parsed) msg = std::move(*parsed);
    else msg.broken = true;
    Xapian::Document doc = builder.build(msg, location_from_meta(meta), sha, dedupe_key, raw.size());
    doc.add_value(schema::k_slot_location, ref.encode());
    return doc;
}

Result<ReindexSummary> reindex(const fs::path& dir, const std::function<void(std::uint64_t)>& progress) {
    // The archive, opened for rebuilding: the lock for the whole run, leftovers of earlier
    // runs settled, the originals' torn tail recovered; its index (if any) stays as it is.
    ArchiveOptions rebuild;
    rebuild.index_use = IndexUse::rebuild;
    auto old = Archive::open(dir, OpenMode::write, rebuild);
    if (!old) return fail(old.error());
    const fs::path staging = dir / "reindex.tmp";
    std::error_code ec;
    fs::remove_all(staging, ec);
    fs::create_directories(staging / "originals", ec);
    // The staging archive shares the originals: link the format, not the packs.
    fs::copy_file(dir / "FORMAT", staging / "FORMAT", ec);
    if (ec) return fail(Error::Kind::io, "reindex: cannot prepare " + staging.string() + ": " + ec.message());
    ReindexSummary summary;
    {
        auto fresh = Archive::open(staging, OpenMode::write);
        if (!fresh) return fail(fresh.error());
        Archive& out = **fresh;
        DocumentBuilder builder(out.stemmer());
        std::optional<Error> failure;
        std::vector<bool> used;                                  // docnos given to a document
        std::unordered_map<std::uint64_t, std::uint64_t> moved;  // record docno -> document
        auto docno_of = [&](std::uint64_t d) {
            auto it = moved.find(d);
            return it == moved.end() ? d : it->second;
        };
        std::uint64_t since_commit = 0;
        auto scanned = (*old)->store().scan([&](const RecordHeader& h, const StoredRef& ref, std::string_view meta) {
            if (h.type == RecordType::location) {
                if (auto r = out.add_location(docno_of(h.docno), location_from_meta(meta), ref); !r) failure = r.error();
                else ++summary.locations;
                return !failure;
            }
            if (h.type == RecordType::removal) {  // the metadata copied below has it if no document does
                if (auto r = out.record_removal(location_from_meta(meta), {}, ref); !r) failure = r.error();
                return !failure;
            }
            auto raw = (*old)->read_original(ref);
            if (!raw || sha256(*raw) != h.sha) {
                ++summary.damaged;
                summary.damaged_docnos.emplace_back(h.docno, (*old)->store().segment_name(ref.segment) + " at offset " +
                                                                 std::to_string(ref.offset) + ": " +
                                                                 (raw ? std::string("SHA-256 mismatch") : "not a whole zstd frame"));
                return true;
            }
            const Digest key = dedupe_key(*raw);
            // A run stopped before its commit may have stored a message that a later run
            // stored again: one document, with the places of both.
            if (auto d = out.find_duplicate(key)) {
                moved[h.docno] = *d;
                ++summary.merged;
                if (auto r = out.add_location(*d, location_from_meta(meta), ref); !r) failure = r.error();
                return !failure;
            }
            std::uint64_t docno = h.docno;
            if (docno == 0 || (docno < used.size() && used[docno])) {
                docno = out.allocate_docno(key);
                moved[h.docno] = docno;
                ++summary.renumbered;
            } else {
                out.reserve_docno(key, docno);
            }
            if (docno >= used.size()) used.resize(std::max<std::size_t>(docno + 1, used.size() * 2), false);
            used[docno] = true;
            Xapian::Document doc = document_for_record(builder, *raw, h.sha, key, ref, meta);
            if (auto r = out.add_document(docno, std::move(doc), ref); !r) failure = r.error();
            else if (++summary.documents, ++since_commit == 2000) {
                since_commit = 0;
                if (auto c = out.commit(); !c) failure = c.error();
                if (progress) progress(summary.documents);
            }
            return !failure;
        }, {1, 0}, [&](std::uint32_t segment, std::uint64_t from, std::uint64_t to) {
            summary.unreadable.push_back((*old)->store().segment_name(segment) + " bytes " + std::to_string(from) + ".." +
                                         std::to_string(to));
        });
        if (!scanned) return fail(scanned.error());
        if (failure) return fail(*failure);
        // Checkpoints and run records carry over; where the store is reflected, and the next
        // docno, are the new index's own (never below the old counter: docnos are not reused).
        std::uint64_t next = out.next_docno();
        for (const auto& [k, v] : (*old)->metadata_with_prefix("")) {
            if (k == k_meta_store_end) continue;
            if (k == k_meta_next_docno) {
                next = std::max<std::uint64_t>(next, std::strtoull(v.c_str(), nullptr, 10));
                continue;
            }
            out.set_metadata(k, v);
        }
        out.set_metadata(k_meta_next_docno, std::to_string(next));
        // What could not be rebuilt stays named (verify lists the mv:damaged: keys).
        for (const auto& [docno, why] : summary.damaged_docnos)
            if (docno) out.set_metadata(std::string(k_damaged_prefix) + std::to_string(docno), "original damaged: " + why);
        if (!summary.unreadable.empty()) {
            std::string where;
            for (const auto& u : summary.unreadable) where += (where.empty() ? "" : ", ") + u;
            for (std::uint64_t d = 1; d < next; ++d) {
                if ((d < used.size() && used[d]) || moved.count(d)) continue;
                if (std::any_of(summary.damaged_docnos.begin(), summary.damaged_docnos.end(), [&](const auto& x) { return x.first == d; }))
                    continue;
                summary.lost_docnos.push_back(d);
                out.set_metadata(std::string(k_damaged_prefix) + std::to_string(d), "no intact record of its original; unreadable: " + where);
            }
        }
        if (auto c = out.commit(); !c) return fail(c.error());
        // In the staging archive: a crash here leaves the old index in use and reindex.tmp
        // for the next writer to remove, as any crash before the install below.
        if (summary.documents >= k_reindex_compact_at)
            if (auto c = out.compact(); !c) summary.compact_error = c.error().message;
    }
    // Install: the staged generation moves beside the current one (unused until named), then
    // CURRENT names it in one atomic step.
    auto staged = find_index_dir(staging);
    if (!staged) return fail(Error::Kind::io, "reindex: the rebuilt index is missing from " + staging.string());
    auto gen = create_generation(dir);
    if (!gen) return fail(gen.error());
    fs::rename(*staged, *gen, ec);  // onto the new, empty directory
    if (ec) return fail(Error::Kind::io, "reindex: cannot move the rebuilt index into place: " + ec.message());
    crash_point("reindex-staged");
    if (auto r = switch_generation(dir, *gen); !r) return fail(r.error());
    fs::remove_all(staging, ec);
    return summary;
}

}  // namespace mv::index
