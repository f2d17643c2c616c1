#pragma once
// The one access rule of the web side: a user's mailbox globs, as a Xapian filter AND-ed
// outside every parsed user query (results, counts, facets) and as a check on every docno.
#include <xapian.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/document/builder.hpp"
#include "query/search.hpp"

namespace mv::query {

class AccessRule {
  public:
    // Globs (fnmatch, case-folded like the index) over mailbox names; ["*"] = everything,
    // [] = nothing.
    explicit AccessRule(std::vector<std::string> mailbox_globs);

    bool everything() const { return everything_; }
    // A mailbox name (as stored on a location) this rule lets the user see.
    bool allows_mailbox(std::string_view mailbox) const;
    // OR of the mailbox terms of `db` the globs match (MatchAll for everything, MatchNothing
    // when none match). Expanded from the index's mailbox terms on each call.
    Xapian::Query filter(const Xapian::Database& db) const;
    // `user` parsed, then restricted: OP_FILTER(user, filter(db)). Nothing in the user's
    // query can widen it (OR/NOT/parentheses all stay inside the left operand).
    Xapian::Query restrict(const Xapian::Database& db, const Xapian::Query& user) const;
    // True when `docno` exists in `db` and one of its mailboxes is allowed. The only check a
    // docno route makes: false for a missing docno and for another user's alike.
    bool allows(const Xapian::Database& db, std::uint64_t docno) const;
    // `d` with only the locations of allowed mailboxes (what a page or the API may show).
    index::DocData visible(index::DocData d) const;

  private:
    bool term_allowed(std::string_view folded_mailbox) const;
    std::vector<std::string> globs_;  // folded
    bool everything_ = false;
};

// Search restricted by `rule` on an open database (one per worker thread), sorted as
// query::search sorts (the same date-window method). `total` is the number of visible
// matches (exact up to 1,000, Xapian's estimate beyond). Hits carry only the visible locations.
Result<SearchResult> search_visible(const index::Archive& archive, const Xapian::Database& db,
                                    std::string_view query, const SearchOptions& options, const LinkBuilder& links,
                                    const AccessRule& rule);

}  // namespace mv::query
