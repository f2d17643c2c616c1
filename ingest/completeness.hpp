#pragma once
// The completeness record of one sync of one source: per mailbox and folder, what the server
// listed, what is archived (new this run or already there), what failed (by server id, with
// the error) and what is still to fetch. Stored with the run record ("lastsync:<source>",
// committed like the checkpoints); `stats` shows it.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "index/archive.hpp"
#include "ingest/pipeline.hpp"
#include "ingest/source.hpp"

namespace mv::ingest {

struct FolderRecord {
    std::string mailbox, folder;
    bool listed = false;           // false: the server's list was never read (not reached, failed)
    std::uint64_t on_server = 0;   // messages the server listed
    std::uint64_t archived = 0;    // of those: archived (already there, or this run)
    std::uint64_t added = 0;       // archived this run as new documents
    std::uint64_t failed = 0;      // could not be archived (a whole-folder failure counts 1)
    std::uint64_t pending = 0;     // still to fetch (deadline, interrupted)
    std::uint64_t gone = 0;        // deleted on the server between listing and fetching
    std::vector<std::pair<std::string, std::string>> failures;  // server id ("": the folder), why; first 100
    bool complete() const { return listed && failed == 0 && pending == 0; }
};

// Collects the pipeline's per-message outcomes (PipelineOptions::on_message) of one source.
class CompletenessTally {
  public:
    void on_message(const index::Location& where, MessageFate fate, const std::string& why);
    // One record per folder the source tallied, in its order.
    std::vector<FolderRecord> records(const std::vector<FolderTally>& tallies) const;

  private:
    struct Count {
        std::uint64_t archived = 0, added = 0;
        std::vector<std::pair<std::string, std::string>> failed;
    };
    std::map<std::pair<std::string, std::string>, Count> by_folder_;
};

// What a run left out, one "mailbox/folder: N failed (first: ID: why), N pending" per folder
// that is not complete; empty when nothing was skipped.
std::vector<std::string> skipped_lines(const std::vector<FolderRecord>& records);

// The records as the JSON array stored in the run record (see DESIGN.md `stats --json`).
std::string records_json(const std::vector<FolderRecord>& records);

}  // namespace mv::ingest
