#pragma once
// A source yields raw RFC 822 messages with where they were found.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "index/archive.hpp"
#include "index/config/config.hpp"
#include "index/util/result.hpp"

namespace mv::ingest {

struct RawMessage {
    std::string bytes;              // exactly what the file or server delivered
    index::Location where;
    std::vector<std::string> flags;  // IMAP flags / Maildir info letters
    std::int64_t fallback_date = 0;  // INTERNALDATE, file mtime: used when no Date header parses
    // Checkpoint entries to commit once this message (and all before it) is durable.
    std::vector<std::pair<std::string, std::string>> checkpoint;
    // Places the server reports messages gone from (`removed`, `removed_at` set): recorded on
    // their archived documents, in order with the messages before (see Archive::record_removal).
    std::vector<index::Location> removals;
    // No message, only `checkpoint` and `removals` (e.g. an empty delta page, the deltaLink
    // after the last one): not stored or counted, its entries committed in order all the same.
    bool checkpoint_only = false;
    std::uint64_t ack = 0;          // opaque id handed back through Source::on_durable
};

// Counts a source reports in the run summary.
struct SourceReport {
    std::uint64_t failed = 0;               // messages the source could not deliver
    std::vector<std::string> errors;        // one line each, naming source/folder/message
    bool unreachable = false;               // nothing could be fetched at all (exit 3)
    std::uint64_t skipped = 0;              // files passed over as not mail (not failures)
    std::vector<std::string> skips;         // "path: reason", the first 100
};

class Source {
  public:
    virtual ~Source() = default;
    virtual std::string name() const = 0;
    // Next message, or nullopt when done. Called from one thread only.
    virtual std::optional<RawMessage> next() = 0;
    // Total messages if known (for the ETA), else 0. May be read from another thread while
    // next() runs, and may change during a run (servers list as they go, mbox files are
    // estimated from the bytes read).
    virtual std::uint64_t expected_total() const { return 0; }
    // True when expected_total() is an estimate (shown as "~N"), not a count.
    virtual bool expected_is_estimate() const { return false; }
    // Messages with these ack ids are durably archived (e.g. may now be deleted on the server).
    virtual void on_durable(const std::vector<std::uint64_t>& /*acks*/) {}
    // Called once after the last commit.
    virtual void finish() {}
    virtual const SourceReport& report() const { return report_; }

  protected:
    SourceReport report_;
};

// A checkpoint key for `source`: "cp:<source>:<key>".
inline std::string checkpoint_key(const std::string& source, const std::string& key) {
    return "cp:" + source + ":" + key;
}

// Builds the source for a configured [[source]]; the archive gives checkpoints to resume from.
Result<std::unique_ptr<Source>> make_source(const SourceConfig& config, const index::Archive& archive);

// `check SOURCE`: connection and credential test printed as lines; error => exit 3.
Result<std::vector<std::string>> check_source(const SourceConfig& config);

}  // namespace mv::ingest
