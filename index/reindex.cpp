#include "index/reindex.hpp"

#include <nlohmann/json.hpp>

#include "index/archive.hpp"
#include "index/document/builder.hpp"
#include "index/mime/dedupe.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"

namespace mv::index {
namespace fs = std::filesystem;

namespace {

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

std::int64_t date_from_meta(std::string_view meta) {
    auto j = nlohmann::json::parse(meta, nullptr, false);
    return j.is_object() ? j.value("date", std::int64_t{0}) : 0;
}

}  // namespace

Result<ReindexSummary> reindex(const fs::path& dir, const std::function<void(std::uint64_t)>& progress) {
    // The old archive, opened for writing, holds the lock for the whole rebuild.
    auto old = Archive::open(dir, OpenMode::write);
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
        auto scanned = (*old)->store().scan([&](const RecordHeader& h, const StoredRef& ref, std::string_view meta) {
            if (h.type == RecordType::location) {
                if (auto r = out.add_location(h.docno, location_from_meta(meta)); !r) failure = r.error();
                else ++summary.locations;
                return !failure;
            }
            if (h.type == RecordType::removal) {  // the metadata copied below has it if no document does
                if (auto r = out.record_removal(location_from_meta(meta)); !r) failure = r.error();
                return !failure;
            }
            auto raw = (*old)->read_original(ref);
            if (!raw || sha256(*raw) != h.sha) {
                ++summary.damaged;
                return true;
            }
            auto parsed = parse_message(*raw, ParseLimits{}, date_from_meta(meta));
            ParsedMessage msg;
            if (parsed) msg = std::move(*parsed);
            else msg.broken = true;
            Xapian::Document doc = builder.build(msg, location_from_meta(meta), h.sha, dedupe_key(*raw), raw->size());
            doc.add_value(schema::k_slot_location, ref.encode());
            if (auto r = out.add_document(h.docno, std::move(doc)); !r) failure = r.error();
            else if (++summary.documents % 2000 == 0) {
                if (auto c = out.commit(); !c) failure = c.error();
                if (progress) progress(summary.documents);
            }
            return !failure;
        });
        if (!scanned) return fail(scanned.error());
        if (failure) return fail(*failure);
        for (const auto& [k, v] : (*old)->metadata_with_prefix("")) out.set_metadata(k, v);
        if (auto c = out.commit(); !c) return fail(c.error());
    }
    // Swap: the old index goes only once the new one is complete.
    fs::rename(dir / "index", dir / "index.old", ec);
    if (ec) return fail(Error::Kind::io, "reindex: " + ec.message());
    fs::rename(staging / "index", dir / "index", ec);
    if (ec) {
        fs::rename(dir / "index.old", dir / "index", ec);
        return fail(Error::Kind::io, "reindex: cannot install the new index: " + ec.message());
    }
    fs::remove_all(dir / "index.old", ec);
    fs::remove_all(staging, ec);
    return summary;
}

}  // namespace mv::index
