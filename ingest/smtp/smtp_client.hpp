#pragma once
// A small SMTP submission client on the IMAP/POP3 transport (ingest/net/stream): none | auto |
// starttls | tls, certificate checks, AUTH PLAIN / LOGIN / XOAUTH2 (with the error challenge),
// per-recipient results. Every failure names the step; secrets never appear in messages.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "index/config/config.hpp"
#include "index/util/result.hpp"
#include "ingest/net/stream.hpp"

namespace mv::ingest::smtp {

enum class SmtpAuth { password, xoauth2 };

// The [smtp] table, read and checked.
struct Settings {
    net::Endpoint endpoint;  // endpoint.source = "smtp"
    net::Security security = net::Security::starttls;
    bool auth_required = true;
    SmtpAuth auth = SmtpAuth::password;
    std::string username;
    std::string secret;  // password or access token; never printed
    std::string sender;
    std::string helo = "localhost";
    std::vector<std::string> test_recipients;
    std::vector<std::string> report_recipients;

    std::string describe() const;  // "host:port (starttls, auth password as USER)"
};

// Errors name the key (Error::Kind::usage). The secret is read only when auth_required.
Result<Settings> read_settings(const SourceConfig& smtp);

// The step a submission failed at.
enum class Step { connect, tls, greeting, ehlo, starttls, auth, sender, recipients, data };
const char* step_name(Step s);

struct Failure {
    Step step = Step::connect;
    Error error;  // one line: what failed and the server's reply or the certificate problem
};

struct Outcome {
    std::vector<std::string> accepted;
    std::vector<std::pair<std::string, std::string>> refused;  // recipient, the server's reply
    std::string final_reply;  // reply to the end of DATA, e.g. "250 2.0.0 Ok: queued as 123"
    bool tls = false;         // the message travelled encrypted
    std::string auth_mechanism;  // "" when no AUTH was done
};

// One line per SMTP exchange (commands with credentials shown as "AUTH PLAIN ***"), for logs.
using Transcript = std::function<void(const std::string&)>;

// Sends `message` (RFC 5322 bytes, any line ends) to `recipients`. Fails with the step when
// nothing was sent; refused recipients are in the outcome when at least one was accepted.
Result<Outcome> send(const Settings& settings, const std::vector<std::string>& recipients, const std::string& message,
                     Failure* failure = nullptr, const Transcript& transcript = {});

// CRLF line ends, leading dots doubled, terminated by CRLF "." CRLF.
std::string dot_stuff(const std::string& message);

}  // namespace mv::ingest::smtp
