#include "ingest/pop3/pop3_client.hpp"

#include <algorithm>
#include <deque>
#include <sstream>

#include "ingest/net/sasl.hpp"

namespace mv::ingest::pop3 {
namespace {
// The step an error names: the command without credentials.
std::string describe(const std::string& line) {
    std::string verb = line.substr(0, line.find(' '));
    if (verb == "PASS" || verb == "AUTH" || verb == "USER" || verb == "APOP") return "POP3 " + verb;
    return "POP3 " + line.substr(0, 60);
}
}  // namespace

Client::~Client() = default;

Error Client::fail_msg(Error::Kind k, const std::string& what) const {
    return make_error(k, "source '" + account_.source + "': " + what);
}

Result<std::string> Client::status_line(const std::string& what) {
    auto line = stream_->read_line(1 << 16);
    if (!line) return fail(line.error());
    if (line->rfind("+OK", 0) == 0) return *line;
    return fail(fail_msg(Error::Kind::failed, "server " + stream_->where() + " refused " + what + ": " + *line));
}

Result<std::string> Client::command(const std::string& line) {
    stream_->set_step(describe(line));
    if (auto w = stream_->write(line + "\r\n"); !w) return fail(w.error());
    return status_line(line.substr(0, line.find(' ')));
}

Result<void> Client::multiline(std::string& out) {
    for (;;) {
        auto line = stream_->read_line(64u << 20, true);  // one reply with its status line
        if (!line) return fail(line.error());
        const std::string& l = *line;
        if (!l.empty() && l[0] == '.') {
            if (l.size() == 1) return ok();
            out.append(l, 1, std::string::npos);
        } else {
            out += l;
        }
        out += "\r\n";
    }
}

Result<void> Client::capa() {
    caps_.clear();
    auto r = command("CAPA");
    if (!r) return ok();  // CAPA is optional (RFC 2449): no capabilities then
    std::string text;
    if (auto m = multiline(text); !m) return m;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (!l.empty() && l.back() == '\r') l.pop_back();
        l = net::upper_ascii(l);
        caps_.insert(l);
        if (l.rfind("SASL ", 0) == 0) {
            std::istringstream mechs(l.substr(5));
            for (std::string m; mechs >> m;) caps_.insert("SASL " + m);
        }
        caps_.insert(l.substr(0, l.find(' ')));
    }
    return ok();
}

Result<std::unique_ptr<Client>> Client::open(const net::Account& account) {
    std::unique_ptr<Client> c(new Client(account));
    auto s = net::Stream::connect(account.endpoint, account.security);
    if (!s) return fail(s.error());
    c->stream_ = std::move(*s);
    const std::string where = c->stream_->where();
    c->stream_->set_step("POP3 greeting");
    auto greeting = c->stream_->read_line(1 << 16);
    if (!greeting) return fail(greeting.error());
    if (greeting->rfind("+OK", 0) != 0)
        return fail(c->fail_msg(Error::Kind::unreachable,
                                "server " + where + " is not a POP3 server or refused the connection: " + greeting->substr(0, 200)));
    if (auto r = c->capa(); !r) return fail(r.error());
    auto stls = net::want_starttls(account, where, "STLS", c->has("STLS"));
    if (!stls) return fail(stls.error());
    if (*stls) {
        if (auto r = c->command("STLS"); !r) return fail(r.error());
        if (auto r = c->stream_->start_tls(); !r) return fail(r.error());
        if (auto r = c->capa(); !r) return fail(r.error());
    }
    net::warn_trust_all(account, *c->stream_);
    if (auto r = c->enable_utf8(); !r) return fail(r.error());
    if (auto r = c->authenticate(); !r) return fail(r.error());
    return c;
}

Result<void> Client::enable_utf8() {
    // RFC 6856: without UTF8, Courier hands out a "Cannot display Unicode content" notice in
    // place of every message with 8-bit headers.
    if (!has("UTF8")) return ok();
    auto r = command("UTF8");
    if (r) return ok();
    if (r.error().kind == Error::Kind::unreachable) return fail(r.error());
    net::log("source '" + account_.source + "': the server offers UTF8 but refused it: " + net::detail(r.error().message));
    return ok();
}

Result<void> Client::authenticate() {
    const std::string where = stream_->where();
    auto auth_error = [&](const std::string& text) { return fail(net::auth_error(account_, where, text)); };
    net::AuthMethod m = account_.auth;
    if (m == net::AuthMethod::automatic) m = has("SASL PLAIN") ? net::AuthMethod::plain : net::AuthMethod::login;
    if (m == net::AuthMethod::login) {
        auto u = command("USER " + account_.username);
        if (!u) {
            if (u.error().kind == Error::Kind::unreachable) return fail(u.error());
            return auth_error(net::detail(u.error().message));
        }
        stream_->set_step("POP3 PASS");
        if (auto w = stream_->write("PASS " + account_.secret + "\r\n"); !w) return w;
        auto line = stream_->read_line(1 << 16);
        if (!line) return fail(line.error());
        if (line->rfind("+OK", 0) != 0) return auth_error(*line);
        return ok();
    }
    const char* mech = m == net::AuthMethod::plain ? "PLAIN" : "XOAUTH2";
    if (!has(std::string("SASL ") + mech))
        return fail(fail_msg(Error::Kind::auth, "server " + where + " does not offer AUTH " + mech));
    std::string ir = m == net::AuthMethod::plain ? net::sasl_plain(account_.username, account_.secret)
                                                 : net::sasl_xoauth2(account_.username, account_.secret);
    stream_->set_step(std::string("POP3 AUTH ") + mech);
    if (auto w = stream_->write(std::string("AUTH ") + mech + " " + ir + "\r\n"); !w) return w;
    for (;;) {
        auto line = stream_->read_line(1 << 16);
        if (!line) return fail(line.error());
        if (line->rfind("+OK", 0) == 0) return ok();
        if (line->rfind("+ ", 0) == 0 || *line == "+") {  // XOAUTH2 error challenge: empty answer, -ERR follows
            if (auto w = stream_->write("\r\n"); !w) return w;
            continue;
        }
        return auth_error(*line);
    }
}

Result<std::vector<std::pair<unsigned, std::string>>> Client::uidl() {
    auto r = command("UIDL");
    if (!r) return fail(r.error());
    std::string text;
    if (auto m = multiline(text); !m) return fail(m.error());
    std::vector<std::pair<unsigned, std::string>> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        std::istringstream f(l);
        unsigned n;
        std::string id;
        if (f >> n >> id) out.emplace_back(n, id);
    }
    return out;
}

Result<std::string> Client::top(unsigned msgno, unsigned lines) {
    auto r = command("TOP " + std::to_string(msgno) + " " + std::to_string(lines));
    if (!r) return fail(r.error());
    std::string text;
    if (auto m = multiline(text); !m) return fail(m.error());
    return text;
}

Result<void> Client::retr(const std::vector<unsigned>& msgnos, std::size_t window,
                          const std::function<bool(unsigned, std::string&&)>& sink) {
    if (!has("PIPELINING")) window = 1;
    std::size_t sent = 0;
    std::deque<unsigned> in_flight;
    auto send_more = [&]() -> Result<void> {
        std::string batch;
        while (sent < msgnos.size() && in_flight.size() < window) {
            batch += "RETR " + std::to_string(msgnos[sent]) + "\r\n";
            in_flight.push_back(msgnos[sent++]);
        }
        if (batch.empty()) return ok();
        return stream_->write(batch);
    };
    if (auto w = send_more(); !w) return w;
    while (!in_flight.empty()) {
        unsigned n = in_flight.front();
        in_flight.pop_front();
        stream_->set_step("POP3 RETR " + std::to_string(n));
        auto st = status_line("RETR " + std::to_string(n));
        if (!st) {
            if (st.error().kind == Error::Kind::unreachable) return fail(st.error());
            net::log(st.error().message);  // e.g. deleted by another session: skip it
        } else {
            std::string body;
            if (auto m = multiline(body); !m) return m;
            if (!sink(n, std::move(body))) return ok();
        }
        // Refill by half windows: fewer, larger writes.
        if (in_flight.size() <= window / 2)
            if (auto w = send_more(); !w) return w;
    }
    return ok();
}

Result<void> Client::dele_and_quit(const std::vector<unsigned>& msgnos) {
    std::size_t window = has("PIPELINING") ? 64 : 1;
    for (std::size_t i = 0; i < msgnos.size(); i += window) {
        std::string batch;
        std::size_t end = std::min(msgnos.size(), i + window);
        for (std::size_t k = i; k < end; ++k) batch += "DELE " + std::to_string(msgnos[k]) + "\r\n";
        stream_->set_step("POP3 DELE");
        if (auto w = stream_->write(batch); !w) return w;
        for (std::size_t k = i; k < end; ++k)
            if (auto st = status_line("DELE"); !st) return fail(st.error());
    }
    auto q = command("QUIT");
    if (!q) return fail(q.error());
    stream_->close();
    return ok();
}

void Client::quit() {
    if (!stream_) return;
    if (stream_->write("QUIT\r\n")) (void)stream_->read_line(1 << 16);
    stream_->close();
}

}  // namespace mv::ingest::pop3
