#include "query/facets.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "index/schema.hpp"

namespace mv::query {
namespace {

class FacetSpy : public Xapian::MatchSpy {
  public:
    explicit FacetSpy(const AccessRule& rule) : rule_(rule) {}
    void operator()(const Xapian::Document& doc, double) override {
        ++seen;
        auto d = index::DocData::from_json(doc.get_data());
        std::set<std::string> mb, fd;
        for (const auto& l : d.locations) {
            if (!rule_.allows_mailbox(l.mailbox)) continue;
            if (!l.mailbox.empty()) mb.insert(l.mailbox);
            if (!l.folder.empty()) fd.insert(l.folder);
        }
        for (const auto& m : mb) ++mailbox[m];
        for (const auto& f : fd) ++folder[f];
        const std::string v = doc.get_value(schema::k_slot_date);
        if (!v.empty()) {
            std::time_t t = static_cast<std::time_t>(Xapian::sortable_unserialise(v));
            std::tm tm{};
            gmtime_r(&t, &tm);
            ++year[tm.tm_year + 1900];
        }
    }
    std::uint64_t seen = 0;
    std::map<std::string, std::uint64_t> mailbox, folder;
    std::map<int, std::uint64_t> year;

  private:
    const AccessRule& rule_;
};

std::vector<FacetCount> top_of(const std::map<std::string, std::uint64_t>& m, std::size_t top) {
    std::vector<FacetCount> v;
    for (const auto& [k, n] : m) v.push_back({k, n});
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.count > b.count; });
    if (v.size() > top) v.resize(top);
    return v;
}

std::string quoted(std::string_view v) {
    std::string s;
    for (char c : v)
        if (c != '"') s += c;
    return "\"" + s + "\"";
}

}  // namespace

Result<Facets> facets(const Xapian::Database& db, const Xapian::Query& restricted, const AccessRule& rule,
                      std::uint64_t cap, std::size_t top) {
    try {
        Xapian::Enquire enquire(db);
        enquire.set_query(restricted);
        enquire.set_weighting_scheme(Xapian::BoolWeight());
        enquire.set_docid_order(Xapian::Enquire::DESCENDING);  // the newest docnos when capped
        FacetSpy spy(rule);
        enquire.add_matchspy(&spy);
        // The spy sees every document the matcher considers: ask for `cap` of them.
        Xapian::MSet m = enquire.get_mset(0, static_cast<Xapian::doccount>(cap));
        Facets f;
        f.examined = spy.seen;
        f.complete = m.get_matches_upper_bound() <= spy.seen;
        f.mailbox = top_of(spy.mailbox, top);
        f.folder = top_of(spy.folder, top);
        for (auto it = spy.year.rbegin(); it != spy.year.rend(); ++it)
            f.year.push_back({std::to_string(it->first), it->second});
        return f;
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "facets: " + e.get_msg());
    }
}

std::string narrow_query(std::string_view query, std::string_view facet, std::string_view value) {
    std::string term = facet == "year" ? "date:" + std::string(value)
                                       : std::string(facet) + ":" + quoted(value);
    std::string q(query);
    while (!q.empty() && q.back() == ' ') q.pop_back();
    while (!q.empty() && q.front() == ' ') q.erase(q.begin());
    if (q.empty() || q == "*") return term;
    return "(" + q + ") " + term;
}

}  // namespace mv::query
