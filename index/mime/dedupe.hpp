#pragma once
// Message identity (DESIGN.md "the same message") and the rule for what counts as mail.
#include <string>
#include <string_view>

#include "index/util/sha256.hpp"

namespace mv::index {

// The dedupe key. With a non-empty Message-ID, From or Subject: SHA-256 over Message-ID (or its
// absence), Date, From, To, Cc and Subject values (unfolded, trimmed) and the body (every byte
// after the header block, any run of CRs before LF read as one LF). Without any of those three
// the message is the same only as a byte-identical copy: SHA-256 over its bytes (domain-separated,
// so it never equals the key of a message that has identity). Memory use is constant.
Digest dedupe_key(std::string_view raw);

// Why `raw` is not mail, or "" when it is. Mail has a header block: skipping leading empty lines,
// the lines before the next empty line (a line of nothing but CRs), of which at least one is a
// header field ("Name:" with a name of printable ASCII but ':', optional blanks before the ':') and
// at least half are header fields or their continuation lines. A first line "From " (an mbox
// envelope line) is not counted either way. Only the first k_mail_check_lines lines of the header
// block and the first k_mail_check_bytes bytes are looked at. A damaged message (truncated, a
// header deleted, bytes flipped) keeps this shape; binary data, empty files and plain text without
// headers do not.
std::string not_mail_reason(std::string_view raw);

inline constexpr std::size_t k_mail_check_lines = 1000;
inline constexpr std::size_t k_mail_check_bytes = 256 << 10;

}  // namespace mv::index
