#pragma once
// SASL initial responses (PLAIN, XOAUTH2) and the base64 they travel in.
#include <string>
#include <string_view>

namespace mv::ingest::net {

std::string base64_encode(std::string_view bytes);
// Decodes standard base64 (padding optional); invalid characters are skipped.
std::string base64_decode(std::string_view text);

// RFC 4616: "\0user\0password", base64.
std::string sasl_plain(std::string_view user, std::string_view password);
// Google/Microsoft XOAUTH2: "user=U\x01auth=Bearer T\x01\x01", base64.
std::string sasl_xoauth2(std::string_view user, std::string_view token);

}  // namespace mv::ingest::net
