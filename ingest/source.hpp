#pragma once
// A source yields raw RFC 822 messages with where they were found.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// What a source learnt about one folder in a run, for the completeness record (see
// ingest/completeness.hpp): what the server listed, what was to be fetched, what failed.
struct FolderTally {
    std::string mailbox, folder;
    bool listed = false;          // the server's list of the folder was read
    std::uint64_t on_server = 0;  // messages the server listed (IMAP EXISTS, POP3 UIDL, Graph totalItemCount)
    std::uint64_t to_fetch = 0;   // of those, the ones past the checkpoint this run set out to fetch
    std::uint64_t gone = 0;       // listed to fetch, but gone from the server before they were fetched
    std::vector<std::pair<std::string, std::string>> failed;  // server id ("" for the whole folder), why
};

// Thread-safe per-folder tallies; a source that lists a server keeps one.
class FolderTallies {
  public:
    // Registers the folder (not yet listed): it is named in the record even if never reached.
    void selected(const std::string& mailbox, const std::string& folder) {
        std::lock_guard lk(mu_);
        at(mailbox, folder);
    }
    void listed(const std::string& mailbox, const std::string& folder, std::uint64_t on_server, std::uint64_t to_fetch) {
        std::lock_guard lk(mu_);
        FolderTally& t = at(mailbox, folder);
        t.listed = true;
        t.on_server = on_server;
        t.to_fetch = to_fetch;
    }
    void add_to_fetch(const std::string& mailbox, const std::string& folder, std::uint64_t n) {
        std::lock_guard lk(mu_);
        at(mailbox, folder).to_fetch += n;
    }
    void gone(const std::string& mailbox, const std::string& folder, std::uint64_t n) {
        std::lock_guard lk(mu_);
        at(mailbox, folder).gone += n;
    }
    void failed(const std::string& mailbox, const std::string& folder, const std::string& id, const std::string& why) {
        std::lock_guard lk(mu_);
        at(mailbox, folder).failed.emplace_back(id, why);
    }
    std::vector<FolderTally> snapshot() const {
        std::lock_guard lk(mu_);
        std::vector<FolderTally> out;
        for (const auto& [k, t] : by_folder_) out.push_back(t);
        return out;
    }

  private:
    FolderTally& at(const std::string& mailbox, const std::string& folder) {
        FolderTally& t = by_folder_[{mailbox, folder}];
        t.mailbox = mailbox;
        t.folder = folder;
        return t;
    }
    mutable std::mutex mu_;
    std::map<std::pair<std::string, std::string>, FolderTally> by_folder_;
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
    // Per folder: listed, to fetch, failed (sources that list a server; empty for local files).
    std::vector<FolderTally> folder_tallies() const { return tallies_.snapshot(); }

  protected:
    SourceReport report_;
    FolderTallies tallies_;
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
