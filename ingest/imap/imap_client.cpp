#include "ingest/imap/imap_client.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <deque>

#include "ingest/net/sasl.hpp"
#include "ingest/net/utf7.hpp"

namespace mv::ingest::imap {
namespace {

using net::upper_ascii;

bool starts_with_ci(const std::string& s, const std::string& prefix) {
    return s.size() >= prefix.size() && upper_ascii(s.substr(0, prefix.size())) == upper_ascii(prefix);
}

// "{123}" or "{123+}" at the end of a line: the literal's size.
// The step an error names: the command without credentials, its arguments shortened.
std::string describe_command(const std::string& command) {
    std::string verb = command.substr(0, command.find(' '));
    std::string v = verb;
    for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (v == "LOGIN" || v == "AUTHENTICATE") return "IMAP " + v;
    std::string d = "IMAP " + command;
    if (d.size() > 60) d = d.substr(0, 57) + "...";
    return d;
}

std::optional<std::size_t> trailing_literal(const std::string& line) {
    if (line.empty() || line.back() != '}') return std::nullopt;
    auto open = line.rfind('{');
    if (open == std::string::npos) return std::nullopt;
    std::string num = line.substr(open + 1, line.size() - open - 2);
    if (!num.empty() && num.back() == '+') num.pop_back();
    if (num.empty() || num.size() > 15 || !std::all_of(num.begin(), num.end(), ::isdigit)) return std::nullopt;
    return std::stoull(num);
}

std::uint32_t to_u32(const std::string& s) {
    try {
        return static_cast<std::uint32_t>(std::stoul(s));
    } catch (...) {
        return 0;
    }
}

}  // namespace

// ---- Tokenizer ----

char Tokenizer::peek() {
    while (pos_ < r_.text.size() && r_.text[pos_] == ' ') ++pos_;
    return pos_ < r_.text.size() ? r_.text[pos_] : '\0';
}

bool Tokenizer::consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
}

std::string Tokenizer::atom() {
    peek();
    std::string out;
    int depth = 0;
    while (pos_ < r_.text.size()) {
        char c = r_.text[pos_];
        if (depth == 0 && (c == ' ' || c == '(' || c == ')' || c == '{' || c == '"')) break;
        if (c == '[') ++depth;
        if (c == ']' && depth > 0) --depth;
        out += c;
        ++pos_;
    }
    return out;
}

std::optional<std::string> Tokenizer::nstring() {
    char c = peek();
    if (c == '"') {
        ++pos_;
        std::string out;
        while (pos_ < r_.text.size() && r_.text[pos_] != '"') {
            if (r_.text[pos_] == '\\' && pos_ + 1 < r_.text.size()) ++pos_;
            out += r_.text[pos_++];
        }
        ++pos_;
        return out;
    }
    if (c == '{') {
        auto close = r_.text.find('}', pos_);
        pos_ = close == std::string::npos ? r_.text.size() : close + 1;
        if (next_literal_ < r_.literals.size()) return std::move(r_.literals[next_literal_++]);
        return std::string();
    }
    std::string a = atom();
    if (upper_ascii(a) == "NIL") return std::nullopt;
    return a;
}

std::vector<std::string> Tokenizer::list() {
    std::vector<std::string> out;
    if (!consume('(')) {
        nstring();
        return out;
    }
    while (!at_end()) {
        if (consume(')')) break;
        if (peek() == '(') {
            skip_value();
            continue;
        }
        auto v = nstring();
        if (v) out.push_back(std::move(*v));
        else if (peek() == '\0') break;
    }
    return out;
}

void Tokenizer::skip_value() {
    if (consume('(')) {
        while (!at_end() && !consume(')')) skip_value();
        return;
    }
    std::size_t before = pos_;
    nstring();
    if (pos_ == before && pos_ < r_.text.size()) ++pos_;  // stray character: never loop
}

std::string Tokenizer::rest() {
    peek();
    return r_.text.substr(std::min(pos_, r_.text.size()));
}

// ---- helpers ----

std::int64_t parse_internal_date(const std::string& s) {
    static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int day, year, hh, mm, ss;
    char mon[4] = {0};
    char sign;
    int zone;
    if (std::sscanf(s.c_str(), " %d-%3s-%d %d:%d:%d %c%4d", &day, mon, &year, &hh, &mm, &ss, &sign, &zone) != 8)
        return 0;
    int m = -1;
    for (int i = 0; i < 12; ++i)
        if (strcasecmp(mon, months[i]) == 0) m = i;
    if (m < 0) return 0;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = m;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    std::int64_t t = timegm(&tm);
    int offset = (zone / 100) * 3600 + (zone % 100) * 60;
    return sign == '-' ? t + offset : t - offset;
}

std::string uid_set(const std::vector<std::uint32_t>& uids) {
    std::string out;
    for (std::size_t i = 0; i < uids.size();) {
        std::size_t j = i;
        while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(uids[i]);
        if (j > i) out += ':' + std::to_string(uids[j]);
        i = j + 1;
    }
    return out;
}

std::optional<Fetched> parse_fetch(Response& r) {
    Tokenizer t(r);
    if (!t.consume('*')) return std::nullopt;
    t.atom();  // sequence number
    if (upper_ascii(t.atom()) != "FETCH") return std::nullopt;
    if (!t.consume('(')) return std::nullopt;
    Fetched f;
    while (!t.at_end() && !t.consume(')')) {
        std::string key = upper_ascii(t.atom());
        if (key.empty()) {
            t.skip_value();
            continue;
        }
        if (key == "UID") {
            f.uid = to_u32(t.atom());
        } else if (key == "FLAGS") {
            f.flags = t.list();
        } else if (key == "INTERNALDATE") {
            auto d = t.nstring();
            if (d) f.internal_date = parse_internal_date(*d);
        } else if (key.rfind("BODY[", 0) == 0 || (key.rfind("RFC822", 0) == 0 && key != "RFC822.SIZE")) {
            f.body = t.nstring();
            if (!f.body) f.body = std::string();
        } else {
            t.skip_value();
        }
    }
    return f;
}

std::optional<Namespace> parse_personal_namespace(Response& r) {
    Tokenizer t(r);
    if (!t.consume('*') || upper_ascii(t.atom()) != "NAMESPACE") return std::nullopt;
    if (!t.consume('(')) return std::nullopt;  // NIL: no personal namespace
    if (!t.consume('(')) return std::nullopt;
    auto prefix = t.nstring();
    auto delim = t.nstring();
    if (!prefix) return std::nullopt;
    Namespace ns;
    ns.prefix = *prefix;
    ns.delimiter = delim && !delim->empty() ? (*delim)[0] : 0;
    return ns;
}

std::string folder_label(const std::string& raw, char delimiter, const std::string& personal_prefix) {
    if (upper_ascii(raw) == "INBOX") return "INBOX";
    std::string name = raw;
    // INBOX is case-insensitive, also as the prefix ("INBOX." of Courier and Cyrus).
    bool inbox_prefix = upper_ascii(personal_prefix.substr(0, 5)) == "INBOX";
    if (!personal_prefix.empty() && name.size() > personal_prefix.size() &&
        (inbox_prefix ? upper_ascii(name.substr(0, personal_prefix.size())) == upper_ascii(personal_prefix)
                      : name.compare(0, personal_prefix.size(), personal_prefix) == 0)) {
        std::string rest = name.substr(personal_prefix.size());
        if (upper_ascii(rest) != "INBOX") name = rest;  // "INBOX.INBOX" stays apart from the inbox
    }
    std::string decoded = net::mutf7_decode(name);
    if (delimiter && delimiter != '/') std::replace(decoded.begin(), decoded.end(), delimiter, '/');
    return decoded;
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

// ---- Client ----

Client::~Client() = default;

Error Client::fail_msg(Error::Kind k, const std::string& what) const {
    return make_error(k, "source '" + account_.source + "': " + what);
}

std::string Client::next_tag() { return "a" + std::to_string(++tag_); }

Result<Response> Client::read_response() {
    Response r;
    auto line = stream_->read_line();
    if (!line) return fail(line.error());
    r.text = std::move(*line);
    while (auto n = trailing_literal(r.text)) {
        if (auto u = r.text.find("UID "); u != std::string::npos && r.text.find("FETCH") != std::string::npos) {
            std::string uid;
            for (std::size_t i = u + 4; i < r.text.size() && std::isdigit(static_cast<unsigned char>(r.text[i])); ++i) uid += r.text[i];
            if (!uid.empty()) stream_->set_step("IMAP UID FETCH " + uid + " (literal of " + std::to_string(*n) + " bytes)");
        }
        std::string lit;
        auto got = stream_->read_exact(*n, lit, true);
        if (!got) return fail(got.error());
        r.literals.push_back(std::move(lit));
        auto more = stream_->read_line(64u << 20, true);
        if (!more) return fail(more.error());
        r.text += *more;
    }
    return r;
}

Result<void> Client::send(const std::string& tag, const std::string& command) {
    stream_->set_step(describe_command(command));
    return stream_->write(tag + " " + command + "\r\n");
}

void Client::take_capabilities(const std::string& text) {
    // text: "CAPABILITY A B C..." possibly followed by "] ..."
    caps_.clear();
    std::string s = text;
    auto close = s.find(']');
    if (close != std::string::npos) s = s.substr(0, close);
    std::size_t pos = 0;
    bool first = true;
    while (pos < s.size()) {
        auto sp = s.find(' ', pos);
        std::string word = s.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
        if (!first && !word.empty()) caps_.insert(upper_ascii(word));
        first = false;
        if (sp == std::string::npos) break;
        pos = sp + 1;
    }
}

Result<void> Client::run(const std::string& command, std::vector<Response>* untagged) {
    std::string tag = next_tag();
    auto w = send(tag, command);
    if (!w) return w;
    for (;;) {
        auto r = read_response();
        if (!r) return fail(r.error());
        if (r->text.rfind(tag + " ", 0) == 0) {
            std::string status = r->text.substr(tag.size() + 1);
            if (starts_with_ci(status, "OK")) {
                if (auto p = status.find("[CAPABILITY "); p != std::string::npos) take_capabilities(status.substr(p + 1));
                return ok();
            }
            std::string verb = command.substr(0, command.find(' '));
            return fail(fail_msg(Error::Kind::failed, "server " + stream_->where() + " refused " + verb + ": " + status));
        }
        if (r->text.rfind("* CAPABILITY ", 0) == 0 || r->text.rfind("* capability ", 0) == 0)
            take_capabilities(r->text.substr(2));
        else if (starts_with_ci(r->text, "* BYE"))
            return fail(fail_msg(Error::Kind::unreachable, "server " + stream_->where() + " closed the session: " + r->text.substr(2)));
        if (untagged) untagged->push_back(std::move(*r));
    }
}

Result<void> Client::capability() { return run("CAPABILITY"); }

Result<std::unique_ptr<Client>> Client::open(const net::Account& account) {
    std::unique_ptr<Client> c(new Client(account));
    auto s = net::Stream::connect(account.endpoint, account.security);
    if (!s) return fail(s.error());
    c->stream_ = std::move(*s);
    const std::string where = c->stream_->where();
    c->stream_->set_step("IMAP greeting");
    auto greeting = c->read_response();
    if (!greeting) return fail(greeting.error());
    const std::string& g = greeting->text;
    if (!starts_with_ci(g, "* OK") && !starts_with_ci(g, "* PREAUTH"))
        return fail(c->fail_msg(Error::Kind::unreachable,
                                "server " + where + " is not an IMAP server or refused the connection: " + g.substr(0, 200)));
    if (auto p = g.find("[CAPABILITY "); p != std::string::npos)
        c->take_capabilities(g.substr(p + 1));
    else if (auto r = c->capability(); !r)
        return fail(r.error());

    auto starttls = net::want_starttls(account, where, "STARTTLS", c->has("STARTTLS"));
    if (!starttls) return fail(starttls.error());
    if (*starttls) {
        if (auto r = c->run("STARTTLS"); !r) return fail(r.error());
        if (auto r = c->stream_->start_tls(); !r) return fail(r.error());
        if (auto r = c->capability(); !r) return fail(r.error());
    }
    net::warn_trust_all(account, *c->stream_);
    if (!starts_with_ci(g, "* PREAUTH")) {
        if (auto r = c->authenticate(); !r) return fail(r.error());
    }
    return c;
}

Result<void> Client::authenticate() {
    const std::string where = stream_->where();
    auto auth_error = [&](const std::string& text) { return fail(net::auth_error(account_, where, text)); };
    net::AuthMethod m = account_.auth;
    if (m == net::AuthMethod::automatic) m = has("AUTH=PLAIN") ? net::AuthMethod::plain : net::AuthMethod::login;
    if (m == net::AuthMethod::login && has("LOGINDISABLED"))
        return fail(fail_msg(Error::Kind::auth, "server " + where +
                                                    " refuses LOGIN on an unencrypted connection (use security = starttls or tls)"));
    std::string tag = next_tag();
    // A quoted string cannot carry 8-bit or control bytes: those go as non-synchronizing literals.
    auto needs_literal = [](const std::string& v) {
        return std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f; });
    };
    if (m == net::AuthMethod::login && (needs_literal(account_.username) || needs_literal(account_.secret))) {
        if (!has("LITERAL+") && has("AUTH=PLAIN"))
            m = net::AuthMethod::plain;
        else if (!has("LITERAL+"))
            return fail(fail_msg(Error::Kind::auth, "server " + where +
                                                        " cannot take this user name or password with LOGIN (8-bit characters)"));
    }
    if (m == net::AuthMethod::login) {
        auto arg = [&](const std::string& v) {
            return needs_literal(v) ? "{" + std::to_string(v.size()) + "+}\r\n" + v : quote(v);
        };
        if (auto w = send(tag, "LOGIN " + arg(account_.username) + " " + arg(account_.secret)); !w) return w;
    } else {
        const char* mech = m == net::AuthMethod::plain ? "PLAIN" : "XOAUTH2";
        if (!has(std::string("AUTH=") + mech))
            return fail(fail_msg(Error::Kind::auth, "server " + where + " does not offer AUTHENTICATE " + mech));
        std::string ir = m == net::AuthMethod::plain ? net::sasl_plain(account_.username, account_.secret)
                                                     : net::sasl_xoauth2(account_.username, account_.secret);
        if (has("SASL-IR")) {
            if (auto w = send(tag, std::string("AUTHENTICATE ") + mech + " " + ir); !w) return w;
        } else {
            if (auto w = send(tag, std::string("AUTHENTICATE ") + mech); !w) return w;
            auto cont = read_response();
            if (!cont) return fail(cont.error());
            if (cont->text.rfind("+", 0) != 0) return auth_error(cont->text);
            if (auto w = stream_->write(ir + "\r\n"); !w) return w;
        }
    }
    for (;;) {
        auto r = read_response();
        if (!r) return fail(r.error());
        if (r->text.rfind("+", 0) == 0) {  // XOAUTH2 error challenge: answer empty, then NO follows
            if (auto w = stream_->write("\r\n"); !w) return w;
            continue;
        }
        if (r->text.rfind(tag + " ", 0) == 0) {
            std::string status = r->text.substr(tag.size() + 1);
            if (!starts_with_ci(status, "OK")) return auth_error(status);
            if (auto p = status.find("[CAPABILITY "); p != std::string::npos)
                take_capabilities(status.substr(p + 1));
            else if (auto c = capability(); !c)
                return c;
            return ok();
        }
        if (r->text.rfind("* CAPABILITY ", 0) == 0) take_capabilities(r->text.substr(2));
    }
}

Result<std::vector<Folder>> Client::list() {
    if (!namespace_asked_ && has("NAMESPACE")) {
        std::vector<Response> ns;
        if (auto r = run("NAMESPACE", &ns); !r) {
            if (r.error().kind == Error::Kind::unreachable) return fail(r.error());
            net::log("source '" + account_.source + "': NAMESPACE refused; folder names are used as listed");
        }
        for (auto& resp : ns)
            if (auto p = parse_personal_namespace(resp)) personal_ = *p;
        namespace_asked_ = true;
    }
    std::vector<Response> untagged;
    if (auto r = run("LIST \"\" \"*\"", &untagged); !r) return fail(r.error());
    std::vector<Folder> out;
    for (auto& resp : untagged) {
        Tokenizer t(resp);
        if (!t.consume('*') || upper_ascii(t.atom()) != "LIST") continue;
        auto attrs = t.list();
        Folder f;
        auto delim = t.nstring();
        f.delimiter = delim && !delim->empty() ? (*delim)[0] : 0;
        auto name = t.nstring();
        if (!name) continue;
        f.raw = *name;
        for (auto& a : attrs) {
            std::string u = upper_ascii(a);
            if (u == "\\NOSELECT" || u == "\\NONEXISTENT") f.selectable = false;
        }
        std::string prefix = personal_ ? personal_->prefix : std::string();
        f.path = folder_label(f.raw, f.delimiter, prefix);
        out.push_back(std::move(f));
    }
    return out;
}

Result<SelectInfo> Client::select(const std::string& raw, Access access) {
    std::vector<Response> untagged;
    if (auto r = run(std::string(access == Access::read_only ? "EXAMINE " : "SELECT ") + quote(raw), &untagged); !r)
        return fail(r.error());
    SelectInfo info;
    for (auto& resp : untagged) {
        const std::string& s = resp.text;
        if (auto p = s.find("[UIDVALIDITY "); p != std::string::npos) info.uidvalidity = to_u32(s.substr(p + 13));
        if (auto p = s.find("[UIDNEXT "); p != std::string::npos) info.uidnext = to_u32(s.substr(p + 9));
        if (s.size() > 2 && s.find(" EXISTS") != std::string::npos) info.exists = to_u32(s.substr(2));
    }
    return info;
}

Result<std::uint32_t> Client::status_messages(const std::string& raw) {
    std::vector<Response> untagged;
    if (auto r = run("STATUS " + quote(raw) + " (MESSAGES)", &untagged); !r) return fail(r.error());
    for (auto& resp : untagged) {
        auto p = upper_ascii(resp.text).find("MESSAGES ");
        if (p != std::string::npos) return to_u32(resp.text.substr(p + 9));
    }
    return 0u;
}

Result<std::uint32_t> Client::status_uidnext(const std::string& raw) {
    std::vector<Response> untagged;
    if (auto r = run("STATUS " + quote(raw) + " (UIDNEXT)", &untagged); !r) return fail(r.error());
    for (auto& resp : untagged) {
        auto p = upper_ascii(resp.text).find("UIDNEXT ");
        if (p != std::string::npos) return to_u32(resp.text.substr(p + 8));
    }
    return 0u;
}

Result<std::vector<std::uint32_t>> Client::uids_from(std::uint32_t first) {
    std::vector<Response> untagged;
    if (auto r = run("UID SEARCH UID " + std::to_string(std::max<std::uint32_t>(first, 1)) + ":*", &untagged); !r)
        return fail(r.error());
    std::vector<std::uint32_t> out;
    for (auto& resp : untagged) {
        if (!starts_with_ci(resp.text, "* SEARCH")) continue;
        const char* p = resp.text.c_str() + 8;
        while (*p) {
            while (*p == ' ') ++p;
            if (!*p) break;
            char* end;
            unsigned long v = std::strtoul(p, &end, 10);
            if (end == p) break;
            if (v >= first) out.push_back(static_cast<std::uint32_t>(v));  // "n:*" also returns the last UID
            p = end;
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

Result<void> Client::fetch(const std::vector<std::uint32_t>& uids, std::size_t batch, std::size_t window,
                           const std::string& items, const std::function<bool(Fetched&&)>& sink) {
    std::size_t next = 0;
    std::deque<std::string> in_flight, steps;
    auto send_next = [&]() -> Result<void> {
        std::size_t end = std::min(uids.size(), next + batch);
        std::vector<std::uint32_t> chunk(uids.begin() + static_cast<long>(next), uids.begin() + static_cast<long>(end));
        next = end;
        std::string tag = next_tag();
        in_flight.push_back(tag);
        steps.push_back(describe_command("UID FETCH " + uid_set(chunk)));
        return send(tag, "UID FETCH " + uid_set(chunk) + " " + items);
    };
    while (next < uids.size() && in_flight.size() < window)
        if (auto r = send_next(); !r) return r;
    while (!in_flight.empty()) {
        stream_->set_step(steps.front());
        auto r = read_response();
        if (!r) return fail(r.error());
        if (r->text.rfind("* ", 0) == 0) {
            if (starts_with_ci(r->text, "* BYE"))
                return fail(fail_msg(Error::Kind::unreachable, "server " + stream_->where() + " closed the session: " + r->text.substr(2)));
            std::string head = r->text.substr(0, 80);
            auto f = parse_fetch(*r);
            if (f && f->uid != 0 && f->body) {
                if (!sink(std::move(*f))) return ok();
            } else if (f) {
                net::log("source '" + account_.source + "': ignoring FETCH response without UID or body: " + head);
            }
            continue;
        }
        const std::string& tag = in_flight.front();
        if (r->text.rfind(tag + " ", 0) == 0) {
            std::string status = r->text.substr(tag.size() + 1);
            in_flight.pop_front();
            steps.pop_front();
            if (!starts_with_ci(status, "OK"))
                net::log("source '" + account_.source + "': UID FETCH partly refused: " + status);
            if (next < uids.size())
                if (auto s = send_next(); !s) return s;
        }
    }
    return ok();
}

Result<std::size_t> Client::delete_uids(const std::vector<std::uint32_t>& uids, std::uint32_t archived_upto) {
    if (uids.empty()) return std::size_t{0};
    // Commands stay short: a few thousand UIDs per STORE.
    constexpr std::size_t k_chunk = 2000;
    for (std::size_t i = 0; i < uids.size(); i += k_chunk) {
        std::vector<std::uint32_t> chunk(uids.begin() + static_cast<long>(i),
                                         uids.begin() + static_cast<long>(std::min(uids.size(), i + k_chunk)));
        if (auto r = run("UID STORE " + uid_set(chunk) + " +FLAGS.SILENT (\\Deleted)"); !r) return fail(r.error());
        if (has("UIDPLUS"))
            if (auto r = run("UID EXPUNGE " + uid_set(chunk)); !r) return fail(r.error());
    }
    if (has("UIDPLUS")) return uids.size();
    // Plain EXPUNGE removes every \Deleted message: only when all of them are ours.
    std::vector<Response> untagged;
    if (auto r = run("UID SEARCH DELETED", &untagged); !r) return fail(r.error());
    std::vector<std::uint32_t> flagged;
    for (auto& resp : untagged) {
        if (!starts_with_ci(resp.text, "* SEARCH")) continue;
        const char* p = resp.text.c_str() + 8;
        char* end;
        for (unsigned long v; (v = std::strtoul(p, &end, 10)), end != p; p = end) flagged.push_back(static_cast<std::uint32_t>(v));
    }
    for (auto u : flagged)
        if (u > archived_upto && !std::binary_search(uids.begin(), uids.end(), u)) {
            net::log("source '" + account_.source + "': server lacks UIDPLUS and other messages are flagged \\Deleted; "
                     "not expunging (archived messages stay flagged \\Deleted)");
            return std::size_t{0};
        }
    if (auto r = run("EXPUNGE"); !r) return fail(r.error());
    return uids.size();
}

void Client::logout() {
    if (!stream_) return;
    std::string tag = next_tag();
    if (send(tag, "LOGOUT")) {
        for (int i = 0; i < 4; ++i) {
            auto r = stream_->read_line(1 << 16);
            if (!r || r->rfind(tag, 0) == 0) break;
        }
    }
    stream_->close();
}

}  // namespace mv::ingest::imap
