#pragma once
// One message: its hit (title, link), its full view for `show`, its attachments.
#include <cstdint>
#include <string>
#include <vector>

#include "index/archive.hpp"
#include "query/search.hpp"

namespace mv::query {

// The hit of one docno; Error::Kind::not_found if the archive has no such message.
Result<Hit> load_hit(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links);
// {"docno":..,"title":..,"link":..}
std::string link_json(const Hit& hit);

struct AttachmentPart {
    std::string filename;       // decoded; may be empty
    std::string content_type;   // "application/pdf"
    std::uint64_t size = 0;     // decoded bytes
    std::string text_status;    // what indexing made of its text, as stored: "indexed", "failed", ... ("": not recorded)
    std::string text_status_reason;
};

struct MessageView {
    Hit hit;
    std::vector<std::pair<std::string, std::string>> headers;  // every header, decoded, in order
    std::string body;                                          // decoded text
    std::vector<AttachmentPart> attachments;                   // numbered from 1
};

// The conversation of `docno` (query/thread.hpp), oldest first.
Result<std::vector<Hit>> thread_hits(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links);

// Parses the original of `docno` for `show`.
Result<MessageView> load_view(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links);
// The same through `db`, an open database of the archive (a server thread's): no database is
// opened for it.
Result<MessageView> load_view(const index::Archive& archive, const Xapian::Database& db, std::uint64_t docno,
                              const LinkBuilder& links);
// Dates in local time (TZ) with the offset; no run of blank lines before the text; each
// attachment with its text status ("indexed", "failed: reason", ...).
std::string view_text(const MessageView& v);
// Dates in UTC (ISO 8601); also "thread", "references", "flags", "broken"; each attachment
// with "text_status" (and "text_status_reason") once indexing recorded one.
std::string view_json(const MessageView& v);

// "indexed", "too large", "failed: <reason>", ... of an attachment; "" when none was recorded.
std::string text_status_line(const AttachmentPart& a);

// The attachments of raw RFC 822 bytes (leaf parts with a file name or attachment
// disposition, non-text leaves, attached messages), walked depth-first with a stack.
std::vector<AttachmentPart> list_attachments(std::string_view raw);
// Attachment `n` (1-based, as list_attachments numbers them), transfer-decoded.
Result<std::string> extract_attachment(std::string_view raw, std::size_t n);

}  // namespace mv::query
