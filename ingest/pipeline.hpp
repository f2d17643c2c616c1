#pragma once
// The import pipeline: read -> hash/dedupe -> parse/build -> store -> index -> commit.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "index/archive.hpp"
#include "index/mime/message.hpp"
#include "ingest/source.hpp"

namespace mv::ingest {

// What became of one message of a source (PipelineOptions::on_message).
enum class MessageFate { added, duplicate, failed, rejected };

struct PipelineOptions {
    std::size_t max_in_flight = 64;            // messages in the pipeline at once
    std::size_t max_bytes_in_flight = 256ull << 20;  // and their raw bytes (huge messages)
    std::size_t commit_every = 2000;           // documents per commit
    std::size_t commit_bytes = 64ull << 20;    // or raw bytes per commit
    unsigned threads = 0;                      // 0: all cores
    index::ParseLimits limits;
    // Set (e.g. by a SIGINT handler) to stop reading: what was read is archived and committed,
    // then the run ends with ImportSummary::interrupted.
    const std::atomic<bool>* stop = nullptr;
    // Called in order for every message once its fate is known (archived as new or duplicate,
    // failed, or rejected as not mail, with why): the completeness record of a sync.
    std::function<void(const index::Location&, MessageFate, const std::string& why)> on_message;
};

struct ImportSummary {
    std::uint64_t seen = 0;        // messages read from sources
    std::uint64_t added = 0;       // new documents
    std::uint64_t duplicates = 0;  // already archived (location recorded)
    std::uint64_t broken = 0;      // archived with parse defects
    std::uint64_t failed = 0;      // could not be archived
    std::uint64_t rejected = 0;    // not mail (index::not_mail_reason): not archived, reason in errors
    std::uint64_t bytes = 0;       // raw bytes read
    double seconds = 0;
    bool interrupted = false;      // stopped early through PipelineOptions::stop
    std::vector<std::string> errors;
};

// What a source expects to deliver in all: 0 = unknown; `estimate` when not a count.
struct ExpectedTotal {
    std::uint64_t count = 0;
    bool estimate = false;
};

// Called after every message and at the end; for progress lines.
using ProgressFn = std::function<void(const ImportSummary&, ExpectedTotal expected, bool done)>;

// Runs one source through the pipeline into the archive (opened for writing).
Result<ImportSummary> run_pipeline(index::Archive& archive, Source& source, const PipelineOptions& options,
                                   const ProgressFn& progress = {});

}  // namespace mv::ingest
