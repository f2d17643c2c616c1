#include "query/access.hpp"

#include <fnmatch.h>

#include <algorithm>

#include "index/schema.hpp"
#include "index/text/fold.hpp"

namespace mv::query {

AccessRule::AccessRule(std::vector<std::string> mailbox_globs) {
    for (auto& g : mailbox_globs) {
        if (g == "*") everything_ = true;
        globs_.push_back(text::fold(g));
    }
}

bool AccessRule::term_allowed(std::string_view folded) const {
    if (everything_) return true;
    const std::string s(folded);
    for (const auto& g : globs_)
        if (::fnmatch(g.c_str(), s.c_str(), 0) == 0) return true;
    return false;
}

bool AccessRule::allows_mailbox(std::string_view mailbox) const {
    if (everything_) return true;
    std::string term = text::fold(mailbox);
    // The index keeps at most 240 bytes of a term (prefix included).
    const std::size_t max = 240 - schema::prefix_of("mailbox").size();
    if (term.size() > max) term.resize(max);
    return term_allowed(term);
}

Xapian::Query AccessRule::filter(const Xapian::Database& db) const {
    if (everything_) return match_all();
    const std::string prefix(schema::prefix_of("mailbox"));
    std::vector<Xapian::Query> terms;
    for (auto it = db.allterms_begin(prefix); it != db.allterms_end(prefix); ++it) {
        const std::string t = *it;
        if (term_allowed(std::string_view(t).substr(prefix.size()))) terms.emplace_back(t);
    }
    if (terms.empty()) return Xapian::Query::MatchNothing;
    return Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end());
}

Xapian::Query AccessRule::restrict(const Xapian::Database& db, const Xapian::Query& user) const {
    if (everything_) return user;
    return Xapian::Query(Xapian::Query::OP_FILTER, user, filter(db));
}

bool AccessRule::allows(const Xapian::Database& db, std::uint64_t docno) const {
    if (docno == 0 || docno > std::uint64_t(db.get_lastdocid())) return false;
    const std::string prefix(schema::prefix_of("mailbox"));
    try {
        // The document's own terms: no document, no access (same answer as another user's).
        auto it = db.termlist_begin(static_cast<Xapian::docid>(docno));
        if (everything_) return true;
        for (it.skip_to(prefix); it != db.termlist_end(static_cast<Xapian::docid>(docno)); ++it) {
            const std::string t = *it;
            if (t.compare(0, prefix.size(), prefix) != 0) break;
            if (term_allowed(std::string_view(t).substr(prefix.size()))) return true;
        }
    } catch (const Xapian::DocNotFoundError&) {
        return false;
    }
    return false;
}

index::DocData AccessRule::visible(index::DocData d) const {
    if (everything_) return d;
    std::erase_if(d.locations, [&](const index::Location& l) { return !allows_mailbox(l.mailbox); });
    return d;
}


Result<SearchResult> search_visible(const index::Archive& archive, const Xapian::Database& db,
                                    std::string_view query, const SearchOptions& options, const LinkBuilder& links,
                                    const AccessRule& rule) {
    try {
        auto q = parse(query, db, options.parse);
        if (!q) return fail(q.error());
        const auto first = static_cast<Xapian::doccount>(std::min<std::uint64_t>(options.offset, 1u << 30));
        const auto count = static_cast<Xapian::doccount>(std::min<std::uint64_t>(options.limit, 1000));
        return page_of(archive, db, *q, rule.restrict(db, q->query), options.sort, first, count, 1000,
                       options.parse.dates_in_memory, links, &rule);
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "search: " + e.get_msg());
    }
}

}  // namespace mv::query
