#pragma once
// GET /m/{docno}/attachments.zip: every attachment of one message in one zip, named as
// `export --attachments` names them ({docno}-{n}-{safe name}, query/export.hpp). Built in
// memory: bounded by the message, which the route holds anyway (about twice its size).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/util/result.hpp"

namespace mv::web {

// A zip archive written to memory: deflated entries (stored when deflate does not shrink
// them), UTF-8 names (general purpose bit 11), CRC-32, no zip64 (an entry or the archive
// beyond 4 GiB, or more than 65,535 entries, is an error).
class ZipWriter {
  public:
    // `name` as given (the caller makes it safe); `mtime` UTC seconds (DOS time, 1980 at least).
    Result<void> add(std::string_view name, std::string_view bytes, std::int64_t mtime);
    // The central directory and end record appended; the writer is empty afterwards.
    Result<std::string> finish();

  private:
    struct Entry {
        std::string name;
        std::uint32_t crc = 0, csize = 0, usize = 0, offset = 0;
        std::uint16_t method = 0, dos_time = 0, dos_date = 0;
    };
    std::string out_;
    std::vector<Entry> entries_;
};

struct AttachmentsZip {
    std::string bytes;
    std::size_t files = 0;
};

// The attachments of raw message bytes as a zip; Error::Kind::not_found when it has none.
Result<AttachmentsZip> attachments_zip(std::string_view raw, std::uint64_t docno, std::int64_t date);

}  // namespace mv::web
