#pragma once
// Text folding shared by indexing and querying: lowercase and strip accents, so that
// "müller" finds "Müller" and "Muller". Both sides must fold the same way.
#include <string>
#include <string_view>

namespace mv::text {

// NFKD, combining marks removed, lowercased; ASCII input takes a fast path.
std::string fold(std::string_view utf8);

// Replaces invalid UTF-8 sequences with U+FFFD.
std::string valid_utf8(std::string_view bytes);

}  // namespace mv::text
