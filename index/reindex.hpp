#pragma once
// Rebuilds the index of an archive from its stored originals (`mailvault reindex`).
#include <cstdint>
#include <filesystem>
#include <functional>

#include "index/util/result.hpp"

namespace mv::index {

struct ReindexSummary {
    std::uint64_t documents = 0;   // originals indexed
    std::uint64_t locations = 0;   // further places replayed onto them
    std::uint64_t damaged = 0;     // originals that no longer match their SHA-256 (skipped)
};

// Docnos, locations and metadata (checkpoints, run records) are kept; the new index replaces
// the old one only when complete. Takes the archive's writer lock.
Result<ReindexSummary> reindex(const std::filesystem::path& dir, const std::function<void(std::uint64_t)>& progress = {});

}  // namespace mv::index
