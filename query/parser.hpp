#pragma once
// The query language of DESIGN.md to a Xapian::Query, matching the indexing contract of
// index/document/builder.hpp (folded text, STEM_SOME, CJK n-grams, prefixes of schema.hpp).
#include <xapian.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "index/util/result.hpp"

namespace mv::query {

// Inclusive bounds; nullopt = open end.
struct Range {
    std::optional<std::int64_t> lo, hi;
};

// How calendar dates of a query are read: in the process's local time zone (TZ, or the
// [archive] timezone the CLI puts into TZ) or in UTC. A value ending in "z"/"Z"
// (date:2023-05-01Z, date:2023-05-01T10:00Z) is UTC either way.
enum class DateZone { utc, local };

// date: value (already folded) -> UTC seconds. Forms: YYYY, YYYY-MM, YYYY-MM-DD,
// YYYY-MM-DDTHH:MM[:SS], YYYYMMDD, today, yesterday, now, Nd/Nw/Ny (ago); A..B, A.., ..B.
// Each calendar unit is that unit in `zone`.
Result<Range> parse_date_range(std::string_view value, std::int64_t now, DateZone zone = DateZone::utc);
// size: value -> bytes. Units b, k/kb/kib, m/mb/mib, g/gb/gib (powers of 1024), decimals
// allowed; A..B, A.., ..B, >A, >=A, <A, <=A; a single value is an exact size.
Result<Range> parse_size_range(std::string_view value);

struct ParseOptions {
    std::string stemmer = "english";  // "none" or "" = no stemming
    std::int64_t now = 0;             // for relative dates; 0 = current time
    unsigned max_wildcard_expansion = 2000;
    DateZone zone = DateZone::utc;    // the CLI passes local
    // date: through the in-memory date order of query/date_order.hpp instead of a value
    // range (a long-running process: the server; the order costs one pass to build).
    bool dates_in_memory = false;
};

// Every document. Never copy Xapian::Query::MatchAll instead: it is one process-wide object
// whose reference count is not atomic, so server threads copying it at once corrupt the count
// and crash inside Xapian (seen as a segfault of `serve` under 16 connections).
inline Xapian::Query match_all() { return Xapian::Query(std::string()); }

// Parses `text`; Error::Kind::usage with one line naming the problem and its column.
// `db` expands wildcards.
Result<Xapian::Query> parse_query(std::string_view text, const Xapian::Database& db, const ParseOptions& options);

// The operators a query can be rebuilt with from its subqueries alone (no window, factor or
// parameters of their own to carry over).
inline bool is_plain_operator(Xapian::Query::op type) {
    using Q = Xapian::Query;
    switch (type) {
        case Q::OP_AND:
        case Q::OP_OR:
        case Q::OP_AND_NOT:
        case Q::OP_XOR:
        case Q::OP_AND_MAYBE:
        case Q::OP_FILTER:
        case Q::OP_SYNONYM:
        case Q::OP_MAX:
            return true;
        default:
            return false;
    }
}

using TermFreqs = std::map<std::string, Xapian::doccount, std::less<>>;

struct ParsedQuery {
    Xapian::Query query;
    Range date;  // every match's date lies within (from date: terms that constrain all)
    // Lines worth telling the user (e.g. "form:" is not a field, searched as text), no prefix.
    std::vector<std::string> notices;
    // The query has dates relative to ParseOptions::now (date:today, date:7d..): the same text
    // means other documents at another time.
    bool depends_on_now = false;
    // The number of documents of each term of `query`, looked up while parsing (the terms no
    // document has are left out of `query`); query/search.cpp estimates the matches from them.
    TermFreqs term_freqs;
};
Result<ParsedQuery> parse(std::string_view text, const Xapian::Database& db, const ParseOptions& options);

}  // namespace mv::query
