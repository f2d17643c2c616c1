#pragma once
// What MIME parsing extracts from one message, all text as UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/extract/extract.hpp"

namespace mv::index {

struct Attachment {
    std::string filename;      // decoded (RFC 2047/2231), may be empty
    std::string content_type;  // "application/pdf"
    std::uint64_t size = 0;    // decoded bytes
    extract::Status status = extract::Status::none;  // what became of its text (index/extract)
    std::string status_reason;                       // for failed and skipped
};

struct ParsedMessage {
    std::string message_id;    // without angle brackets; empty if absent
    // Message-IDs this one answers: References (oldest first), then In-Reply-To if not among
    // them; without angle brackets, no repeats (threads).
    std::vector<std::string> references;
    std::string subject;
    std::string from;          // display form "Name <addr>"
    std::vector<std::string> to, cc, bcc;  // display forms
    std::string from_text, to_text, cc_text, bcc_text;  // names + addresses for indexing
    std::int64_t date = 0;     // seconds since epoch, UTC
    bool date_from_header = false;
    std::string body_text;     // text/plain parts, and HTML reduced to text
    std::vector<Attachment> attachments;
    std::string attachment_text;  // text extracted from attachments and attached messages, capped
    std::vector<std::string> defects;  // what was wrong but tolerated
    bool broken = false;       // could not be parsed as MIME; fields are best effort
};

// What parsing reads of one message, so that memory stays bounded whatever its size (README
// "Bounds"). The original is always stored whole; only what is indexed is cut.
struct ParseLimits {
    std::size_t max_body_text = 4 << 20;        // indexed text per message
    std::size_t max_attachment_text = 1 << 20;  // indexed text from attachments
    std::size_t max_html = 1 << 20;             // HTML bytes of one part reduced to text (a tree per byte)
    std::size_t max_header_field = 64 << 10;    // bytes of one top-level header field given to GMime
    std::size_t max_header_block = 1 << 20;     // bytes of the top-level header block given to GMime
    std::size_t max_attachments = 1000;         // attachments listed and indexed by name per message
    int max_depth = 32;                         // nesting of multiparts and message/rfc822
    // Attachment text ([index] attachment_text): off, attachments are listed with status skipped.
    bool attachment_text = true;
    extract::Limits extract;                    // per attachment: size, time, memory, zip limits
    int extract_depth = 0;                      // containers around this message (an attached one parsed for its text)
    // What GMime is given of the body (README "Hostile input"): it keeps a tree node per part
    // and each header field whole in memory, so the body is cut before the delimiter line past
    // max_parts, and header fields of parts and attached messages are bounded like the top
    // level's (max_header_field, max_header_block).
    std::size_t max_parts = 10000;               // MIME boundary-like lines ("--...") given to GMime
};

}  // namespace mv::index
