#include "query/result_cache.hpp"

namespace mv::query {

std::optional<SearchResult> ResultCache::find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->second;
}

void ResultCache::put(const std::string& key, const SearchResult& r) {
    if (capacity_ == 0 || r.depends_on_now || r.hits.size() > k_max_hits) return;
    if (auto it = index_.find(key); it != index_.end()) {
        it->second->second = r;
        lru_.splice(lru_.begin(), lru_, it->second);
        return;
    }
    lru_.emplace_front(key, r);
    index_.emplace(key, lru_.begin());
    while (index_.size() > capacity_) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
}

void ResultCache::clear() {
    index_.clear();
    lru_.clear();
}

void ResultCache::set_capacity(std::size_t capacity) {
    capacity_ = capacity;
    while (index_.size() > capacity_) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
}

std::string result_key(std::string_view user, std::string_view query, const SearchOptions& options) {
    std::string k;
    k.reserve(user.size() + query.size() + 32);
    k.append(user).push_back('\0');
    k.append(query).push_back('\0');
    k += std::to_string(static_cast<int>(options.sort)) + ':' + std::to_string(options.offset) + ':' +
         std::to_string(options.limit);
    return k;
}

}  // namespace mv::query
