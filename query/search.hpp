#pragma once
// Search execution over an archive and the result formats of DESIGN.md (`search --json`).
#include <xapian.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "index/archive.hpp"
#include "index/util/iso_date.hpp"
#include "index/document/builder.hpp"
#include "query/links.hpp"
#include "query/parser.hpp"

namespace mv::query {

enum class Sort { newest, oldest, relevance };

Result<Sort> parse_sort(std::string_view s);

// The matches [first, first+count) of `q` in `sort` order (docids of `db`), and the estimated
// number of all matches (`*exact` set when that number is exact). Newest/oldest over many
// matches search a date window at the sorting end (exact); `dates` are the query's own date
// bounds; `check_at_least` as Xapian's get_mset; `in_memory`: windows through
// query/date_order.hpp (as ParseOptions::dates_in_memory), and matches ordered by the dates in
// memory instead of Xapian's sort by value.
struct SortedMatches {
    std::vector<Xapian::docid> ids;
    Xapian::doccount estimate = 0;
};
// In memory, up to `collect_up_to` estimated matches are all collected and ordered at once
// (cheaper than a window there; tests pass 0 to force windows on a small archive), and a query
// of terms only (joined by OR/SYNONYM) with at most 5 x `collect_up_to` postings in all is
// answered from its posting lists, read directly.
inline constexpr Xapian::doccount k_collect_up_to = 4000;
// In memory the number of matches is estimated from the terms' document counts (`known`, from
// ParsedQuery::term_freqs, else looked up) instead of asking Xapian, which opens every term's
// posting list in every shard to say it (a third of the block reads of a `kernel` search).
SortedMatches sorted_matches(const Xapian::Database& db, const Xapian::Query& q, const Range& dates, Sort sort,
                             Xapian::doccount first, Xapian::doccount count, Xapian::doccount check_at_least = 0,
                             bool* exact = nullptr, bool in_memory = false,
                             Xapian::doccount collect_up_to = k_collect_up_to, const TermFreqs* known = nullptr);

// The number of matches of `q` as Xapian estimates it before matching (terms independent of
// each other), with bounds the true number lies within; nullopt for a query with wildcards,
// value ranges or posting sources other than the in-memory date ranges (only Xapian can tell
// those).
struct MatchGuess {
    double estimate = 0;
    double lower = 0;
    double upper = 0;
};
std::optional<MatchGuess> guess_matches(const Xapian::Database& db, const Xapian::Query& q,
                                        const TermFreqs* known = nullptr);

struct SearchOptions {
    Sort sort = Sort::newest;
    std::uint64_t offset = 0;
    std::uint64_t limit = 50;
    ParseOptions parse;
};

struct Hit {
    std::uint64_t docno = 0;
    index::DocData data;
    std::string title;
    std::string link;
};

struct SearchResult {
    std::vector<Hit> hits;
    std::uint64_t total = 0;  // number of matches: exact when total_exact, else Xapian's estimate
    bool total_exact = false;
    bool depends_on_now = false;  // the query has relative dates (date:today, date:7d..)
};

class AccessRule;
// The page [first, first+count) of `query` (`parsed`, maybe restricted by an access rule) as
// hits with data, link and title; `rule` (optional) then trims each hit's locations to what
// it lets the user see.
SearchResult page_of(const index::Archive& archive, const Xapian::Database& db, const ParsedQuery& parsed,
                     const Xapian::Query& query, Sort sort, Xapian::doccount first, Xapian::doccount count,
                     Xapian::doccount check_at_least, bool in_memory, const LinkBuilder& links,
                     const AccessRule* rule = nullptr);

// Runs `query` over the archive; hits carry title and link.
Result<SearchResult> search(const index::Archive& archive, std::string_view query, const SearchOptions& options,
                            const LinkBuilder& links);
// Exact number of matches.
Result<std::uint64_t> count(const index::Archive& archive, std::string_view query, const ParseOptions& options);
// Every matching docno, oldest first (by date, then docno); memory: 8 bytes per match.
Result<std::vector<std::uint64_t>> all_matches(const index::Archive& archive, std::string_view query,
                                               const ParseOptions& options);

// Title/link for one document (reads the original only when title_field needs a header).
void decorate(const index::Archive& archive, const LinkBuilder& links, Hit& hit);

// "2023-04-25T10:02:11Z" (shared with the import side): JSON, always UTC.
using index::iso_date;
// For people: the local time zone (TZ) — "2023-05-01 01:30", or with `seconds_and_zone`
// "2023-05-01 01:30:00 +0200"; `minutes_and_zone`: "2023-05-01 01:30 +0200" (the web's lists).
enum class DateStyle { short_form, full, minutes_and_zone };
std::string local_date(std::int64_t utc_seconds, DateStyle style = DateStyle::short_form);
// Flags of all locations (index::flag_name), first seen first, no repeats.
std::vector<std::string> flags_of(const index::DocData& d);
// One `search --json` line (no newline), keys in DESIGN.md order, then "cc", "message_id",
// "thread" (query/thread.hpp), "flags", "broken"; then "removed" if any.
std::string hit_json(const Hit& hit);
// One human line: date, from, title, link.
std::string hit_line(const Hit& hit);
// Text from mail made safe for a terminal: line breaks and tabs become spaces, other control
// characters (C0, DEL, C1) become '?', so a subject or file name cannot move the cursor,
// recolour the screen or forge a line of output.
std::string for_terminal(std::string_view s);

// Unique mailboxes / folders of the locations, in first-seen order.
std::vector<std::string> mailboxes_of(const index::DocData& d);
std::vector<std::string> folders_of(const index::DocData& d);
// Locations the server reported removed (the message stays archived), [] if none:
// [{"source","mailbox","folder","id","reason","time"}], time UTC like iso_date().
nlohmann::ordered_json removed_json(const index::DocData& d);

}  // namespace mv::query
