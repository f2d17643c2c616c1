#pragma once
// The audit log of the web side: JSON lines in <archive>/audit/audit.log (mode 0600),
// appended (O_APPEND, fsync per record), each record chained to the previous one by
// "prev": the SHA-256 (hex) of the previous line, so a rewritten or removed line shows.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/util/result.hpp"

namespace mv::web {

std::filesystem::path audit_path(const std::filesystem::path& archive_dir);

class AuditLog {
  public:
    // Opens (creating audit/ 0700 and the file 0600) for appending only.
    static Result<std::unique_ptr<AuditLog>> open(const std::filesystem::path& archive_dir);
    ~AuditLog();
    // One record: {"time","action","user","client",...fields,"prev"}; durable when it returns.
    Result<void> append(const std::string& action, const std::string& user, const std::string& client,
                        const nlohmann::ordered_json& fields = nlohmann::ordered_json::object());

  private:
    AuditLog() = default;
    std::mutex mu_;       // write order and prev_
    std::mutex sync_mu_;  // one fdatasync at a time; it covers every line written before it
    int fd_ = -1;
    std::string prev_;    // hash of the last line (mu_)
    std::uint64_t written_ = 0;  // lines written (mu_)
    std::uint64_t synced_ = 0;   // lines durable (sync_mu_)
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
