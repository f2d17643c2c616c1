#pragma once
// The [[source]] keys shared by imap and pop3, read once and checked; plus the log hook.
#include <functional>
#include <string>
#include <vector>

#include "index/config/config.hpp"
#include "index/util/result.hpp"
#include "ingest/net/stream.hpp"

namespace mv::ingest::net {

enum class AuthMethod { automatic, login, plain, xoauth2 };  // login: IMAP LOGIN / POP3 USER+PASS

struct Account {
    std::string source;
    std::string protocol;  // "imap" | "pop3"
    Endpoint endpoint;
    Security security = Security::tls;
    AuthMethod auth = AuthMethod::automatic;
    std::string username;
    std::string secret;  // password or OAuth2 access token; never printed
    bool delete_after_archive = false;
    std::vector<std::string> folders{"*"};
    std::vector<std::string> exclude;
    int reconnect_attempts = 3;
    std::size_t fetch_batch = 500;  // messages per UID FETCH / RETR window
    std::size_t queue_bytes = 64u << 20;  // fetched, not yet taken by the pipeline
    std::size_t queue_messages = 256;

    std::string describe() const;  // "user@host:port (imap, tls)"
};

// Reads and validates the keys; errors name the key (Error::Kind::usage).
Result<Account> read_account(const SourceConfig& config, const std::string& protocol);

// Whether to upgrade with `verb` (STARTTLS, STLS) at `where`: automatic follows the server's
// `offered` and logs the choice; starttls without the offer is an unreachable error.
Result<bool> want_starttls(const Account& account, const std::string& where, const std::string& verb, bool offered);
// Logs that trust_all_certificates leaves the certificate of a TLS `stream` unverified.
void warn_trust_all(const Account& account, const Stream& stream);

// Log lines of the network sources ("source 'x': ..."); stderr unless replaced.
using LogSink = std::function<void(const std::string&)>;
void set_log_sink(LogSink sink);
void log(const std::string& line);

// `message` without its leading "source 'NAME': ", to prefix more context.
std::string detail(const std::string& message);

// `s` with a-z in upper case (no locale).
std::string upper_ascii(std::string s);

// The error of a failed login of `account.username` at `where`; `text` is the server's answer.
Error auth_error(const Account& account, const std::string& where, const std::string& text);

// Shell-style glob (*, ?, [..]) over whole UTF-8 names; `*` also matches '/'.
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace mv::ingest::net
