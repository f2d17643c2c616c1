#pragma once
// API tokens (`mailvault token create USER`): stored hashed in <archive>/web/tokens.json (0600).
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "index/util/result.hpp"

namespace mv::web {

struct ApiToken {
    std::string id;       // short public id (list, revoke)
    std::string user;
    std::string hash;     // SHA-256 hex of the token
    std::int64_t created = 0;
};

std::filesystem::path tokens_path(const std::filesystem::path& archive_dir);
Result<std::vector<ApiToken>> load_tokens(const std::filesystem::path& archive_dir);
// A new token for `user`: returns {record, the token text} (the text is shown once, never stored).
Result<std::pair<ApiToken, std::string>> create_token(const std::filesystem::path& archive_dir, const std::string& user);
// Removes token `id`; not_found if there is none.
Result<void> revoke_token(const std::filesystem::path& archive_dir, const std::string& id);

// The server's view: re-reads the file when it changed (so `token revoke` takes effect at once).
class TokenIndex {
  public:
    explicit TokenIndex(std::filesystem::path archive_dir) : dir_(std::move(archive_dir)) {}
    // The user of a valid token, or nullopt.
    std::optional<std::string> user_of(const std::string& token);

  private:
    std::filesystem::path dir_;
    std::mutex mu_;
    std::vector<ApiToken> tokens_;
    std::filesystem::file_time_type mtime_{};
    std::uintmax_t size_ = 0;
    bool loaded_ = false;
};

}  // namespace mv::web
