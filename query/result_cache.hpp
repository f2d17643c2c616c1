#pragma once
// Recent search results of one server worker thread, kept for as long as that thread's view
// of the index stays the same (what Solr's queryResultCache does per searcher): paging back
// and forth, the search page and the API asking the same, a script polling a query. The
// owner clears it whenever its database reopens to a new state (a commit of sync or import,
// a compaction), so a cached result is exactly what a new search would return. Results of
// queries that depend on the current time (date:today, date:7d..) are never cached.
//
// Bounded: at most `capacity` results (least recently used go first) of at most
// k_max_hits hits each.
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "query/search.hpp"

namespace mv::query {

class ResultCache {
  public:
    static constexpr std::size_t k_max_hits = 200;
    explicit ResultCache(std::size_t capacity = 64) : capacity_(capacity) {}
    // A copy of the result stored under `key`, if any.
    std::optional<SearchResult> find(const std::string& key);
    // Stores `r` under `key` unless it must not be cached (time-dependent, too large, capacity 0).
    void put(const std::string& key, const SearchResult& r);
    void clear();
    std::size_t size() const { return index_.size(); }
    void set_capacity(std::size_t capacity);

  private:
    using Entry = std::pair<std::string, SearchResult>;
    std::size_t capacity_;
    std::list<Entry> lru_;  // most recently used first
    std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// The cache key of a search: who asks (the access rule is the user's), what, in which order,
// which page.
std::string result_key(std::string_view user, std::string_view query, const SearchOptions& options);

}  // namespace mv::query
