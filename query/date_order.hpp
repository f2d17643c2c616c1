#pragma once
// The documents of an open index in date order, in memory, so that newest/oldest-first
// search and date windows cost O(documents in the window) instead of reading the date value
// of every document per query (what OP_VALUE_RANGE and sort-by-value do: ~4 ms per query on
// the 83k-message bulk archive).
//
// Built once per state of the index from the date value stream (one pass, ~24 bytes per
// document; ~14 ms for 83k documents on a busy machine, so only for long-running processes) and shared by every thread; a new state (a commit of sync or import adds or
// removes documents, a compaction or reindex makes new shards) builds a new one. A
// document's date never changes in place (only a new index generation rewrites documents).
#include <xapian.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mv::query {

class DateOrder : public std::enable_shared_from_this<DateOrder> {
  public:
    // The order of `db` (one shard or all shards searched together), from a small process-wide
    // cache keyed by the database's UUIDs, document count and last docid.
    // A state that only adds documents to a cached one's shards (sync, import) extends that
    // order; any other (documents removed, new shards) builds the order anew.
    static std::shared_ptr<const DateOrder> of(const Xapian::Database& db);
    // The order of `db` read in full, not cached (what `of` must always equal).
    static std::shared_ptr<const DateOrder> build(const Xapian::Database& db);

    // Documents with a date.
    std::size_t size() const { return by_date_.size(); }
    // Documents whose date lies in [lo, hi] (seconds, UTC; nullopt = open end).
    std::size_t count(std::optional<double> lo, std::optional<double> hi) const;
    // The date of the k-th document (from 0) counted from the newest (`newest`) or the oldest
    // end, among those in [lo, hi]; nullopt when there are not that many.
    std::optional<double> kth(std::size_t k, bool newest, std::optional<double> lo, std::optional<double> hi) const;
    // The date of a document (docid of the order's database); NaN when it has none.
    double date_of(Xapian::docid id) const;
    // A boolean query matching exactly the documents whose date lies in [lo, hi], like
    // OP_VALUE_RANGE on the date slot, for `db` this order was built from.
    Xapian::Query range(std::optional<double> lo, std::optional<double> hi) const;

    // Every match of `q` over `db` (the order's database) as docids, unordered; with `window`,
    // only those whose date lies in [lo, hi]. Costs a posting-list step and a call per match,
    // no MSet. nullopt where the shards cannot be told apart (a database without UUIDs):
    // then use an Enquire.
    struct Window {
        std::optional<double> lo, hi;
    };
    std::optional<std::vector<Xapian::docid>> matches(const Xapian::Database& db, const Xapian::Query& q,
                                                      const std::optional<Window>& window,
                                                      std::size_t expected = 0) const;

    struct Entry {
        double date;
        Xapian::docid id;  // docid in the database the order was built from
    };

  private:
    std::vector<Entry> by_date_;            // sorted by (date, id)
    std::vector<std::string> shard_uuids_;  // the database's shards, in docid interleaving order
    std::vector<std::vector<double>> shard_dates_;  // per shard, by its own docid - 1 (NaN: none)
    std::vector<std::vector<double>> shard_sorted_;  // per shard, its dates sorted (no NaN): counts
    // This order (of `db` when it had base_count documents, the last base_last) with the
    // documents after base_last merged in; nullptr when some of the base's documents went.
    std::shared_ptr<const DateOrder> grown(const Xapian::Database& db, Xapian::doccount base_count,
                                           Xapian::docid base_last) const;
    std::pair<std::size_t, std::size_t> span(std::optional<double> lo, std::optional<double> hi) const;
    friend class DateRangeSource;
};

}  // namespace mv::query
