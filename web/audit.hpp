#pragma once
// The audit log of the web side: JSON lines in <archive>/audit/audit.log (mode 0600),
// appended (O_APPEND), each record chained to the previous one by "prev": the SHA-256 (hex)
// of the previous line, so a rewritten or removed line shows.
//
// Durability (group commit): a record is written to the file (the kernel has it; a crash of
// the process loses nothing) before append() returns, and a syncer thread makes it durable
// with one fdatasync for every record written meanwhile, at most one per k_sync_interval
// (sooner when sync() waits or the log closes). A request does not wait for the disk (8 ms per
// fdatasync on the benchmark machine, up to 300 ms when it is busy; each also costs a core
// ~0.7 ms, which at a thousand searches a second was 7 % of serve's CPU). A power loss can
// lose the records of the last k_sync_interval and of the fdatasync in flight. When a write or
// an fdatasync fails, every later append() fails (the web side then shows no mail).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/util/result.hpp"

namespace mv::web {

std::filesystem::path audit_path(const std::filesystem::path& archive_dir);

inline constexpr std::chrono::milliseconds k_sync_interval{50};

class AuditLog {
  public:
    // Opens (creating audit/ 0700 and the file 0600) for appending only.
    static Result<std::unique_ptr<AuditLog>> open(const std::filesystem::path& archive_dir);
    ~AuditLog();  // the last records made durable
    // One record: {"time","action","user","client",...fields,"prev"}; written when it returns,
    // durable at the syncer's next fdatasync (see above).
    Result<void> append(const std::string& action, const std::string& user, const std::string& client,
                        const nlohmann::ordered_json& fields = nlohmann::ordered_json::object());
    // Waits until every record written so far is durable.
    Result<void> sync();
    // fdatasync calls so far.
    std::uint64_t syncs();

  private:
    AuditLog() = default;
    void run_syncer();
    std::mutex mu_;  // write order, prev_ and the counters
    std::condition_variable cv_;
    int fd_ = -1;
    std::string prev_;           // hash of the last line
    std::uint64_t written_ = 0;  // lines written
    std::uint64_t synced_ = 0;   // lines durable
    std::string failed_;         // the first write or fdatasync error; then every append fails
    bool stop_ = false;
    unsigned waiting_ = 0;       // callers of sync(): no interval for them
    std::uint64_t syncs_ = 0;
    std::thread syncer_;
};

struct AuditRecord {
    nlohmann::ordered_json json;
    std::int64_t time = 0;  // UTC seconds
    std::size_t line = 0;   // 1-based
};

struct AuditRead {
    std::vector<AuditRecord> records;
    std::optional<std::size_t> broken_at;  // first line whose "prev" does not match
};

// Reads and checks the whole chain.
Result<AuditRead> read_audit(const std::filesystem::path& archive_dir);

}  // namespace mv::web
