#pragma once
// MIME parsing with GMime: raw RFC 822 bytes to indexable fields.
#include <string_view>

#include "index/mime/message.hpp"
#include "index/util/result.hpp"

namespace mv::index {

// Initialises GMime once per process; safe to call from any thread.
void init_mime();

// Never fails on bad MIME (best effort, `broken` set); fails only on empty input.
Result<ParsedMessage> parse_message(std::string_view raw, const ParseLimits& limits, std::int64_t fallback_date);

// HTML to plain text with gumbo (script/style dropped, block elements become line breaks).
std::string html_to_text(std::string_view html);

}  // namespace mv::index
