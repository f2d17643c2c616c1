#include "query/parser.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <set>
#include <vector>

#include "index/document/builder.hpp"
#include "index/schema.hpp"
#include "index/text/fold.hpp"
#include "index/util/edit_distance.hpp"
#include "query/date_order.hpp"
#include "query/thread.hpp"

namespace mv::query {
namespace {

// ---- dates ----

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
    static const unsigned k_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : k_days[m - 1];
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

long to_long(std::string_view s) {
    long v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// Civil seconds (a wall-clock time written as if it were UTC) -> UTC seconds, in the local
// zone (DST included: mktime decides; a time in a DST gap moves forward).
std::int64_t local_to_utc(std::int64_t civil) {
    std::time_t t = static_cast<std::time_t>(civil);
    std::tm tm{};
    gmtime_r(&t, &tm);
    tm.tm_isdst = -1;
    return static_cast<std::int64_t>(std::mktime(&tm));
}

// UTC seconds -> civil seconds of the local zone.
std::int64_t utc_to_local_civil(std::int64_t utc) {
    std::time_t t = static_cast<std::time_t>(utc);
    std::tm tm{};
    localtime_r(&t, &tm);
    return utc + tm.tm_gmtoff;
}

// One date -> [first second, last second] of the unit it names, in `zone` (a trailing "z":
// UTC).
Result<Range> parse_one_date(std::string_view v, std::int64_t now, DateZone zone) {
    auto bad = [&] {
        return fail(Error::Kind::usage, "date \"" + std::string(v) +
                                            "\" is not YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH:MM, today, "
                                            "yesterday or Nd/Nw/Ny (add Z for UTC: 2023-05-01Z)");
    };
    const std::int64_t day = 86400;
    if (v == "now") return Range{now, now};
    bool utc = zone == DateZone::utc;
    if (v.size() > 1 && v.back() == 'z') {
        utc = true;
        v.remove_suffix(1);
    }
    // civil [lo, hi_end) -> UTC [lo, hi]
    auto span = [&](std::int64_t lo, std::int64_t hi_end) {
        if (utc) return Range{lo, hi_end - 1};
        return Range{local_to_utc(lo), local_to_utc(hi_end) - 1};
    };
    if (v == "today" || v == "yesterday") {
        const std::int64_t civil_now = utc ? now : utc_to_local_civil(now);
        std::int64_t start = civil_now - ((civil_now % day) + day) % day;
        if (v == "yesterday") start -= day;
        return span(start, start + day);
    }
    if (v.size() >= 2 && all_digits(v.substr(0, v.size() - 1))) {
        char unit = v.back();
        std::int64_t n = to_long(v.substr(0, v.size() - 1));
        std::int64_t secs = unit == 'd' ? day : unit == 'w' ? 7 * day : unit == 'y' ? 365 * day : 0;
        if (secs) return Range{now - n * secs, now};
    }
    std::string s(v);
    if (s.size() == 8 && all_digits(s)) s = s.substr(0, 4) + "-" + s.substr(4, 2) + "-" + s.substr(6, 2);
    std::string time_part;
    if (auto t = s.find('t'); t != std::string::npos) {
        time_part = s.substr(t + 1);
        s.resize(t);
    }
    std::vector<std::string_view> parts;
    std::string_view rest = s;
    while (true) {
        auto dash = rest.find('-');
        parts.push_back(rest.substr(0, dash));
        if (dash == std::string_view::npos) break;
        rest.remove_prefix(dash + 1);
    }
    if (parts.empty() || parts.size() > 3 || parts[0].size() != 4) return bad();
    for (auto p : parts)
        if (!all_digits(p) || p.size() > 4) return bad();
    std::int64_t y = to_long(parts[0]);
    unsigned m1 = 1, m2 = 12;
    if (parts.size() >= 2) {
        if (parts[1].size() > 2) return bad();
        m1 = m2 = static_cast<unsigned>(to_long(parts[1]));
        if (m1 < 1 || m1 > 12) return bad();
    }
    unsigned d1 = 1, d2 = days_in_month(y, m2);
    if (parts.size() == 3) {
        if (parts[2].size() > 2) return bad();
        d1 = d2 = static_cast<unsigned>(to_long(parts[2]));
        if (d1 < 1 || d1 > days_in_month(y, m1)) return bad();
    }
    std::int64_t lo = days_from_civil(y, m1, d1) * day;
    std::int64_t hi_end = days_from_civil(y, m2, d2) * day + day;
    if (!time_part.empty()) {
        if (parts.size() != 3) return bad();
        unsigned hh = 0, mm = 0, ss = 0;
        int fields = 0;
        std::string_view tp = time_part;
        std::vector<std::string_view> tparts;
        while (true) {
            auto c = tp.find(':');
            tparts.push_back(tp.substr(0, c));
            if (c == std::string_view::npos) break;
            tp.remove_prefix(c + 1);
        }
        for (auto p : tparts)
            if (!all_digits(p) || p.size() > 2) return bad();
        fields = static_cast<int>(tparts.size());
        if (fields < 1 || fields > 3) return bad();
        hh = static_cast<unsigned>(to_long(tparts[0]));
        if (fields >= 2) mm = static_cast<unsigned>(to_long(tparts[1]));
        if (fields == 3) ss = static_cast<unsigned>(to_long(tparts[2]));
        if (hh > 23 || mm > 59 || ss > 60) return bad();
        lo += hh * 3600 + mm * 60 + ss;
        const std::int64_t lo_utc = utc ? lo : local_to_utc(lo);
        return Range{lo_utc, lo_utc + (fields == 1 ? 3599 : fields == 2 ? 59 : 0)};
    }
    return span(lo, hi_end);
}

std::pair<std::string_view, std::string_view> split_range(std::string_view v, bool& is_range) {
    auto dots = v.find("..");
    is_range = dots != std::string_view::npos;
    if (!is_range) return {v, {}};
    return {v.substr(0, dots), v.substr(dots + 2)};
}

Result<std::int64_t> parse_size(std::string_view v) {
    auto bad = [&] {
        return fail(Error::Kind::usage, "size \"" + std::string(v) + "\" is not a number with an optional unit (k, m, g)");
    };
    std::size_t i = 0;
    while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) || v[i] == '.')) ++i;
    if (i == 0) return bad();
    std::string num(v.substr(0, i));
    std::string_view unit = v.substr(i);
    double n = 0;
    try {
        std::size_t used = 0;
        n = std::stod(num, &used);
        if (used != num.size()) return bad();
    } catch (...) {
        return bad();
    }
    double mult = 1;
    if (unit.empty() || unit == "b") mult = 1;
    else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1024.0;
    else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1024.0 * 1024;
    else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1024.0 * 1024 * 1024;
    else return bad();
    return static_cast<std::int64_t>(std::llround(n * mult));
}

// ---- field processors ----

// A field processor must not throw: an exception out of a FieldProcessor leaks the query
// parser's state inside Xapian (168 bytes a bad `date:`, found by fuzz_query; a slow leak in
// `serve`). A processor notes the first problem here and returns MatchNothing; parse() reports
// it once parse_query has returned.
thread_local std::string* t_field_error = nullptr;

Xapian::Query field_error(std::string message) {
    if (t_field_error && t_field_error->empty()) *t_field_error = std::move(message);
    return Xapian::Query::MatchNothing;
}

class DateProcessor : public Xapian::FieldProcessor {
  public:
    DateProcessor(std::int64_t now, DateZone zone, const Xapian::Database* in_memory, bool* depends_on_now)
        : now_(now), zone_(zone), db_(in_memory), depends_on_now_(depends_on_now) {}
    Xapian::Query operator()(const std::string& value) override {
        auto r = parse_date_range(value, now_, zone_);
        if (!r) return field_error(r.error().message);
        if (depends_on_now_ && !*depends_on_now_) {
            // Relative (today, 7d, now): the same text 400 days and a bit later means other dates.
            auto later = parse_date_range(value, now_ + 400 * 86400 + 3671, zone_);
            if (!later || later->lo != r->lo || later->hi != r->hi) *depends_on_now_ = true;
        }
        if (db_) {
            std::optional<double> lo, hi;
            if (r->lo) lo = double(*r->lo);
            if (r->hi) hi = double(*r->hi);
            return (r->lo || r->hi) ? DateOrder::of(*db_)->range(lo, hi) : match_all();
        }
        return value_range(schema::k_slot_date, *r);
    }
    static Xapian::Query value_range(unsigned slot, const Range& r) {
        if (r.lo && r.hi)
            return Xapian::Query(Xapian::Query::OP_VALUE_RANGE, slot, Xapian::sortable_serialise(double(*r.lo)),
                                 Xapian::sortable_serialise(double(*r.hi)));
        if (r.lo) return Xapian::Query(Xapian::Query::OP_VALUE_GE, slot, Xapian::sortable_serialise(double(*r.lo)));
        if (r.hi) return Xapian::Query(Xapian::Query::OP_VALUE_LE, slot, Xapian::sortable_serialise(double(*r.hi)));
        return match_all();
    }

  private:
    std::int64_t now_;
    DateZone zone_;
    const Xapian::Database* db_;
    bool* depends_on_now_;
};

class SizeProcessor : public Xapian::FieldProcessor {
  public:
    Xapian::Query operator()(const std::string& value) override {
        auto r = parse_size_range(value);
        if (!r) return field_error(r.error().message);
        return DateProcessor::value_range(schema::k_slot_size, *r);
    }
};

class HasProcessor : public Xapian::FieldProcessor {
  public:
    Xapian::Query operator()(const std::string& value) override {
        if (value == "attachment" || value == "attachments")
            return Xapian::Query(std::string(schema::prefix_of("has")) + "attachment");
        return field_error("has:" + value + " is unknown; has: takes \"attachment\"");
    }
};

class MsgidProcessor : public Xapian::FieldProcessor {
  public:
    Xapian::Query operator()(const std::string& value) override {
        std::string v = value;
        if (!v.empty() && v.front() == '<') v.erase(0, 1);
        if (!v.empty() && v.back() == '>') v.pop_back();
        return Xapian::Query(std::string(schema::prefix_of("msgid")) + v);
    }
};

// is:broken, is:removed, and the flags sources report: is:unread (no location seen),
// is:read/seen, is:flagged/starred, is:answered/replied, is:draft, is:deleted/trashed,
// is:passed/forwarded.
Xapian::Query flag_query(const std::string& name) {
    if (name == "unread")
        return Xapian::Query(Xapian::Query::OP_AND_NOT, match_all(),
                             Xapian::Query(std::string(schema::k_flag_prefix) + "seen"));
    return Xapian::Query(std::string(schema::k_flag_prefix) + name);
}

class IsProcessor : public Xapian::FieldProcessor {
  public:
    Xapian::Query operator()(const std::string& value) override {
        if (value == "broken") return Xapian::Query(std::string(schema::k_broken_term));
        if (value == "removed") return Xapian::Query(std::string(schema::k_removed_term));
        static const std::pair<const char*, const char*> k_aliases[] = {
            {"unread", "unread"}, {"read", "seen"},      {"seen", "seen"},         {"flagged", "flagged"},
            {"starred", "flagged"}, {"answered", "answered"}, {"replied", "answered"}, {"draft", "draft"},
            {"deleted", "deleted"}, {"trashed", "deleted"},   {"passed", "passed"},    {"forwarded", "passed"}};
        for (const auto& [alias, flag] : k_aliases)
            if (value == alias) return flag_query(flag);
        return field_error("is:" + value +
                           " is unknown; is: takes broken, removed, unread, read, flagged, answered, "
                           "draft, deleted, passed (or flag:NAME for any flag)");
    }
};

class FlagProcessor : public Xapian::FieldProcessor {
  public:
    Xapian::Query operator()(const std::string& value) override { return flag_query(index::flag_name(value)); }
};

class ThreadProcessor : public Xapian::FieldProcessor {
  public:
    explicit ThreadProcessor(Xapian::Database db) : db_(std::move(db)) {}
    Xapian::Query operator()(const std::string& value) override {
        auto q = thread_query(db_, value);
        if (!q) return field_error(q.error().message);
        return *q;
    }

  private:
    Xapian::Database db_;
};

// A query the pre-pass built (address patterns), put back where its placeholder stands.
class PlaceholderProcessor : public Xapian::FieldProcessor {
  public:
    explicit PlaceholderProcessor(Xapian::Query q) : q_(std::move(q)) {}
    Xapian::Query operator()(const std::string&) override { return q_; }

  private:
    Xapian::Query q_;
};

// ---- the pre-pass: validation with columns, folding, -word as NOT ----

bool is_operator(std::string_view w) { return w == "AND" || w == "OR" || w == "NOT" || w == "XOR"; }

// "and", "Or", ...: the operator in upper case, else "". Like notmuch and mu (Xapian's
// FLAG_BOOLEAN_ANY_CASE), lower-case operators are operators; unlike them, one that cannot
// be an operator where it stands (nothing on its left or right) is a word.
std::string any_case_operator(std::string_view w) {
    if (w.size() < 2 || w.size() > 3) return {};
    std::string u(w);
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return is_operator(u) ? u : std::string();
}

bool known_field(std::string_view name) {
    return schema::field(name) != nullptr || name == "date" || name == "size";
}

// The field a mistyped name was probably meant to be, or "".
std::string near_field(std::string_view name) {
    for (const auto& f : schema::k_fields)
        if (close_to(name, f.name)) return std::string(f.name);
    for (std::string_view f : {"date", "size"})
        if (close_to(name, f)) return std::string(f);
    return {};
}


bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

enum class Tok { word, op_binary, op_not, lparen, rparen };

Unexpected bad_query(std::size_t col, const std::string& what) {
    return fail(Error::Kind::usage, "bad query at column " + std::to_string(col + 1) + ": " + what);
}

struct Prepared {
    std::string text;   // what goes to Xapian::QueryParser
    bool match_all = false;
    // Queries the pre-pass built itself (address patterns), each behind its own boolean
    // prefix in `text` ("<name>:x"), so QueryParser combines them like any other term.
    std::vector<std::pair<std::string, Xapian::Query>> placeholders;
    std::vector<std::string> notices;
    // date: values that constrain every match: outside parentheses, not negated, and no
    // OR/XOR outside parentheses (Xapian ORs repeated date: filters, hence a union).
    std::vector<std::string> top_dates;
    bool top_or = false;
};

std::string leading_wildcard(std::string_view w) {
    std::string rest(w);
    while (!rest.empty() && rest.front() == '*') rest.erase(0, 1);
    return "\"" + std::string(w) + "\": a wildcard can only end a word (" + (rest.empty() ? "word" : rest) +
           "* finds words that begin with " + (rest.empty() ? "word" : rest) +
           "); a leading * is not supported (for addresses: from:*@example.org)";
}

// from:*@example.org (the domain), from:*@example.* (domains that begin so), from:alice@*
// and from:alice@ex* (addresses that begin so), on the field's address terms only.
Result<Xapian::Query> address_pattern(const schema::AddressField& f, std::string_view v, unsigned max_expansion) {
    auto unsupported = [&] {
        return fail(Error::Kind::usage, "address pattern \"" + std::string(v) +
                                            "\" is not supported; use *@domain, *@dom*, name@* or name@dom*");
    };
    const auto at = v.rfind('@');
    std::string_view local = v.substr(0, at), domain = v.substr(at + 1);
    auto star_only_at_end = [](std::string_view s) {
        auto p = s.find('*');
        return p == std::string_view::npos || p == s.size() - 1;
    };
    auto wildcard = [&](std::string prefix) {
        return Xapian::Query(Xapian::Query::OP_WILDCARD, prefix, max_expansion, Xapian::Query::WILDCARD_LIMIT_MOST_FREQUENT);
    };
    if (local == "*") {
        if (domain.empty() || domain == "*" || !star_only_at_end(domain)) return unsupported();
        if (domain.back() == '*') return wildcard(std::string(f.domain) + std::string(domain.substr(0, domain.size() - 1)));
        return Xapian::Query(std::string(f.domain) + std::string(domain));
    }
    if (local.empty() || local.find('*') != std::string_view::npos || domain.empty() || !star_only_at_end(domain) ||
        domain.back() != '*')
        return unsupported();
    return wildcard(std::string(f.address) + std::string(local) + "@" + std::string(domain.substr(0, domain.size() - 1)));
}

Result<Prepared> prepare(std::string_view q, unsigned max_expansion) {
    Prepared out;
    std::vector<std::pair<Tok, std::size_t>> toks;  // kind, column
    std::vector<std::size_t> open;
    std::size_t i = 0;
    const std::size_t n = q.size();
    auto emit_folded = [&](std::string_view s) { out.text += text::fold(s); };
    // Xapian's NOT binds looser than the implicit AND ("NOT a b" is NOT (a b)), so every
    // NOT is emitted as "(NOT operand)": each entry is the paren depth awaiting its ")".
    std::vector<std::size_t> pending_not;
    auto operand_done = [&] {
        while (!pending_not.empty() && pending_not.back() == open.size()) {
            out.text += ')';
            pending_not.pop_back();
        }
    };
    auto emit_not = [&] {
        out.text += "(NOT ";
        pending_not.push_back(open.size());
    };
    while (i < n) {
        char c = q[i];
        if (is_space(c)) {
            out.text += ' ';
            ++i;
            continue;
        }
        if (c == '(') {
            open.push_back(i);
            toks.push_back({Tok::lparen, i});
            out.text += '(';
            ++i;
            continue;
        }
        if (c == ')') {
            if (open.empty()) return bad_query(i, "\")\" without a matching \"(\"");
            if (!toks.empty() && toks.back().first == Tok::lparen) return bad_query(i, "empty parentheses");
            open.pop_back();
            toks.push_back({Tok::rparen, i});
            out.text += ')';
            operand_done();
            ++i;
            continue;
        }
        const std::size_t start = i;
        // -x means NOT x; +x means x (the default operator is AND anyway).
        bool negate = false;
        if ((c == '-' || c == '+') && i + 1 < n && !is_space(q[i + 1]) && q[i + 1] != ')') {
            negate = c == '-';
            ++i;
            if (negate) {
                toks.push_back({Tok::op_not, start});
                emit_not();
            }
            if (q[i] == '(') continue;  // NOT (group)
        }
        if (q[i] == '"') {
            auto close = q.find('"', i + 1);
            if (close == std::string_view::npos) return bad_query(i, "unterminated quote");
            out.text += '"';
            emit_folded(q.substr(i + 1, close - i - 1));
            out.text += '"';
            toks.push_back({Tok::word, start});
            operand_done();
            i = close + 1;
            continue;
        }
        // field:value ?
        std::size_t j = i;
        if (j < n && std::isalpha(static_cast<unsigned char>(q[j]))) {
            while (j < n && (std::isalnum(static_cast<unsigned char>(q[j])) || q[j] == '_' || q[j] == '-')) ++j;
            const bool colon = j < n && q[j] == ':' && !(j + 1 < n && q[j + 1] == '/');
            const bool value_follows = j + 1 < n && !is_space(q[j + 1]) && q[j + 1] != ')';
            const std::string name = colon ? text::fold(q.substr(i, j - i)) : std::string();
            // "Re: subject" and URLs are words; "name:value" is a field; "std::vector" or
            // "note:this", whose name is no field, are words too (as notmuch and mu do).
            if (colon && !known_field(name) && value_follows) {
                if (auto near = near_field(name); !near.empty() && !(j + 1 < n && q[j + 1] == ':'))
                    out.notices.push_back("\"" + std::string(q.substr(i, j - i + 1)) +
                                          "\" is not a field, so it was searched as text (did you mean " + near + ":?)");
            } else if (colon && known_field(name)) {
                std::size_t v = j + 1;
                if (v >= n || is_space(q[v]) || q[v] == ')')
                    return bad_query(i, "field \"" + name + ":\" needs a value");
                out.text += name;
                out.text += ':';
                const bool top_date = name == "date" && open.empty() && !negate &&
                                      !(!toks.empty() && toks.back().first == Tok::op_not);
                if (q[v] == '"') {
                    auto close = q.find('"', v + 1);
                    if (close == std::string_view::npos) return bad_query(v, "unterminated quote");
                    out.text += '"';
                    emit_folded(q.substr(v + 1, close - v - 1));
                    out.text += '"';
                    if (top_date) out.top_dates.push_back(text::fold(q.substr(v + 1, close - v - 1)));
                    i = close + 1;
                } else if (q[v] == '(') {
                    const auto* f = schema::field(name);
                    if (!f || f->kind != schema::FieldKind::text)
                        return bad_query(v, "field \"" + name + ":\" takes one value, not a group");
                    i = v;  // the group is lexed as usual; Xapian applies the prefix to it
                    continue;
                } else {
                    std::size_t e = v;
                    while (e < n && !is_space(q[e]) && q[e] != ')' && q[e] != '(') ++e;
                    const std::string value = text::fold(q.substr(v, e - v));
                    const auto* af = schema::address_field(name);
                    if (af && value.find('*') != std::string::npos && value.find('@') != std::string::npos) {
                        auto pattern = address_pattern(*af, value, max_expansion);
                        if (!pattern) return bad_query(v, pattern.error().message);
                        out.text.resize(out.text.size() - name.size() - 1);
                        std::string ph = "xmvpattern";
                        for (std::size_t k = out.placeholders.size() + 1; k; k /= 26) ph += static_cast<char>('a' + k % 26);
                        out.text += ph + ":x";
                        out.placeholders.emplace_back(ph, std::move(*pattern));
                    } else {
                        const auto* f = schema::field(name);
                        if (f && f->kind == schema::FieldKind::text && value.size() > 1 && value.front() == '*')
                            return bad_query(v, leading_wildcard(value));
                        out.text += value;
                    }
                    if (top_date) out.top_dates.push_back(value);
                    i = e;
                }
                toks.push_back({Tok::word, start});
                operand_done();
                continue;
            }
        }
        // plain word (up to space, paren or quote)
        std::size_t e = i;
        while (e < n && !is_space(q[e]) && q[e] != '(' && q[e] != ')' && q[e] != '"') ++e;
        std::string_view w = q.substr(i, e - i);
        std::string op = negate ? std::string() : is_operator(w) ? std::string(w) : any_case_operator(w);
        if (!op.empty() && !is_operator(w)) {
            // A lower-case operator needs an operand on its right (and a binary one on its left).
            std::size_t k = e;
            while (k < n && is_space(q[k])) ++k;
            const bool right = k < n && q[k] != ')';
            const bool left = !toks.empty() && (toks.back().first == Tok::word || toks.back().first == Tok::rparen);
            if (!right || (op != "NOT" && !left)) op.clear();
        }
        if (!op.empty()) {
            toks.push_back({op == "NOT" ? Tok::op_not : Tok::op_binary, start});
            if ((op == "OR" || op == "XOR") && open.empty()) out.top_or = true;
            if (op == "NOT") emit_not();
            else out.text += op;
        } else {
            if (w.size() > 1 && w.front() == '*') return bad_query(i, leading_wildcard(w));
            toks.push_back({Tok::word, start});
            emit_folded(w);
            operand_done();
        }
        i = e;
    }
    if (!open.empty()) return bad_query(open.back(), "\"(\" is never closed");
    // Grammar: binary operators need operands on both sides; NOT needs one after it.
    auto is_operand_end = [](Tok t) { return t == Tok::word || t == Tok::rparen; };
    auto is_operand_start = [](Tok t) { return t == Tok::word || t == Tok::lparen || t == Tok::op_not; };
    std::size_t words = 0;
    for (std::size_t k = 0; k < toks.size(); ++k) {
        auto [t, col] = toks[k];
        if (t == Tok::word) ++words;
        if (t == Tok::op_binary) {
            std::string op(q.substr(col, q.find_first_of(" \t\r\n()\"", col) - col));
            if (k == 0 || !is_operand_end(toks[k - 1].first))
                return bad_query(col, op + " needs something to search for on its left");
            if (k + 1 == toks.size() || !is_operand_start(toks[k + 1].first))
                return bad_query(col, op + " needs something to search for on its right");
        } else if (t == Tok::op_not) {
            if (k + 1 == toks.size() || !is_operand_start(toks[k + 1].first))
                return bad_query(col, "NOT needs something to search for on its right");
        }
    }
    if (words == 0) return fail(Error::Kind::usage, "empty query (use * to match every message)");
    // "*" alone matches everything.
    std::string trimmed = out.text;
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.pop_back();
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.erase(0, 1);
    if (trimmed == "*") out.match_all = true;
    return out;
}

// The index holds a stem term Z<p><s> only where the stem differs from the word (see
// index/document/builder.hpp); a word that is its own stem is there as the exact term <p><s>.
// So every stem term of the query searches both, as one term (OP_SYNONYM keeps the ranking
// of a single term). QueryParser puts stems only under the boolean operators; phrases and
// NEAR hold exact terms, which stay as they are.
bool has_stem_term(const Xapian::Query& q) {
    for (auto t = q.get_unique_terms_begin(); t != q.get_terms_end(); ++t)
        if (!(*t).empty() && (*t)[0] == 'Z') return true;
    return false;
}

Xapian::Query with_exact_stems(const Xapian::Query& q) {
    using Q = Xapian::Query;
    if (!has_stem_term(q)) return q;
    const auto type = q.get_type();
    if (type == Q::LEAF_TERM) {
        const std::string term = *q.get_terms_begin();
        return Q(Q::OP_SYNONYM, Q(term), Q(term.substr(1)));
    }
    std::vector<Q> subs;
    for (std::size_t i = 0; i < q.get_num_subqueries(); ++i) subs.push_back(with_exact_stems(q.get_subquery(i)));
    if (is_plain_operator(type)) return Q(type, subs.begin(), subs.end());
    if (type == Q::OP_SCALE_WEIGHT) {
        // Xapian 1.4 has no accessor for the factor; its description is "Query(F * ...)".
        const std::string d = q.get_description();
        const double factor = std::strtod(d.c_str() + d.find('(') + 1, nullptr);
        return Q(Q::OP_SCALE_WEIGHT, subs.front(), factor);
    }
    return q;
}

// `q` without the terms no document has. A free word is 16 terms (stem and exact form in each
// of 8 fields) and most of them exist in no document (`kernel` in bcc, or a stem that equals
// the word); Xapian looks each one up in every shard on every match, and twice per search
// (statistics, then the posting list). One existence check here instead saves ~40 % of a
// search's term lookups on the bulk archive. Matches are unchanged: an absent term matches
// nothing, and MatchNothing in an operator means what it means there (Xapian drops it from
// OR/SYNONYM/XOR/MAX and the right side of AND_NOT/AND_MAYBE, and empties AND/FILTER).
// `changed` is set when the result differs from `q`.
// The number of documents of each term looked up goes to `freqs`.
Xapian::Query without_absent_terms(const Xapian::Query& q, const Xapian::Database& db, TermFreqs& freqs,
                                   bool& changed) {
    using Q = Xapian::Query;
    const auto type = q.get_type();
    if (type == Q::LEAF_TERM) {
        const std::string term = *q.get_terms_begin();
        if (term.empty()) return q;
        auto known = freqs.find(term);
        const Xapian::doccount n = known != freqs.end() ? known->second : (freqs[term] = db.get_termfreq(term));
        if (n > 0) return q;
        changed = true;
        return Q::MatchNothing;
    }
    if (type == Q::OP_PHRASE || type == Q::OP_NEAR) {
        // All of a phrase's words must be there; its window is kept by returning q itself.
        for (std::size_t i = 0; i < q.get_num_subqueries(); ++i) {
            bool sub_changed = false;
            if (without_absent_terms(q.get_subquery(i), db, freqs, sub_changed).get_type() == Q::LEAF_MATCH_NOTHING) {
                changed = true;
                return Q::MatchNothing;
            }
        }
        return q;
    }
    if (!is_plain_operator(type)) return q;  // wildcards, value ranges, posting sources, scaled weights
    std::vector<Q> subs;
    bool subs_changed = false;
    for (std::size_t i = 0; i < q.get_num_subqueries(); ++i)
        subs.push_back(without_absent_terms(q.get_subquery(i), db, freqs, subs_changed));
    if (!subs_changed) return q;
    changed = true;
    return Q(type, subs.begin(), subs.end());
}

Xapian::Query without_absent_terms(const Xapian::Query& q, const Xapian::Database& db, TermFreqs& freqs) {
    // Looked up in the order of the index's B-tree: a term next to the one before is mostly in
    // a block the table's cursor holds already (query order alternates prefixes, T C ZS S ZB B
    // XA..., and read two 8 KB blocks a term and shard: `cobalt` read 117 blocks a search, now 99).
    std::set<std::string> terms;
    for (auto t = q.get_unique_terms_begin(); t != q.get_unique_terms_end(); ++t)
        if (!(*t).empty() && !freqs.contains(*t)) terms.insert(*t);
    for (const auto& t : terms) freqs[t] = db.get_termfreq(t);
    bool changed = false;
    return without_absent_terms(q, db, freqs, changed);
}

// `q` with every `A AND (<all> AND_NOT B)` as `A AND_NOT B`: the parser makes a NOT after
// other words a "pure" NOT, which walks the list of every document to take B out of it; the
// words beside it already say which documents to look at. Same matches.
Xapian::Query without_pure_nots(const Xapian::Query& q) {
    using Q = Xapian::Query;
    const auto type = q.get_type();
    if (!is_plain_operator(type)) return q;
    std::vector<Q> subs;
    for (std::size_t i = 0; i < q.get_num_subqueries(); ++i) subs.push_back(without_pure_nots(q.get_subquery(i)));
    auto pure_not = [](const Q& sub) {
        return sub.get_type() == Q::OP_AND_NOT && sub.get_num_subqueries() == 2 &&
               sub.get_subquery(0).get_type() == Q::LEAF_MATCH_ALL;
    };
    if (type == Q::OP_FILTER && subs.size() >= 2 && pure_not(subs.front())) {
        // `(<all> AND_NOT b) FILTER f` (a NOT beside field filters): f without b, weightless
        // as the filter was.
        const Q filters = subs.size() == 2 ? subs[1] : Q(Q::OP_AND, subs.begin() + 1, subs.end());
        return Q(Q::OP_AND_NOT, Q(Q::OP_SCALE_WEIGHT, filters, 0.0), subs.front().get_subquery(1));
    }
    std::vector<Q> kept, excluded;
    for (const Q& sub : subs) {
        if (type == Q::OP_AND && pure_not(sub)) excluded.push_back(sub.get_subquery(1));
        else kept.push_back(sub);
    }
    if (excluded.empty() || kept.empty()) return Q(type, subs.begin(), subs.end());
    const Q positive = kept.size() == 1 ? kept.front() : Q(Q::OP_AND, kept.begin(), kept.end());
    const Q negative = excluded.size() == 1 ? excluded.front() : Q(Q::OP_OR, excluded.begin(), excluded.end());
    return Q(Q::OP_AND_NOT, positive, negative);
}

// `(a AND_NOT b) FILTER f` as `(a FILTER f) AND_NOT b`: the same matches and weights (neither
// a filter nor the excluded side weighs), but Xapian joins a's words and f into one AND and
// orders them by size, where a FILTER outside an AND_NOT is checked after a's AND (2-5 % on the
// bulk archive for `from:ralf patch date:2003..2006 NOT subject:git`, `kernel date:2005 NOT panic`).
Xapian::Query with_filters_inside(const Xapian::Query& q) {
    using Q = Xapian::Query;
    if (q.get_type() != Q::OP_FILTER || q.get_num_subqueries() < 2) return q;
    const Q left = q.get_subquery(0);
    if (left.get_type() != Q::OP_AND_NOT || left.get_num_subqueries() < 2) return q;
    std::vector<Q> filtered{left.get_subquery(0)};
    for (std::size_t i = 1; i < q.get_num_subqueries(); ++i) filtered.push_back(q.get_subquery(i));
    std::vector<Q> parts{with_filters_inside(Q(Q::OP_FILTER, filtered.begin(), filtered.end()))};
    for (std::size_t i = 1; i < left.get_num_subqueries(); ++i) parts.push_back(left.get_subquery(i));
    return Q(Q::OP_AND_NOT, parts.begin(), parts.end());
}

}  // namespace

Result<Range> parse_date_range(std::string_view value, std::int64_t now, DateZone zone) {
    bool is_range = false;
    auto [a, b] = split_range(value, is_range);
    if (!is_range) return parse_one_date(a, now, zone);
    if (a.empty() && b.empty())
        return fail(Error::Kind::usage, "date range \"..\" needs a start or an end");
    Range r;
    if (!a.empty()) {
        auto lo = parse_one_date(a, now, zone);
        if (!lo) return lo;
        r.lo = lo->lo;
    }
    if (!b.empty()) {
        auto hi = parse_one_date(b, now, zone);
        if (!hi) return hi;
        r.hi = hi->hi;
    }
    if (r.lo && r.hi && *r.lo > *r.hi)
        return fail(Error::Kind::usage, "date range \"" + std::string(value) + "\" ends before it starts");
    return r;
}

Result<Range> parse_size_range(std::string_view value) {
    std::string_view v = value;
    Range r;
    auto one = [](std::string_view s) { return parse_size(s); };
    if (v.starts_with(">=") || v.starts_with("<=")) {
        auto x = one(v.substr(2));
        if (!x) return fail(x.error());
        (v[0] == '>' ? r.lo : r.hi) = *x;
        return r;
    }
    if (v.starts_with(">") || v.starts_with("<")) {
        auto x = one(v.substr(1));
        if (!x) return fail(x.error());
        if (v[0] == '>') r.lo = *x + 1;
        else r.hi = *x - 1;
        return r;
    }
    bool is_range = false;
    auto [a, b] = split_range(v, is_range);
    if (!is_range) {
        auto x = one(a);
        if (!x) return fail(x.error());
        return Range{*x, *x};
    }
    if (a.empty() && b.empty()) return fail(Error::Kind::usage, "size range \"..\" needs a start or an end");
    if (!a.empty()) {
        auto x = one(a);
        if (!x) return fail(x.error());
        r.lo = *x;
    }
    if (!b.empty()) {
        auto x = one(b);
        if (!x) return fail(x.error());
        r.hi = *x;
    }
    if (r.lo && r.hi && *r.lo > *r.hi)
        return fail(Error::Kind::usage, "size range \"" + std::string(value) + "\" ends before it starts");
    return r;
}

Result<ParsedQuery> parse(std::string_view text, const Xapian::Database& db, const ParseOptions& options) {
    auto prepared = prepare(text, options.max_wildcard_expansion);
    if (!prepared) return fail(prepared.error());
    if (prepared->match_all) return ParsedQuery{match_all(), {}, {}};
    std::int64_t now = options.now ? options.now : static_cast<std::int64_t>(std::time(nullptr));
    ParsedQuery out;
    out.notices = prepared->notices;
    if (!prepared->top_or && !prepared->top_dates.empty()) {
        bool first = true;
        for (const auto& v : prepared->top_dates) {
            auto r = parse_date_range(v, now, options.zone);
            if (!r) break;  // the field processor reports it
            if (first) out.date = *r;
            else {
                out.date.lo = (out.date.lo && r->lo) ? std::optional(std::min(*out.date.lo, *r->lo)) : std::nullopt;
                out.date.hi = (out.date.hi && r->hi) ? std::optional(std::max(*out.date.hi, *r->hi)) : std::nullopt;
            }
            first = false;
        }
    }
    try {
        Xapian::QueryParser qp;
        qp.set_database(db);
        qp.set_default_op(Xapian::Query::OP_AND);
        if (!options.stemmer.empty() && options.stemmer != "none") {
            qp.set_stemmer(Xapian::Stem(options.stemmer));
            qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
        } else {
            qp.set_stemming_strategy(Xapian::QueryParser::STEM_NONE);
        }
        qp.set_max_expansion(options.max_wildcard_expansion, Xapian::Query::WILDCARD_LIMIT_MOST_FREQUENT);
        // Free words search the body and every in_free_text field under its own prefix.
        for (const auto& f : schema::k_fields)
            if (f.in_free_text || f.name == "body") qp.add_prefix("", std::string(f.prefix));
        for (const auto& f : schema::k_fields) {
            std::string name(f.name), prefix(f.prefix);
            if (name == "has") qp.add_boolean_prefix(name, (new HasProcessor)->release());
            else if (name == "msgid") qp.add_boolean_prefix(name, (new MsgidProcessor)->release());
            else if (name == "is") qp.add_boolean_prefix(name, (new IsProcessor)->release());
            else if (name == "flag") qp.add_boolean_prefix(name, (new FlagProcessor)->release());
            else if (name == "thread") qp.add_boolean_prefix(name, (new ThreadProcessor(db))->release());
            else if (f.kind == schema::FieldKind::text) qp.add_prefix(name, prefix);
            else qp.add_boolean_prefix(name, prefix);
        }
        qp.add_boolean_prefix("date", (new DateProcessor(now, options.zone, options.dates_in_memory ? &db : nullptr, &out.depends_on_now))->release());
        for (const auto& [name, q] : prepared->placeholders)
            qp.add_boolean_prefix(name, (new PlaceholderProcessor(q))->release());
        qp.add_boolean_prefix("size", (new SizeProcessor)->release());
        const unsigned flags = Xapian::QueryParser::FLAG_BOOLEAN | Xapian::QueryParser::FLAG_PHRASE |
                               Xapian::QueryParser::FLAG_WILDCARD | Xapian::QueryParser::FLAG_PURE_NOT |
                               Xapian::QueryParser::FLAG_CJK_NGRAM;
        std::string field_problem;
        t_field_error = &field_problem;
        struct Reset {
            ~Reset() { t_field_error = nullptr; }
        } reset;
        const Xapian::Query parsed = qp.parse_query(prepared->text, flags);
        out.query =
            without_absent_terms(with_filters_inside(without_pure_nots(with_exact_stems(parsed))), db, out.term_freqs);
        if (!field_problem.empty()) return fail(Error::Kind::usage, "bad query: " + field_problem);
        return out;
    } catch (const Xapian::QueryParserError& e) {
        return fail(Error::Kind::usage, "bad query: " + e.get_msg());
    } catch (const Xapian::InvalidArgumentError& e) {
        return fail(Error::Kind::usage, "bad query: " + e.get_msg());
    } catch (const Xapian::Error& e) {
        // Damage (parsing looks terms up): the caller leaves the damaged shards out and retries.
        if (index::is_index_damage(e)) throw;
        return fail(Error::Kind::io, "query: " + e.get_msg());
    }
}

Result<Xapian::Query> parse_query(std::string_view text, const Xapian::Database& db, const ParseOptions& options) {
    auto p = parse(text, db, options);
    if (!p) return fail(p.error());
    return std::move(p->query);
}

}  // namespace mv::query
