#include "ingest/net/account.hpp"

#include <cstdio>
#include <mutex>

namespace mv::ingest::net {
namespace {

std::mutex g_log_mu;
LogSink& sink_ref() {
    static LogSink s;
    return s;
}

const char* security_name(Security s) {
    switch (s) {
        case Security::none: return "none";
        case Security::automatic: return "auto";
        case Security::starttls: return "starttls";
        case Security::tls: return "tls";
    }
    return "?";
}

}  // namespace

void set_log_sink(LogSink sink) {
    std::lock_guard lk(g_log_mu);
    sink_ref() = std::move(sink);
}

void log(const std::string& line) {
    std::lock_guard lk(g_log_mu);
    if (sink_ref())
        sink_ref()(line);
    else
        std::fprintf(stderr, "%s\n", line.c_str());
}

namespace {

std::u32string to_u32(const std::string& s) {
    std::u32string out;
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int n = c < 0x80 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        char32_t cp = n == 0 ? c : (c & (0x3F >> n));
        ++i;
        for (int k = 0; k < n && i < s.size(); ++k, ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
        out += cp;
    }
    return out;
}

bool match_u32(const char32_t* p, const char32_t* t) {
    for (; *p; ++p) {
        if (*p == U'*') {
            while (p[1] == U'*') ++p;
            if (!p[1]) return true;
            for (const char32_t* s = t; *s; ++s)
                if (match_u32(p + 1, s)) return true;
            return false;
        }
        if (!*t) return false;
        if (*p == U'?') {
            ++t;
            continue;
        }
        if (*p == U'[') {
            const char32_t* q = p + 1;
            bool negate = *q == U'!' || *q == U'^';
            if (negate) ++q;
            bool hit = false;
            const char32_t* start = q;
            while (*q && (*q != U']' || q == start)) {
                if (q[1] == U'-' && q[2] && q[2] != U']') {
                    hit |= *t >= q[0] && *t <= q[2];
                    q += 3;
                } else {
                    hit |= *t == *q;
                    ++q;
                }
            }
            if (!*q) return *t == U'[' && match_u32(p + 1, t + 1);  // no closing bracket: literal
            if (hit == negate) return false;
            p = q;
            ++t;
            continue;
        }
        if (*p == U'\\' && p[1]) ++p;
        if (*p != *t) return false;
        ++t;
    }
    return !*t;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
    std::u32string p = to_u32(pattern), t = to_u32(text);
    return match_u32(p.c_str(), t.c_str());
}

std::string detail(const std::string& message) {
    if (message.rfind("source '", 0) == 0) {
        auto end = message.find("': ");
        if (end != std::string::npos) return message.substr(end + 3);
    }
    return message;
}

std::string Account::describe() const {
    return username + "@" + endpoint.host + ":" + std::to_string(endpoint.port) + " (" + protocol + ", " +
           security_name(security) + ")";
}

Result<Account> read_account(const SourceConfig& config, const std::string& protocol) {
    Account a;
    a.source = config.name;
    a.protocol = protocol;
    const std::string src = "source '" + config.name + "': ";
    a.endpoint.source = config.name;
    a.endpoint.host = config.get("host");
    if (a.endpoint.host.empty()) return fail(Error::Kind::usage, src + "'host' is required");

    std::string sec = config.get("security", "tls");
    if (sec == "none") a.security = Security::none;
    else if (sec == "auto") a.security = Security::automatic;
    else if (sec == "starttls") a.security = Security::starttls;
    else if (sec == "tls") a.security = Security::tls;
    else return fail(Error::Kind::usage, src + "'security' must be none, auto, starttls or tls, not '" + sec + "'");

    long default_port = protocol == "imap" ? (a.security == Security::tls ? 993 : 143)
                                           : (a.security == Security::tls ? 995 : 110);
    auto port = config.get_int("port", default_port);
    if (!port) return fail(port.error());
    if (*port <= 0 || *port > 65535) return fail(Error::Kind::usage, src + "'port' must be 1..65535");
    a.endpoint.port = static_cast<int>(*port);

    auto trust = config.get_bool("trust_all_certificates", false);
    if (!trust) return fail(trust.error());
    a.endpoint.tls.trust_all = *trust;
    a.endpoint.tls.ca_file = config.get("ca_file");

    auto timeout = config.get_int("timeout", 60);
    if (!timeout) return fail(timeout.error());
    if (*timeout <= 0) return fail(Error::Kind::usage, src + "'timeout' must be positive (seconds)");
    auto connect_timeout = config.get_int("connect_timeout", std::min<long>(*timeout, 30));
    if (!connect_timeout) return fail(connect_timeout.error());
    if (*connect_timeout <= 0) return fail(Error::Kind::usage, src + "'connect_timeout' must be positive (seconds)");
    a.endpoint.connect_timeout = std::chrono::seconds(*connect_timeout);
    a.endpoint.read_timeout = std::chrono::seconds(*timeout);

    std::string auth = config.get("auth", "password");
    if (auth == "password") a.auth = AuthMethod::automatic;
    else if (auth == "login" || auth == "user") a.auth = AuthMethod::login;
    else if (auth == "plain") a.auth = AuthMethod::plain;
    else if (auth == "xoauth2") a.auth = AuthMethod::xoauth2;
    else return fail(Error::Kind::usage, src + "'auth' must be password, login, plain or xoauth2, not '" + auth + "'");

    a.username = config.get("username");
    if (a.username.empty()) return fail(Error::Kind::usage, src + "'username' is required");
    Result<std::string> secret = a.auth == AuthMethod::xoauth2 ? config.secret("token") : config.secret("password");
    if (!secret && a.auth == AuthMethod::xoauth2) secret = config.secret("password");
    if (!secret) return fail(secret.error());
    a.secret = *secret;

    auto del = config.get_bool("delete_after_archive", false);
    if (!del) return fail(del.error());
    a.delete_after_archive = *del;
    a.folders = config.get_list("folders", {"*"});
    a.exclude = config.get_list("exclude", {});
    auto batch = config.get_int("fetch_batch", 500);
    if (!batch) return fail(batch.error());
    if (*batch < 1) return fail(Error::Kind::usage, src + "'fetch_batch' must be at least 1");
    a.fetch_batch = static_cast<std::size_t>(*batch);
    auto queue = config.get_int("queue_messages", 256);
    if (!queue) return fail(queue.error());
    a.queue_messages = static_cast<std::size_t>(std::max<long>(1, *queue));
    auto attempts = config.get_int("reconnect_attempts", 3);
    if (!attempts) return fail(attempts.error());
    a.reconnect_attempts = static_cast<int>(*attempts);
    return a;
}

std::string upper_ascii(std::string s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    return s;
}

Error auth_error(const Account& account, const std::string& where, const std::string& text) {
    return make_error(Error::Kind::auth, "source '" + account.source + "': authentication failed for user '" +
                                             account.username + "' at " + where +
                                             " (wrong user name, password or token?): " + text);
}

Result<bool> want_starttls(const Account& account, const std::string& where, const std::string& verb, bool offered) {
    const std::string src = "source '" + account.source + "': ";
    if (account.security == Security::automatic) {
        log(src + "security auto: " +
            (offered ? "server " + where + " offers " + verb + ", using it"
                     : "server " + where + " does not offer " + verb + ", continuing WITHOUT TLS"));
        return offered;
    }
    if (account.security != Security::starttls) return false;
    if (!offered)
        return fail(Error::Kind::unreachable,
                    src + "TLS failure with " + where + ": server does not offer " + verb + " (security = starttls)");
    return true;
}

void warn_trust_all(const Account& account, const Stream& stream) {
    if (account.endpoint.tls.trust_all && stream.is_tls())
        log("source '" + account.source + "': WARNING: trust_all_certificates = true, the certificate of " +
            stream.where() + " is not verified");
}

}  // namespace mv::ingest::net
