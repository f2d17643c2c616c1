#pragma once
// Rebuilds the index of an archive from its stored originals (`mailvault reindex`).
#include <xapian.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/archive.hpp"
#include "index/util/result.hpp"

namespace mv::index {

class DocumentBuilder;

struct ReindexSummary {
    std::uint64_t documents = 0;   // originals indexed
    std::uint64_t locations = 0;   // further places replayed onto them
    std::uint64_t damaged = 0;     // originals that no longer match their SHA-256 (skipped)
    std::uint64_t merged = 0;      // originals stored twice (a crashed run's): one document, both places
    std::uint64_t renumbered = 0;  // originals whose docno an earlier record already had: given a new one
    // What could not be rebuilt: docnos whose original is damaged (SHA-256 mismatch, not a
    // whole zstd frame), and unreadable byte ranges of the packs (a damaged record header):
    // the docnos no record was found for are named as lost there.
    std::vector<std::pair<std::uint64_t, std::string>> damaged_docnos;  // docno, why
    std::vector<std::string> unreadable;   // "pack-000001.mvp bytes A..B"
    std::vector<std::uint64_t> lost_docnos;  // in the sequence, no record found (only with unreadable ranges)
    // Rebuilt B-tree blocks are half full, as after a bulk import: from k_reindex_compact_at
    // documents the new index is compacted before it is installed (about half the size, and
    // fewer blocks read per search). Set when that failed: the index is installed as built.
    std::string compact_error;
    bool complete() const { return damaged_docnos.empty() && unreadable.empty(); }
};

inline constexpr std::uint64_t k_reindex_compact_at = 1000;  // documents (import: 1,000 added)

// Metadata key under which reindex keeps a docno it could not rebuild ("mv:damaged:<docno>"):
// `verify` keeps naming it.
inline constexpr const char* k_damaged_prefix = "mv:damaged:";

// Docnos, locations and metadata (checkpoints, run records) are kept; the new index is built
// as a new generation and replaces the old one in one atomic step when complete (a crash
// leaves the old one in use). Works without an index at all. Takes the archive's writer lock.
Result<ReindexSummary> reindex(const std::filesystem::path& dir, const std::function<void(std::uint64_t)>& progress = {});

// Where a record's meta JSON says its message was seen.
Location location_from_meta(std::string_view meta);

// The document of a stored original as import builds it: parsed (a message that does not
// parse is indexed as broken), at the place and date its record's meta holds, pointing at `ref`.
Xapian::Document document_for_record(DocumentBuilder& builder, const std::string& raw, const Digest& sha,
                                     const Digest& dedupe_key, const StoredRef& ref, std::string_view meta);

}  // namespace mv::index
