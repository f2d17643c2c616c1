#pragma once
// mailvault.toml: archive, links, sources, smtp, users, serve (see DESIGN.md).
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "index/util/result.hpp"

namespace mv {

// Keys that hold a secret; each may also be given as <key>_env or <key>_file.
inline constexpr const char* k_secret_keys[] = {"password", "client_secret", "token", "refresh_token"};

// One [[source]] table; each source type reads the keys it knows through `get_*`.
struct SourceConfig {
    std::string name;
    std::string type;  // graph | imap | pop3 | maildir | mbox
    std::map<std::string, std::string> strings;              // scalar keys as text
    std::map<std::string, std::vector<std::string>> lists;   // array keys

    std::string get(const std::string& key, const std::string& fallback = "") const;
    std::vector<std::string> get_list(const std::string& key, std::vector<std::string> fallback = {}) const;
    Result<long> get_int(const std::string& key, long fallback) const;
    Result<bool> get_bool(const std::string& key, bool fallback) const;
    // Resolves `<base>_env`, `<base>_file`, then `<base>`; the value is never logged.
    // Error names the key, never the value.
    Result<std::string> secret(const std::string& base) const;
    // Resolves every `<secret>_env` / `<secret>_file` present (unset variable, missing, unreadable or
    // group/world-readable file is an error), so a command can refuse before it creates anything.
    Result<bool> check_secrets() const;
};

struct UserConfig {
    std::string name;
    std::string password_hash;
    std::vector<std::string> mailboxes;
    std::string role = "user";  // user | auditor | admin
};

struct Config {
    std::filesystem::path file;  // empty when no config was read
    std::string archive_path;
    std::string stemmer = "english";
    std::string timezone;  // [archive] timezone, e.g. "Europe/Berlin": for display and date: when TZ is unset
    bool attachment_text = true;  // [index] attachment_text: index the text inside attachments
    std::string sync_deadline;  // [sync] deadline, e.g. "2h", "90m", "3600s"; empty: none
    std::string links_base_url = "http://127.0.0.1:8025";
    std::string links_template = "{base_url}/m/{docno}";
    std::string links_title_field;
    std::vector<SourceConfig> sources;
    std::optional<SourceConfig> smtp;  // same accessors; name "smtp"
    std::vector<UserConfig> users;
    std::string serve_listen = "127.0.0.1:8025";
    std::string serve_cert, serve_key;
    std::string serve_session_idle = "30m";  // [serve] session_idle: a session unused this long ends
    std::string serve_session_max = "12h";   // [serve] session_max: and any session after this long
    long serve_threads = 4;                  // [serve] threads: worker threads (one database each)
    std::string serve_request_timeout = "10s";  // [serve] request_timeout: a request must arrive within
    std::string serve_idle_timeout = "30s";     // [serve] idle_timeout: a silent connection is closed
    long serve_result_cache = 64;               // [serve] result_cache: search results kept per worker thread (0: none)
    long serve_block_cache = 8;                 // [serve] block_cache: MiB of index blocks kept per worker thread (0: none)
    long serve_per_ip_connections = 16;         // [serve] per_ip_connections

    const SourceConfig* source(const std::string& name) const;
};

// "3600", "3600s", "90m", "2h", "1d", "1h30m" -> seconds; an error says what is accepted.
Result<long> parse_duration_seconds(const std::string& text);

// Parses a TOML file; errors name the file, line and key.
Result<Config> load_config(const std::filesystem::path& file);

}  // namespace mv
