#pragma once
// The dedupe key of DESIGN.md: SHA-256 over Message-ID (or its absence), Date, From, To,
// Cc and Subject header values (unfolded, trimmed) and the body with line ends as LF.
#include <string_view>

#include "index/util/sha256.hpp"

namespace mv::index {

Digest dedupe_key(std::string_view raw);

}  // namespace mv::index
