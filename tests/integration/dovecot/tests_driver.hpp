#pragma once
// Drives a Source the way ingest::run_pipeline does (commit every N, checkpoints, on_durable),
// into an in-memory "archive", so the network sources are tested on their own.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "index/util/sha256.hpp"
#include "ingest/net/account.hpp"
#include "ingest/source.hpp"

namespace mv::test {

struct MemoryArchive {
    std::map<std::string, std::string> metadata;               // committed checkpoints
    std::vector<ingest::RawMessage> messages;                  // committed, bytes dropped when big
    std::multiset<std::string> places;                         // "folder\tserver_id" of every message
    std::set<std::string> normalized;                          // content with CR removed: dedupe stand-in
    std::size_t max_kept_bytes = 1 << 20;

    std::size_t count(const std::string& folder) const {
        std::size_t n = 0;
        for (auto& m : messages) n += m.where.folder == folder;
        return n;
    }
    bool has_duplicates() const {
        std::set<std::string> s(places.begin(), places.end());
        return s.size() != places.size();
    }
};

struct DriveOptions {
    std::size_t commit_every = 25;
    std::size_t stop_after = static_cast<std::size_t>(-1);  // stop consuming (not committed past this)
    bool call_finish = true;
};

// Returns the number of messages taken from the source.
inline std::size_t drive(ingest::Source& src, MemoryArchive& ar, const DriveOptions& o = {}) {
    std::vector<ingest::RawMessage> batch;
    std::size_t taken = 0;
    auto commit = [&] {
        std::vector<std::uint64_t> acks;
        for (auto& m : batch) {
            for (auto& [k, v] : m.checkpoint) ar.metadata[k] = v;
            ar.places.insert(m.where.folder + "\t" + m.where.server_id);
            std::string norm;
            norm.reserve(m.bytes.size());
            for (char c : m.bytes)
                if (c != '\r') norm += c;
            ar.normalized.insert(to_hex(sha256(norm)));
            if (m.ack) acks.push_back(m.ack);
            if (m.bytes.size() > ar.max_kept_bytes) m.bytes = "<" + std::to_string(m.bytes.size()) + " bytes>";
            ar.messages.push_back(std::move(m));
        }
        batch.clear();
        if (!acks.empty()) src.on_durable(acks);
    };
    while (taken < o.stop_after) {
        auto m = src.next();
        if (!m) break;
        ++taken;
        batch.push_back(std::move(*m));
        if (batch.size() >= o.commit_every) commit();
    }
    commit();
    if (o.call_finish) src.finish();
    return taken;
}

// Captures the sources' log lines for the scope.
class LogCapture {
  public:
    LogCapture() {
        ingest::net::set_log_sink([this](const std::string& l) {
            std::lock_guard lk(mu_);
            text_ += l + "\n";
        });
    }
    ~LogCapture() { ingest::net::set_log_sink({}); }
    std::string text() const {
        std::lock_guard lk(mu_);
        return text_;
    }

  private:
    mutable std::mutex mu_;
    std::string text_;
};

}  // namespace mv::test
