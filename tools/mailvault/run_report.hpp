#pragma once
// Progress lines and end-of-run summaries shared by import and sync.
#include <string>

#include "ingest/completeness.hpp"
#include "ingest/pipeline.hpp"
#include "tools/mailvault/cli.hpp"

namespace mv::cli {

// A progress callback: a live line on a terminal, a log line every 10 s otherwise.
ingest::ProgressFn make_progress(const Context& ctx, const std::string& label);

// Summaries fit this many columns.
inline constexpr std::size_t k_summary_width = 80;
// "label: N new, N duplicates, N broken, N failed, X MiB in S s (R msgs/s)"; when that is
// wider than k_summary_width, the sizes and times go on a second line, indented.
std::string summary_line(const std::string& label, const ingest::ImportSummary& s);

// Records "lastsync:<source>" (time, result, counts, first errors, and the completeness
// record per folder when `folders` is given) and commits it.
void record_last_sync(index::Archive& archive, const std::string& source, const std::string& result,
                      const ingest::ImportSummary& s, const std::vector<ingest::FolderRecord>* folders = nullptr);

// After a run that at least doubled a sizeable index, rewrites it compactly.
void maybe_compact(const Context& ctx, index::Archive& archive, std::uint64_t added);

}  // namespace mv::cli
