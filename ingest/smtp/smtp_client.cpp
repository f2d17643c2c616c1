#include "ingest/smtp/smtp_client.hpp"

#include <unistd.h>

#include <set>

#include "ingest/net/account.hpp"
#include "ingest/net/sasl.hpp"

namespace mv::ingest::smtp {

namespace {

const char* security_name(net::Security s) {
    switch (s) {
        case net::Security::none: return "none";
        case net::Security::automatic: return "auto";
        case net::Security::starttls: return "starttls";
        case net::Security::tls: return "tls";
    }
    return "?";
}

struct Reply {
    int code = 0;
    std::vector<std::string> lines;  // text after "NNN-" / "NNN "
    std::string text() const {       // "NNN first line ..." joined
        std::string s = std::to_string(code);
        for (std::size_t i = 0; i < lines.size(); ++i) s += (i ? " / " : " ") + lines[i];
        return s;
    }
};

class Session {
  public:
    Session(const Settings& s, const Transcript& t, Failure* f) : s_(s), transcript_(t), failure_(f) {}

    Result<Outcome> run(const std::vector<std::string>& recipients, const std::string& message);

  private:
    Unexpected failed(Step step, Error::Kind kind, const std::string& what) {
        Error e = make_error(kind, "smtp: " + std::string(step_name(step)) + " failed: " + what);
        if (failure_) *failure_ = Failure{step, e};
        return fail(e);
    }
    Unexpected io_failed(Step step, const Error& e) { return failed(step, e.kind, net::detail(e.message)); }

    Result<Reply> read_reply() {
        Reply r;
        for (;;) {
            auto line = stream_->read_line(1 << 20);
            if (!line) return fail(line.error());
            const std::string& l = *line;
            if (l.size() < 3 || !std::isdigit(static_cast<unsigned char>(l[0])))
                return fail(Error::Kind::unreachable, "unexpected reply from " + stream_->where() + ": '" + l.substr(0, 200) + "'");
            r.code = std::stoi(l.substr(0, 3));
            r.lines.push_back(l.size() > 4 ? l.substr(4) : "");
            if (transcript_) transcript_("S: " + l);
            if (l.size() < 4 || l[3] != '-') return r;
        }
    }
    Result<Reply> command(const std::string& line, const std::string& shown = "") {
        if (transcript_) transcript_("C: " + (shown.empty() ? line : shown));
        if (auto w = stream_->write(line + "\r\n"); !w) return fail(w.error());
        return read_reply();
    }
    Result<void> ehlo();
    Result<void> authenticate();

    const Settings& s_;
    const Transcript& transcript_;
    Failure* failure_;
    std::unique_ptr<net::Stream> stream_;
    std::set<std::string> ext_;         // EHLO keywords, upper case
    std::set<std::string> auth_mechs_;  // from "AUTH ..." (and "AUTH=...")
    Outcome out_;
};

Result<void> Session::ehlo() {
    auto r = command("EHLO " + s_.helo);
    if (!r) return io_failed(Step::ehlo, r.error());
    if (r->code != 250) {
        auto h = command("HELO " + s_.helo);
        if (!h) return io_failed(Step::ehlo, h.error());
        if (h->code != 250) return failed(Step::ehlo, Error::Kind::unreachable, "server " + stream_->where() + " answered " + h->text());
        ext_.clear();
        auth_mechs_.clear();
        return ok();
    }
    ext_.clear();
    auth_mechs_.clear();
    for (std::size_t i = 1; i < r->lines.size(); ++i) {
        std::string l = net::upper_ascii(r->lines[i]);
        std::string kw = l.substr(0, l.find_first_of(" ="));
        ext_.insert(kw);
        if (kw == "AUTH" && l.size() > 5) {
            std::string rest = l.substr(5);
            std::size_t p = 0;
            while (p < rest.size()) {
                auto e = rest.find(' ', p);
                if (e == std::string::npos) e = rest.size();
                if (e > p) auth_mechs_.insert(rest.substr(p, e - p));
                p = e + 1;
            }
        }
    }
    return ok();
}

Result<void> Session::authenticate() {
    const std::string where = stream_->where();
    const std::string who = "user '" + s_.username + "' at " + where;
    if (!ext_.count("AUTH")) {
        std::string hint = stream_->is_tls() ? "" : " (many servers offer AUTH only after STARTTLS: check 'security')";
        return failed(Step::auth, Error::Kind::auth, "server " + where + " offers no AUTH but auth_required = true" + hint);
    }
    auto refused = [&](const Reply& r) {
        return failed(Step::auth, Error::Kind::auth, "server refused " + who + ": " + r.text());
    };
    if (s_.auth == SmtpAuth::xoauth2) {
        if (!auth_mechs_.count("XOAUTH2"))
            return failed(Step::auth, Error::Kind::auth, "server " + where + " does not offer AUTH XOAUTH2 (offers: " +
                                                             [&] { std::string m; for (auto& x : auth_mechs_) m += (m.empty() ? "" : " ") + x; return m; }() + ")");
        out_.auth_mechanism = "XOAUTH2";
        auto r = command("AUTH XOAUTH2 " + net::sasl_xoauth2(s_.username, s_.secret), "AUTH XOAUTH2 ***");
        if (!r) return io_failed(Step::auth, r.error());
        if (r->code == 334) {
            // The error challenge: base64 JSON with the reason; answer with an empty line, the
            // final 5xx follows.
            std::string detail = net::base64_decode(r->lines.empty() ? "" : r->lines[0]);
            auto f = command("");
            if (!f) return io_failed(Step::auth, f.error());
            std::string text = f->text();
            if (!detail.empty()) text += " (" + detail + ")";
            return failed(Step::auth, Error::Kind::auth, "server refused the OAuth token of " + who + ": " + text +
                                                             " (expired or revoked? run `mailvault connect smtp` again)");
        }
        if (r->code != 235) return failed(Step::auth, Error::Kind::auth, "server refused the OAuth token of " + who + ": " + r->text());
        return ok();
    }
    if (auth_mechs_.count("PLAIN")) {
        out_.auth_mechanism = "PLAIN";
        auto r = command("AUTH PLAIN " + net::sasl_plain(s_.username, s_.secret), "AUTH PLAIN ***");
        if (!r) return io_failed(Step::auth, r.error());
        if (r->code == 334) {  // a server that wants the response on its own line
            r = command(net::sasl_plain(s_.username, s_.secret), "***");
            if (!r) return io_failed(Step::auth, r.error());
        }
        if (r->code != 235) return refused(*r);
        return ok();
    }
    if (auth_mechs_.count("LOGIN")) {
        out_.auth_mechanism = "LOGIN";
        auto r = command("AUTH LOGIN");
        if (!r) return io_failed(Step::auth, r.error());
        if (r->code != 334) return refused(*r);
        r = command(net::base64_encode(s_.username), "*** (user name)");
        if (!r) return io_failed(Step::auth, r.error());
        if (r->code != 334) return refused(*r);
        r = command(net::base64_encode(s_.secret), "*** (password)");
        if (!r) return io_failed(Step::auth, r.error());
        if (r->code != 235) return refused(*r);
        return ok();
    }
    std::string m;
    for (auto& x : auth_mechs_) m += (m.empty() ? "" : " ") + x;
    return failed(Step::auth, Error::Kind::auth, "server " + where + " offers neither AUTH PLAIN nor LOGIN (offers: " + m + ")");
}

Result<Outcome> Session::run(const std::vector<std::string>& recipients, const std::string& message) {
    auto st = net::Stream::connect(s_.endpoint, net::Security::none);
    if (!st) return io_failed(Step::connect, st.error());
    stream_ = std::move(*st);
    if (s_.security == net::Security::tls) {
        if (auto r = stream_->start_tls(); !r) return io_failed(Step::tls, r.error());
    }
    const std::string where = stream_->where();
    auto greet = read_reply();
    if (!greet) return io_failed(Step::greeting, greet.error());
    if (greet->code != 220) return failed(Step::greeting, Error::Kind::unreachable, "server " + where + " answered " + greet->text());
    if (auto r = ehlo(); !r) return fail(r.error());
    bool offered = ext_.count("STARTTLS") > 0;
    bool upgrade = false;
    if (s_.security == net::Security::automatic) {
        net::log(std::string("smtp: security auto: ") + (offered ? "server " + where + " offers STARTTLS, using it"
                                                                  : "server " + where + " does not offer STARTTLS, continuing WITHOUT TLS"));
        upgrade = offered;
    } else if (s_.security == net::Security::starttls) {
        if (!offered) return failed(Step::starttls, Error::Kind::unreachable, "server " + where + " does not offer STARTTLS (security = starttls)");
        upgrade = true;
    }
    if (upgrade) {
        auto r = command("STARTTLS");
        if (!r) return io_failed(Step::starttls, r.error());
        if (r->code != 220) return failed(Step::starttls, Error::Kind::unreachable, "server " + where + " answered " + r->text());
        if (auto t = stream_->start_tls(); !t) return io_failed(Step::tls, t.error());
        if (auto e = ehlo(); !e) return fail(e.error());
    }
    out_.tls = stream_->is_tls();
    if (s_.endpoint.tls.trust_all && out_.tls)
        net::log("smtp: WARNING: trust_all_certificates = true, the certificate of " + where + " is not verified");
    if (s_.auth_required) {
        if (auto a = authenticate(); !a) return fail(a.error());
    }
    auto m = command("MAIL FROM:<" + s_.sender + ">");
    if (!m) return io_failed(Step::sender, m.error());
    if (m->code != 250) return failed(Step::sender, Error::Kind::auth, "server refused sender <" + s_.sender + ">: " + m->text());
    for (const auto& rcpt : recipients) {
        auto r = command("RCPT TO:<" + rcpt + ">");
        if (!r) return io_failed(Step::recipients, r.error());
        if (r->code == 250 || r->code == 251) out_.accepted.push_back(rcpt);
        else out_.refused.emplace_back(rcpt, r->text());
    }
    if (out_.accepted.empty()) {
        (void)command("RSET");
        (void)command("QUIT");
        std::string list;
        for (auto& [r, why] : out_.refused) list += (list.empty() ? "" : "; ") + ("<" + r + ">: " + why);
        return failed(Step::recipients, Error::Kind::failed, "every recipient was refused: " + list);
    }
    auto d = command("DATA");
    if (!d) return io_failed(Step::data, d.error());
    if (d->code != 354) return failed(Step::data, Error::Kind::failed, "server answered DATA with " + d->text());
    if (transcript_) transcript_("C: <message, " + std::to_string(message.size()) + " bytes>");
    if (auto w = stream_->write(dot_stuff(message)); !w) return io_failed(Step::data, w.error());
    auto fin = read_reply();
    if (!fin) return io_failed(Step::data, fin.error());
    if (fin->code != 250) return failed(Step::data, Error::Kind::failed, "server did not accept the message: " + fin->text());
    out_.final_reply = fin->text();
    (void)command("QUIT");
    return std::move(out_);
}

}  // namespace

const char* step_name(Step s) {
    switch (s) {
        case Step::connect: return "connect";
        case Step::tls: return "TLS handshake";
        case Step::greeting: return "greeting";
        case Step::ehlo: return "EHLO";
        case Step::starttls: return "STARTTLS";
        case Step::auth: return "authentication";
        case Step::sender: return "sender (MAIL FROM)";
        case Step::recipients: return "recipients (RCPT TO)";
        case Step::data: return "message (DATA)";
    }
    return "?";
}

std::string Settings::describe() const {
    std::string s = endpoint.host + ":" + std::to_string(endpoint.port) + " (" + security_name(security);
    if (auth_required) s += std::string(", auth ") + (auth == SmtpAuth::xoauth2 ? "xoauth2" : "password") + " as " + username;
    return s + ")";
}

Result<Settings> read_settings(const SourceConfig& c) {
    Settings s;
    const std::string src = "[smtp]: ";
    s.endpoint.source = "smtp";
    s.endpoint.host = c.get("host");
    if (s.endpoint.host.empty()) return fail(Error::Kind::usage, src + "'host' is required");
    std::string sec = c.get("security", "starttls");
    if (sec == "none") s.security = net::Security::none;
    else if (sec == "auto") s.security = net::Security::automatic;
    else if (sec == "starttls") s.security = net::Security::starttls;
    else if (sec == "tls") s.security = net::Security::tls;
    else return fail(Error::Kind::usage, src + "'security' must be none, auto, starttls or tls, not '" + sec + "'");
    auto port = c.get_int("port", s.security == net::Security::tls ? 465 : 587);
    if (!port) return fail(port.error());
    if (*port <= 0 || *port > 65535) return fail(Error::Kind::usage, src + "'port' must be 1..65535");
    s.endpoint.port = static_cast<int>(*port);
    auto trust = c.get_bool("trust_all_certificates", false);
    if (!trust) return fail(trust.error());
    s.endpoint.tls.trust_all = *trust;
    s.endpoint.tls.ca_file = c.get("ca_file");
    auto timeout = c.get_int("timeout", 60);
    if (!timeout) return fail(timeout.error());
    if (*timeout <= 0) return fail(Error::Kind::usage, src + "'timeout' must be positive (seconds)");
    s.endpoint.read_timeout = std::chrono::seconds(*timeout);
    s.endpoint.connect_timeout = std::chrono::seconds(std::min<long>(*timeout, 30));
    auto req = c.get_bool("auth_required", true);
    if (!req) return fail(req.error());
    s.auth_required = *req;
    std::string auth = c.get("auth", "password");
    if (auth == "password") s.auth = SmtpAuth::password;
    else if (auth == "xoauth2") s.auth = SmtpAuth::xoauth2;
    else return fail(Error::Kind::usage, src + "'auth' must be password or xoauth2, not '" + auth + "'");
    s.sender = c.get("sender");
    if (s.sender.empty()) return fail(Error::Kind::usage, src + "'sender' is required");
    s.username = c.get("username", s.sender);
    if (s.auth_required) {
        auto secret = s.auth == SmtpAuth::xoauth2 ? c.secret("token") : c.secret("password");
        if (!secret) return fail(make_error(secret.error().kind, src + net::detail(secret.error().message)));
        s.secret = *secret;
    }
    s.test_recipients = c.get_list("test_recipients", {});
    s.report_recipients = c.get_list("report_recipients", {});
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0 && host[0]) s.helo = host;
    s.helo = c.get("helo", s.helo);
    return s;
}

std::string dot_stuff(const std::string& m) {
    std::string out;
    out.reserve(m.size() + m.size() / 40 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < m.size(); ++i) {
        char c = m[i];
        if (c == '\r') {
            if (i + 1 < m.size() && m[i + 1] == '\n') continue;  // CRLF: the LF writes it
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (c == '\n') {
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') out += '.';
        out += c;
        line_start = false;
    }
    if (!line_start) out += "\r\n";
    out += ".\r\n";
    return out;
}

Result<Outcome> send(const Settings& settings, const std::vector<std::string>& recipients, const std::string& message,
                     Failure* failure, const Transcript& transcript) {
    if (recipients.empty()) {
        Error e = make_error(Error::Kind::usage, "smtp: no recipients");
        if (failure) *failure = Failure{Step::recipients, e};
        return fail(e);
    }
    Session s(settings, transcript, failure);
    return s.run(recipients, message);
}

}  // namespace mv::ingest::smtp
