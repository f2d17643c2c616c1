#pragma once
// IMAP modified UTF-7 (RFC 3501 5.1.3) mailbox names.
#include <string>
#include <string_view>

namespace mv::ingest::net {

// Modified UTF-7 to UTF-8; malformed input is returned unchanged.
std::string mutf7_decode(std::string_view name);
// UTF-8 to modified UTF-7.
std::string mutf7_encode(std::string_view utf8);

}  // namespace mv::ingest::net
