#pragma once
// Where an archive's index lives, and how it is replaced in one atomic step.
//
// index/CURRENT names the generation in use ("gen-000002"); the generation's directory
// index/gen-000002/ holds shard-K and meta. `reindex` and compaction build a new generation
// beside the current one, make it durable, then switch by renaming a new CURRENT over the
// old: a crash at any moment leaves either the old or the new generation current, both
// complete. Anything else in index/ is a leftover that the next writer removes.
//
// Archives written before generations keep shard-K and meta in index/ itself ("legacy"),
// and their two-rename swaps may have been cut in half by a crash: `index` missing beside
// `index.old` and `reindex.tmp/index` (reindex), or `shard-K` missing beside `shard-K.old`
// and `shard-K.compact` (compaction). Readers read what is complete; the writer finishes or
// rolls back such a swap. Nothing here ever starts an empty index in place of a lost one.
#include <filesystem>
#include <optional>
#include <string>

#include "index/util/result.hpp"

namespace mv::index {

inline constexpr const char* k_current_file = "CURRENT";

// The directory holding shard-K and meta, for a reader: changes nothing on disk. nullopt
// when the archive has no index at all.
std::optional<std::filesystem::path> find_index_dir(const std::filesystem::path& archive_dir);

// A shard of `index_dir` for a reader: shard-K, or in a legacy index whose compaction swap
// was cut short, the complete copy beside it (shard-K.old, else shard-K.compact).
std::filesystem::path shard_path_for_read(const std::filesystem::path& index_dir, unsigned shard);

// For the writer (holding the archive lock): finishes or rolls back a legacy half-done swap,
// removes generations and staging directories no longer in use, and returns the index
// directory, or nullopt when the archive has no index at all.
Result<std::optional<std::filesystem::path>> settle_index_dir(const std::filesystem::path& archive_dir,
                                                              unsigned shards);

// Creates a new, empty, unused generation directory under index/ (writer only).
Result<std::filesystem::path> create_generation(const std::filesystem::path& archive_dir);

// Makes `generation` (a directory directly under index/, complete) the current one in one
// atomic step, after making it durable; then removes what is no longer in use (writer only).
Result<void> switch_generation(const std::filesystem::path& archive_dir, const std::filesystem::path& generation);

// fsyncs every file and directory under `dir`, and `dir` itself.
Result<void> sync_tree(const std::filesystem::path& dir);
// fsyncs one directory (its entries: created, renamed, removed files).
Result<void> sync_dir(const std::filesystem::path& dir);

}  // namespace mv::index
