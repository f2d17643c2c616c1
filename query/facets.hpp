#pragma once
// Facets of a (restricted) query: counts per mailbox, folder and year of its matches.
#include <xapian.h>

#include <cstdint>
#include <string>
#include <vector>

#include "query/access.hpp"

namespace mv::query {

struct FacetCount {
    std::string value;  // mailbox or folder as stored on the location; year as "2023"
    std::uint64_t count = 0;
};

struct Facets {
    std::vector<FacetCount> mailbox, folder, year;  // mailbox/folder by count (desc), year newest first
    std::uint64_t examined = 0;  // matches counted
    bool complete = true;        // false when the query had more matches than `cap`
};

// Counts over the matches of `restricted` (already AND-ed with the rule's filter), reading
// at most `cap` of them; locations of mailboxes `rule` hides are not counted.
Result<Facets> facets(const Xapian::Database& db, const Xapian::Query& restricted, const AccessRule& rule,
                      std::uint64_t cap = 5000, std::size_t top = 20);

// The query text that narrows `query` to one facet value (`mailbox:"x"`, `folder:"x"`,
// `date:2023`); `query` "*" or empty gives the facet term alone.
std::string narrow_query(std::string_view query, std::string_view facet, std::string_view value);

}  // namespace mv::query
