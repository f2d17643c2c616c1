#pragma once
// Small header helpers for `check` output.
#include <cstdint>
#include <string>

namespace mv::ingest::net {

// The Subject of a header block, RFC 2047 decoded to UTF-8.
std::string decode_subject(const std::string& header_block);
// "2023-04-25 10:02 UTC".
std::string format_date(std::int64_t unix_time);

}  // namespace mv::ingest::net
