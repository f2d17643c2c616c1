#pragma once
// Append-only pack segments of zstd-compressed originals, one fsync per batch.
//
// Record: 64-byte header (magic "MVR1", type, docno, sha256, raw size, meta and payload
// lengths), then `meta` (JSON: where it was seen), then `payload` (one zstd frame of the
// original). Records are self-describing, so `reindex` can rebuild the index from packs.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/util/result.hpp"
#include "index/util/sha256.hpp"

namespace mv::index {

struct StoredRef {
    std::uint32_t segment = 0;
    std::uint64_t offset = 0;        // of the record header
    std::uint32_t payload_size = 0;  // compressed bytes
    std::uint64_t raw_size = 0;
    std::uint64_t end = 0;           // offset just past the record (not encoded; set by append and scan)
    std::string encode() const;      // 24 bytes, for a Xapian value slot
    static std::optional<StoredRef> decode(std::string_view s);
};

// removal: a location the server reported gone (meta only, docno 0: found again by its XID term).
enum class RecordType : std::uint8_t { original = 1, location = 2, removal = 3 };

struct RecordHeader {
    RecordType type = RecordType::original;
    std::uint64_t docno = 0;
    Digest sha{};
    std::uint64_t raw_size = 0;
    std::uint32_t meta_size = 0;
    std::uint32_t payload_size = 0;
};

inline constexpr std::size_t k_record_header_size = 64;
inline constexpr std::uint64_t k_segment_limit = 1ull << 30;

// A place in the store: (segment, offset). (1, 0) is the start.
using StorePos = std::pair<std::uint32_t, std::uint64_t>;

// What recover_tail() found past the last durable place.
struct TailRecovery {
    std::uint64_t records_checked = 0;  // complete records past `durable`, each verified
    std::uint64_t bytes_moved = 0;      // torn tail moved out of the segments into torn/
    std::vector<std::string> notes;     // one line per torn tail: where it was, where it went
};

class PackStore {
  public:
    static Result<std::unique_ptr<PackStore>> open(const std::filesystem::path& dir, bool writable);
    ~PackStore();

    // Not thread safe: one serial stage appends.
    Result<StoredRef> append(const RecordHeader& header, std::string_view meta, std::string_view payload);
    Result<void> sync();  // fsync the open segment (and directory when a segment was created)
    // Current end of data, as (segment, size); recorded with each index commit.
    StorePos end() const { return {segment_, size_}; }
    // The originals are the archive of record: nothing is ever cut because an index does not
    // refer to it. Only a torn tail is: every record past `durable` (a place some commit made
    // durable) is verified — complete, its payload decompressing to the SHA-256 in its header,
    // its meta JSON — and from the first one that is not, the rest of that segment is moved
    // to originals/torn/ (kept, fsynced) and the segment shortened. Writable stores only.
    Result<TailRecovery> recover_tail(StorePos durable);

    // Thread safe.
    Result<std::string> read_payload(const StoredRef& ref) const;  // compressed bytes
    // Walks every record from `from` (a record boundary) in order; stops early when `fn`
    // returns false. A record cut short by the end of its segment (a torn tail not yet
    // recovered) ends that segment's walk; a bad header is an error.
    // With `on_damage` (reindex of a damaged store), a bad header or a record running past its
    // segment is instead reported as the unreadable byte range [from, to) of that segment and
    // the walk goes on at the next intact record found after it (or the segment's end).
    using DamageFn = std::function<void(std::uint32_t segment, std::uint64_t from, std::uint64_t to)>;
    Result<void> scan(const std::function<bool(const RecordHeader&, const StoredRef&, std::string_view meta)>& fn,
                      StorePos from = {1, 0}, const DamageFn& on_damage = {}) const;
    std::uint64_t total_bytes() const;
    std::string segment_name(std::uint32_t segment) const;  // "pack-000001.mvp"

  private:
    PackStore() = default;
    std::filesystem::path segment_path(std::uint32_t n) const;
    Result<void> open_segment(std::uint32_t n);

    std::filesystem::path dir_;
    bool writable_ = false;
    int fd_ = -1;
    std::uint32_t segment_ = 1;
    std::uint64_t size_ = 0;
    bool dir_dirty_ = false;
};

// zstd helpers (level 3; thread-local contexts).
std::string zstd_compress(std::string_view raw, int level = 3);
Result<std::string> zstd_decompress(std::string_view compressed, std::uint64_t raw_size);

}  // namespace mv::index
