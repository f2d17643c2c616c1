#include "query/search.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>

#include "index/schema.hpp"
#include "index/util/json_text.hpp"
#include "query/access.hpp"
#include "query/date_order.hpp"
#include "query/thread.hpp"

namespace mv::query {

Result<Sort> parse_sort(std::string_view s) {
    if (s == "newest") return Sort::newest;
    if (s == "oldest") return Sort::oldest;
    if (s == "relevance") return Sort::relevance;
    return fail(Error::Kind::usage, "--sort " + std::string(s) + ": use newest, oldest or relevance");
}

namespace {

void configure(Xapian::Enquire& enquire, Sort sort) {
    switch (sort) {
        case Sort::newest:
            enquire.set_weighting_scheme(Xapian::BoolWeight());
            enquire.set_sort_by_value(schema::k_slot_date, true);
            enquire.set_docid_order(Xapian::Enquire::DESCENDING);
            break;
        case Sort::oldest:
            enquire.set_weighting_scheme(Xapian::BoolWeight());
            enquire.set_sort_by_value(schema::k_slot_date, false);
            enquire.set_docid_order(Xapian::Enquire::ASCENDING);
            break;
        case Sort::relevance:
            enquire.set_sort_by_relevance_then_value(schema::k_slot_date, true);
            break;
    }
}

}  // namespace

// Newest/oldest first over many matches: sorting every match by date costs a value
// lookup per match. Instead, search a date window at the end the sort starts from, sized
// from the match estimate, and widen it until it holds offset+limit matches. Exact: every
// match inside the window sorts before every match outside it (ties at the edge are inside).
// Returns the hits and the estimated number of matches of the whole query.
// `dates` bounds the matches' dates where the query itself says so (date: terms).
//
// With `in_memory` (a long-running process) the window is a number of documents counted from
// the sorting end of query/date_order.hpp, which costs what it holds, and the matches are
// put in order by the dates in memory: Xapian's sort by value reads the date value stream
// block by block (on the 83k-message bulk archive ~370 blocks of 8 KiB per query, copied
// from the page cache: most of a search's CPU in `serve`). Otherwise a date span read through
// the date values of every document, tried only where a full sort costs more.

namespace {

std::vector<Xapian::docid> ids_of(const Xapian::MSet& m) {
    std::vector<Xapian::docid> ids;
    ids.reserve(m.size());
    for (auto it = m.begin(); it != m.end(); ++it) ids.push_back(*it);
    return ids;
}

// Every match of `q`, unordered (no weights, no values read).
std::vector<Xapian::docid> all_ids(const Xapian::Database& db, const Xapian::Query& q) {
    Xapian::Enquire e(db);
    e.set_query(q);
    e.set_weighting_scheme(Xapian::BoolWeight());
    return ids_of(e.get_mset(0, std::max<Xapian::doccount>(db.get_doccount(), 1)));
}

// The number of documents of `term`: from the parser's look-ups (`known`) if it made one.
double term_freq(const Xapian::Database& db, const TermFreqs* known, const std::string& term) {
    if (known)
        if (auto it = known->find(term); it != known->end()) return double(it->second);
    return double(db.get_termfreq(term));
}

// The terms of a query that is nothing but terms joined by OR or SYNONYM (a free word, from:x,
// one stem and its word): its matches are the union of their posting lists. nullopt otherwise.
std::optional<std::vector<std::string>> union_terms(const Xapian::Query& q) {
    using Q = Xapian::Query;
    std::vector<std::string> terms;
    auto walk = [&](auto&& self, const Q& sub) -> bool {
        const auto type = sub.get_type();
        if (type == Q::LEAF_TERM) {
            const std::string term = *sub.get_terms_begin();
            if (term.empty()) return false;
            terms.push_back(term);
            return true;
        }
        if (type != Q::OP_OR && type != Q::OP_SYNONYM) return false;
        for (std::size_t i = 0; i < sub.get_num_subqueries(); ++i)
            if (!self(self, sub.get_subquery(i))) return false;
        return true;
    };
    if (!walk(walk, q) || terms.empty()) return std::nullopt;
    return terms;
}

// Every document of the union of `terms`' posting lists, read directly (about 15 ns a posting
// against 50-110 ns a match through Xapian's matcher), each once.
std::vector<Xapian::docid> union_of_postings(const Xapian::Database& db, const std::vector<std::string>& terms) {
    std::vector<Xapian::docid> ids;
    if (terms.size() == 1) {
        for (auto it = db.postlist_begin(terms.front()); it != db.postlist_end(terms.front()); ++it) ids.push_back(*it);
        return ids;
    }
    std::vector<std::uint64_t> seen(std::size_t(db.get_lastdocid()) / 64 + 1, 0);
    for (const auto& t : terms)
        for (auto it = db.postlist_begin(t); it != db.postlist_end(t); ++it) {
            const Xapian::docid id = *it;
            std::uint64_t& word = seen[id / 64];
            const std::uint64_t bit = std::uint64_t(1) << (id % 64);
            if (!(word & bit)) ids.push_back(id);
            word |= bit;
        }
    return ids;
}

// `ids` [first, first+count) in date order as Xapian sorts by value: newest first with ties
// by docid descending, oldest first with ties ascending; no date sorts as the oldest.
std::vector<Xapian::docid> page_by_date(std::vector<Xapian::docid> ids, const DateOrder& order, bool newest,
                                        Xapian::doccount first, Xapian::doccount count) {
    auto key = [&](Xapian::docid id) {
        double d = order.date_of(id);
        return std::isnan(d) ? -std::numeric_limits<double>::infinity() : d;
    };
    std::vector<std::pair<double, Xapian::docid>> keyed;
    keyed.reserve(ids.size());
    for (auto id : ids) keyed.emplace_back(key(id), id);
    auto before = [newest](const std::pair<double, Xapian::docid>& a, const std::pair<double, Xapian::docid>& b) {
        return newest ? a > b : a < b;
    };
    const std::size_t end = std::min<std::size_t>(keyed.size(), std::size_t(first) + count);
    std::vector<Xapian::docid> out;
    if (first >= end) return out;
    std::partial_sort(keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(end), keyed.end(), before);
    for (std::size_t i = first; i < end; ++i) out.push_back(keyed[i].second);
    return out;
}

}  // namespace

std::optional<MatchGuess> guess_matches(const Xapian::Database& db, const Xapian::Query& q, const TermFreqs* known) {
    using Q = Xapian::Query;
    const double n = double(db.get_doccount());
    std::vector<MatchGuess> subs;
    const auto type = q.get_type();
    switch (type) {
        case Q::LEAF_MATCH_NOTHING:
            return MatchGuess{};
        case Q::LEAF_MATCH_ALL:
            return MatchGuess{n, n, n};
        case Q::LEAF_TERM: {
            const std::string term = *q.get_terms_begin();
            if (term.empty()) return MatchGuess{n, n, n};
            const double tf = term_freq(db, known, term);
            return MatchGuess{tf, tf, tf};
        }
        case Q::LEAF_POSTING_SOURCE: {
            // A date: range in memory knows its documents (query/date_order.cpp); Xapian 1.4
            // gives no access to a query's source but through its description.
            const std::string d = q.get_description();
            const std::string tag = "DateRangeSource(";
            const auto at = d.find(tag);
            if (at == std::string::npos) return std::nullopt;
            const double docs = double(std::strtoull(d.c_str() + at + tag.size(), nullptr, 10));
            return MatchGuess{docs, docs, docs};
        }
        case Q::OP_WILDCARD: {
            // Every term that begins with the pattern, as Xapian expands it (beyond its limit it
            // keeps the most frequent: the bounds still hold, the estimate is a little high).
            // Xapian 1.4 gives the pattern only in the description: "Query(WILDCARD OR Fpat)".
            const std::string d = q.get_description();
            const std::string head = "Query(WILDCARD ";
            const auto space = d.starts_with(head) ? d.find(' ', head.size()) : std::string::npos;
            if (space == std::string::npos || d.back() != ')') return std::nullopt;
            const std::string pattern = d.substr(space + 1, d.size() - space - 2);
            if (pattern.empty()) return std::nullopt;
            for (auto it = db.allterms_begin(pattern); it != db.allterms_end(pattern); ++it) {
                const double tf = double(it.get_termfreq());
                subs.push_back(MatchGuess{tf, tf, tf});
            }
            if (subs.empty()) return MatchGuess{};
            break;
        }
        default:
            if (!is_plain_operator(type) && type != Q::OP_PHRASE && type != Q::OP_NEAR && type != Q::OP_SCALE_WEIGHT)
                return std::nullopt;  // value ranges, other posting sources
            for (std::size_t i = 0; i < q.get_num_subqueries(); ++i) {
                auto g = guess_matches(db, q.get_subquery(i), known);
                if (!g) return std::nullopt;
                subs.push_back(*g);
            }
            if (subs.empty()) return MatchGuess{};
            break;
    }
    if (n <= 0) return MatchGuess{};
    MatchGuess g = subs.front();
    for (std::size_t i = 1; i < subs.size(); ++i) {
        const MatchGuess& s = subs[i];
        switch (type) {
            case Q::OP_OR:
            case Q::OP_SYNONYM:
            case Q::OP_MAX:
            case Q::OP_WILDCARD:  // either: independent, at least the larger, at most both
                g = {g.estimate + s.estimate - g.estimate * s.estimate / n, std::max(g.lower, s.lower),
                     std::min(n, g.upper + s.upper)};
                break;
            case Q::OP_XOR:
                g = {g.estimate + s.estimate - 2 * g.estimate * s.estimate / n, 0, std::min(n, g.upper + s.upper)};
                break;
            case Q::OP_AND_NOT:  // the left side without the right
                g = {g.estimate * (1 - s.estimate / n), std::max(0.0, g.lower - s.upper), g.upper};
                break;
            case Q::OP_AND_MAYBE:  // the left side
                break;
            case Q::OP_PHRASE:
            case Q::OP_NEAR:  // both, and then the positions: none need to fit
            default:          // AND, FILTER: both
                g = {g.estimate * s.estimate / n, std::max(0.0, g.lower + s.lower - n), std::min(g.upper, s.upper)};
                break;
        }
    }
    if (type == Q::OP_PHRASE || type == Q::OP_NEAR) g = {g.estimate / 2, 0, g.upper};
    g.estimate = std::clamp(g.estimate, g.lower, g.upper);
    return g;
}

SortedMatches sorted_matches(const Xapian::Database& db, const Xapian::Query& q, const Range& dates, Sort sort,
                             Xapian::doccount first, Xapian::doccount count, Xapian::doccount check_at_least,
                             bool* exact, bool in_memory, Xapian::doccount collect_up_to, const TermFreqs* known) {
    // The number of matches, without the sort (with a sort by value Xapian reads the value of
    // every match it counts). Counting is exact where Xapian knows the bounds meet, or (with
    // check_at_least) where there are at most that many: counting more walks every match of a
    // common word, 11-28 ms for `kernel` on the bulk archive instead of 0.3 ms.
    const double need = double(first) + double(count);
    const bool ordered_in_memory = in_memory && sort != Sort::relevance && count > 0;
    if (ordered_in_memory && collect_up_to > 0) {
        // A query of terms only, with few postings: its posting lists read directly, every match
        // ordered in memory. Windows at the sorting end cost more where the matches lie away
        // from it (from:ralf on the bulk archive: 8,340 postings, mostly 2003-2011, three
        // windows that find nothing, then every match: 1.0 ms in-process, this 0.3 ms).
        if (auto terms = union_terms(q)) {
            double postings = 0;
            for (const auto& t : *terms) postings += term_freq(db, known, t);
            if (postings <= 5.0 * double(collect_up_to)) {
                auto ids = union_of_postings(db, *terms);
                if (exact) *exact = true;
                const auto n = static_cast<Xapian::doccount>(ids.size());
                return SortedMatches{page_by_date(std::move(ids), *DateOrder::of(db), sort == Sort::newest, first, count), n};
            }
        }
    }
    // The number of matches, estimated and bounded, from the terms' document counts in memory
    // (nothing read when the parser looked them up), else from Xapian.
    std::optional<MatchGuess> guess;
    if (ordered_in_memory) guess = guess_matches(db, q, known);
    Xapian::Enquire counting(db);
    counting.set_query(q);
    counting.set_weighting_scheme(Xapian::BoolWeight());
    Xapian::doccount est = 0, lower = 0, upper = 0;
    auto ask_xapian = [&](Xapian::doccount at_least) {
        const Xapian::MSet probe = counting.get_mset(0, 0, at_least);
        est = probe.get_matches_estimated();
        lower = probe.get_matches_lower_bound();
        upper = probe.get_matches_upper_bound();
    };
    if (guess) {
        est = static_cast<Xapian::doccount>(std::llround(guess->estimate));
        lower = static_cast<Xapian::doccount>(std::llround(guess->lower));
        upper = static_cast<Xapian::doccount>(std::llround(guess->upper));
    } else {
        ask_xapian(0);
    }
    // In memory, few matches are collected whole below (an exact count comes with them), so
    // counting them first would only walk them twice (a phrase's position checks, twice).
    // Collecting every match costs 50-110 ns each; up to a few thousand that is less than a
    // window's second opening of the query's terms, and a window misses when the matches lie
    // away from the sorting end (from:ralf, mostly 2003-2011 on the bulk archive).
    const bool collect_all = ordered_in_memory && (est < 2 * need || est <= collect_up_to || upper <= collect_up_to);
    if (!collect_all && check_at_least > 0 && lower != upper && (est <= check_at_least || upper <= check_at_least))
        ask_xapian(check_at_least);
    const bool counted = lower == upper;
    if (exact) *exact = counted;
    Xapian::Enquire enquire(db);
    enquire.set_query(q);
    configure(enquire, sort);
    auto plain = [&] {
        // A full sort walks every match: unless the probe counted exactly, its estimate is better.
        Xapian::MSet m = enquire.get_mset(first, count);
        if (counted) return SortedMatches{ids_of(m), est};
        if (exact && m.get_matches_lower_bound() == m.get_matches_upper_bound()) *exact = true;
        return SortedMatches{ids_of(m), m.get_matches_estimated()};
    };
    if (sort == Sort::relevance || count == 0) return plain();
    auto windowed = [&](const Xapian::Query& bound) {
        Xapian::Enquire w(db);
        w.set_query(Xapian::Query(Xapian::Query::OP_FILTER, q, bound));
        configure(w, sort);
        return w.get_mset(first, count);
    };
    if (in_memory) {
        auto order = DateOrder::of(db);
        const bool newest = sort == Sort::newest;
        // Every match, put in order here: exact, and the count comes with it.
        // Every match (of the window), through the order's collector where it can tell the shards.
        auto collect = [&](const std::optional<DateOrder::Window>& window) {
            if (auto ids = order->matches(db, q, window, est)) return std::move(*ids);
            return all_ids(db, window ? Xapian::Query(Xapian::Query::OP_FILTER, q, order->range(window->lo, window->hi)) : q);
        };
        auto whole = [&] {
            auto ids = collect(std::nullopt);
            if (exact) *exact = true;
            const auto n = static_cast<Xapian::doccount>(ids.size());
            return SortedMatches{page_by_date(std::move(ids), *order, newest, first, count), n};
        };
        if (collect_all) return whole();
        std::optional<double> lo, hi;
        if (dates.lo) lo = double(*dates.lo);
        if (dates.hi) hi = double(*dates.hi);
        const double in_range = double(order->count(lo, hi));
        // Documents from the sorting end that should hold the needed matches four times over.
        double window = 4.0 * need * in_range / double(est);
        for (int attempt = 0; attempt < 3 && window < in_range; ++attempt) {
            auto edge = order->kth(static_cast<std::size_t>(window), newest, lo, hi);
            if (!edge) break;
            auto ids = collect(newest ? DateOrder::Window{edge, hi} : DateOrder::Window{lo, edge});
            const double found = double(ids.size());
            if (found >= need) return SortedMatches{page_by_date(std::move(ids), *order, newest, first, count), est};
            window *= found > 0 ? std::max(2.0, 2.0 * need / found) : 8.0;
        }
        return whole();
    }
    std::string lo_s = db.get_value_lower_bound(schema::k_slot_date);
    std::string hi_s = db.get_value_upper_bound(schema::k_slot_date);
    // A window that misses costs as much as the full sort, so try one only when the
    // matches are so many that a full sort is the expensive part (measured on the bulk corpus).
    const bool many = est >= db.get_doccount() / 4 || est >= 50000;
    if (est < 8 * need || !many || lo_s.empty() || hi_s.empty()) return plain();
    double lo = Xapian::sortable_unserialise(lo_s), hi = Xapian::sortable_unserialise(hi_s);
    if (dates.lo) lo = std::max(lo, double(*dates.lo));
    if (dates.hi) hi = std::min(hi, double(*dates.hi));
    if (hi < lo) return plain();
    const double span = hi - lo;
    double frac = std::min(1.0, 4.0 * need / est);
    // At most two windows: when the query's own dates lie far from the archive's end
    // (a date range in the query), a window finds little and a full sort is cheaper.
    for (int attempt = 0; attempt < 2 && frac < 1.0; ++attempt) {
        Xapian::Query bound =
            sort == Sort::newest
                ? Xapian::Query(Xapian::Query::OP_VALUE_GE, schema::k_slot_date, Xapian::sortable_serialise(hi - span * frac))
                : Xapian::Query(Xapian::Query::OP_VALUE_LE, schema::k_slot_date, Xapian::sortable_serialise(lo + span * frac));
        Xapian::MSet m = windowed(bound);
        if (m.size() == count) return SortedMatches{ids_of(m), est};
        const double found = m.get_matches_estimated();  // exact: the window was sorted in full
        if (found == 0) break;
        frac *= std::max(2.0, 2.0 * need / found);
    }
    return plain();
}

namespace {

// A damaged index shard is left out (index::on_intact_shards): the rest is still searched.
template <typename F>
auto guarded(const index::Archive& archive, F&& f, std::string_view what) -> decltype(f()) {
    try {
        return index::on_intact_shards(archive, f);
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, std::string(what) + ": " + e.get_msg());
    }
}

}  // namespace

void decorate(const index::Archive& archive, const LinkBuilder& links, Hit& hit) {
    hit.link = links.link(hit.docno, hit.data);
    HeaderLookup lookup;
    if (links.needs_headers()) {
        lookup = [&](std::string_view name) -> std::string {
            auto raw = archive.read_original(hit.docno);
            if (!raw) return {};
            return header_value(*raw, name);
        };
    }
    hit.title = links.title(hit.docno, hit.data, lookup);
}

SearchResult page_of(const index::Archive& archive, const Xapian::Database& db, const ParsedQuery& parsed,
                     const Xapian::Query& query, Sort sort, Xapian::doccount first, Xapian::doccount count,
                     Xapian::doccount check_at_least, bool in_memory, const LinkBuilder& links, const AccessRule* rule) {
    bool exact = false;
    auto matches = sorted_matches(db, query, parsed.date, sort, first, count, check_at_least, &exact, in_memory,
                                  k_collect_up_to, &parsed.term_freqs);
    SearchResult r;
    r.depends_on_now = parsed.depends_on_now;
    r.total = matches.estimate;
    r.total_exact = exact;
    r.hits.reserve(matches.ids.size());
    for (auto id : matches.ids) {
        Hit h;
        h.docno = id;
        // A match of this very database: Xapian need not check that the document exists
        // (a read of its length in every shard's posting table: 20 hits, a third of their cost).
        h.data = index::DocData::from_json(db.get_document(id, Xapian::DOC_ASSUME_VALID).get_data());
        decorate(archive, links, h);  // the link and title use every location, as the CLI's
        if (rule) h.data = rule->visible(std::move(h.data));
        r.hits.push_back(std::move(h));
    }
    return r;
}

Result<SearchResult> search(const index::Archive& archive, std::string_view query, const SearchOptions& options,
                            const LinkBuilder& links) {
    return guarded(
        archive,
        [&]() -> Result<SearchResult> {
            Xapian::Database db = archive.database();
            auto q = parse(query, db, options.parse);
            if (!q) return fail(q.error());
            return page_of(archive, db, *q, q->query, options.sort, static_cast<Xapian::doccount>(options.offset),
                           static_cast<Xapian::doccount>(options.limit), 0, options.parse.dates_in_memory, links);
        },
        "search");
}

Result<std::uint64_t> count(const index::Archive& archive, std::string_view query, const ParseOptions& options) {
    return guarded(
        archive,
        [&]() -> Result<std::uint64_t> {
            Xapian::Database db = archive.database();
            auto q = parse_query(query, db, options);
            if (!q) return fail(q.error());
            Xapian::Enquire enquire(db);
            enquire.set_query(*q);
            enquire.set_weighting_scheme(Xapian::BoolWeight());
            Xapian::MSet mset = enquire.get_mset(0, 0, db.get_doccount());
            if (mset.get_matches_lower_bound() == mset.get_matches_upper_bound())
                return static_cast<std::uint64_t>(mset.get_matches_lower_bound());
            mset = enquire.get_mset(0, db.get_doccount());
            return static_cast<std::uint64_t>(mset.size());
        },
        "search");
}

Result<std::vector<std::uint64_t>> all_matches(const index::Archive& archive, std::string_view query,
                                               const ParseOptions& options) {
    return guarded(
        archive,
        [&]() -> Result<std::vector<std::uint64_t>> {
            Xapian::Database db = archive.database();
            auto q = parse_query(query, db, options);
            if (!q) return fail(q.error());
            Xapian::Enquire enquire(db);
            enquire.set_query(*q);
            configure(enquire, Sort::oldest);
            std::vector<std::uint64_t> out;
            const Xapian::doccount page = 100000;
            // One sorted pass per page of 100k keeps the MSet small on huge archives.
            for (Xapian::doccount first = 0;; first += page) {
                Xapian::MSet mset = enquire.get_mset(first, page);
                for (auto it = mset.begin(); it != mset.end(); ++it) out.push_back(*it);
                if (mset.size() < page) break;
            }
            return out;
        },
        "search");
}

std::vector<std::string> mailboxes_of(const index::DocData& d) {
    std::vector<std::string> v;
    for (const auto& l : d.locations)
        if (!l.mailbox.empty() && std::find(v.begin(), v.end(), l.mailbox) == v.end()) v.push_back(l.mailbox);
    return v;
}

std::vector<std::string> folders_of(const index::DocData& d) {
    std::vector<std::string> v;
    for (const auto& l : d.locations)
        if (!l.folder.empty() && std::find(v.begin(), v.end(), l.folder) == v.end()) v.push_back(l.folder);
    return v;
}

nlohmann::ordered_json removed_json(const index::DocData& d) {
    auto out = nlohmann::ordered_json::array();
    for (const auto& l : d.locations) {
        if (l.removed.empty()) continue;
        nlohmann::ordered_json j;
        j["source"] = l.source;
        j["mailbox"] = l.mailbox;
        j["folder"] = l.folder;
        j["id"] = l.server_id;
        j["reason"] = l.removed;
        j["time"] = iso_date(l.removed_at);
        out.push_back(std::move(j));
    }
    return out;
}

std::string local_date(std::int64_t utc_seconds, DateStyle style) {
    std::time_t t = static_cast<std::time_t>(utc_seconds);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    const char* format = style == DateStyle::full               ? "%Y-%m-%d %H:%M:%S %z"
                         : style == DateStyle::minutes_and_zone ? "%Y-%m-%d %H:%M %z"
                                                                : "%Y-%m-%d %H:%M";
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::vector<std::string> flags_of(const index::DocData& d) {
    std::vector<std::string> v;
    for (const auto& l : d.locations)
        for (const auto& f : l.flags)
            if (auto n = index::flag_name(f); std::find(v.begin(), v.end(), n) == v.end()) v.push_back(n);
    return v;
}

std::string hit_json(const Hit& h) {
    // Written field by field, the bytes an nlohmann object of these keys dumps (json_text):
    // building that object cost a tenth of an uncached web search (tests: HitJson.*).
    std::string out;
    out.reserve(640);
    auto str = [&](std::string_view s) { index::append_json_string(s, out); };
    auto strs = [&](const std::vector<std::string>& v) {
        out += '[';
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i) out += ',';
            str(v[i]);
        }
        out += ']';
    };
    out += "{\"docno\":";
    out += std::to_string(h.docno);
    out += ",\"date\":";
    str(iso_date(h.data.date));
    out += ",\"from\":";
    str(h.data.from);
    out += ",\"to\":";
    strs(h.data.to);
    out += ",\"subject\":";
    str(h.data.subject);
    out += ",\"mailboxes\":";
    strs(mailboxes_of(h.data));
    out += ",\"folders\":";
    strs(folders_of(h.data));
    out += ",\"size\":";
    out += std::to_string(h.data.size);
    out += ",\"attachments\":[";
    for (std::size_t i = 0; i < h.data.attachments.size(); ++i) {
        if (i) out += ',';
        str(h.data.attachments[i].filename);
    }
    out += "],\"title\":";
    str(h.title);
    out += ",\"link\":";
    str(h.link);
    out += ",\"cc\":";
    strs(h.data.cc);
    out += ",\"message_id\":";
    str(h.data.message_id);
    out += ",\"thread\":";
    str(thread_id(h.docno, h.data));
    out += ",\"flags\":";
    strs(flags_of(h.data));
    out += h.data.broken ? ",\"broken\":true" : ",\"broken\":false";
    if (auto removed = removed_json(h.data); !removed.empty()) {
        out += ",\"removed\":";
        index::append_json_text(removed, out);
    }
    out += '}';
    return out;
}

std::string for_terminal(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n' || c == '\r' || c == '\t') out += ' ';
        else if (c < 0x20 || c == 0x7f) out += '?';
        else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                 static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
            out += '?';  // a C1 control in UTF-8 (CSI is U+009B)
            ++i;
        } else out += static_cast<char>(c);
    }
    return out;
}

std::string hit_line(const Hit& h) {
    std::string date = local_date(h.data.date);
    return date + "  " + for_terminal(h.data.from) + "  " + for_terminal(h.title) + "  " + for_terminal(h.link);
}

}  // namespace mv::query
