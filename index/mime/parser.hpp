#pragma once
// MIME parsing with GMime: raw RFC 822 bytes to indexable fields.
#include <gmime/gmime.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "index/mime/message.hpp"
#include "index/util/result.hpp"

namespace mv::index {

// Initialises GMime once per process; safe to call from any thread.
void init_mime();

// A message as GMime is to read it, within `limits` (README "Hostile input"): the bytes in
// place (no copy but for CR CR LF line ends), header fields of the message, its parts and
// attached messages cut to max_header_field (blocks to max_header_block), the body ended
// before its (max_parts + 1)th "--" line. What was cut is appended to `defects`. Indexing and
// the query side (show, attachments, the HTML view) read messages through it, so they see the
// same parts. `raw` must outlive it.
class BoundedMimeStream {
  public:
    BoundedMimeStream(std::string_view raw, const ParseLimits& limits, std::vector<std::string>* defects = nullptr);
    ~BoundedMimeStream();
    BoundedMimeStream(const BoundedMimeStream&) = delete;
    BoundedMimeStream& operator=(const BoundedMimeStream&) = delete;
    GMimeStream* get() const;  // owned by this

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Never fails on bad MIME (best effort, `broken` set); fails only on empty input.
Result<ParsedMessage> parse_message(std::string_view raw, const ParseLimits& limits, std::int64_t fallback_date);

// One leaf of a message's MIME tree, classified the way indexing classifies it.
struct MimeLeaf {
    GMimePart* part;
    std::string type;      // lowercased "type/subtype"
    std::string filename;  // decoded, may be empty
    bool attachment;       // else body text (text/plain or text/html)
    bool in_message = false;  // inside an attached message (message/rfc822)
};

// Walks the MIME tree in order: one text rendering of each multipart/alternative, attached
// messages (`on_message` sees each), a depth limit (a defect noted), signatures skipped.
// Indexing and `show --attachment N` both use it, so attachment numbers agree.
void walk_leaves(GMimeObject* root, const ParseLimits& limits, const std::function<void(const MimeLeaf&)>& on_leaf,
                 const std::function<void(GMimeMessage*)>& on_message = {},
                 std::vector<std::string>* defects = nullptr);

// HTML to plain text with gumbo (script/style dropped, block elements become line breaks).
std::string html_to_text(std::string_view html);

}  // namespace mv::index
