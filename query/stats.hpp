#pragma once
// `stats` and `verify`: what the archive holds, and whether every original is intact.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/archive.hpp"

namespace mv::query {

struct GroupStats {
    std::string name;
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;  // raw size of the originals
};

// One folder of a sync's completeness record (see ingest/completeness.hpp).
struct FolderCompleteness {
    std::string mailbox, folder;
    bool listed = false;  // false: the server's list of it was not read in that run
    std::uint64_t on_server = 0, archived = 0, added = 0, failed = 0, pending = 0, gone = 0;
    std::vector<std::pair<std::string, std::string>> failures;  // server id ("": the folder), error
    bool complete() const { return listed && failed == 0 && pending == 0; }
};

struct SyncRecord {
    std::string source;
    std::string time;    // as recorded
    std::string result;  // ok | partial | failed
    std::uint64_t added = 0;
    std::vector<std::string> errors;
    bool has_folders = false;  // recorded by a version that keeps completeness records
    std::vector<FolderCompleteness> folders;
};

// The completeness records of a stored "lastsync:" value (empty when it has none).
std::vector<FolderCompleteness> folders_of_record(const std::string& lastsync_json, bool* has_folders = nullptr);

struct ArchiveStats {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;       // raw size of all originals
    std::int64_t oldest = 0, newest = 0;
    std::uint64_t disk_bytes = 0;  // everything under the archive directory (allocated)
    std::uint64_t index_bytes = 0, store_bytes = 0;
    std::vector<GroupStats> sources, mailboxes, folders;
    std::vector<SyncRecord> syncs;
};

Result<ArchiveStats> compute_stats(const index::Archive& archive);
std::string stats_text(const ArchiveStats& s);
std::string stats_json(const ArchiveStats& s);

struct VerifyIssue {
    std::uint64_t docno = 0;
    std::string what;
};

// An index shard Xapian reports damaged: its documents cannot be searched until reindex.
struct ShardIssue {
    unsigned shard = 0;
    std::string name;                  // "shard-1"
    std::string what;                  // what Xapian said
    std::vector<std::uint64_t> docnos;  // the messages whose entries it holds (from the originals' records)
};

struct VerifyReport {
    std::uint64_t checked = 0;
    std::uint64_t bytes = 0;  // raw bytes hashed
    double seconds = 0;
    std::vector<VerifyIssue> issues;  // sorted by docno
    std::vector<ShardIssue> shards;   // damaged index shards
};

// Checks every index shard (Xapian's own check), then re-reads, decompresses and re-hashes
// every original the index refers to on `threads` threads — also those of a damaged shard,
// found through the originals' records; a missing, truncated or altered original, an entry
// without one, or a docno reindex could not rebuild (mv:damaged:) is an issue.
Result<VerifyReport> verify_archive(const index::Archive& archive, unsigned threads,
                                    const std::function<void(std::uint64_t done, std::uint64_t total)>& progress);

}  // namespace mv::query
