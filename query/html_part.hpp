#pragma once
// The HTML body and cid: parts of a message, for the web's HTML view.
#include <optional>
#include <string>
#include <string_view>

#include "index/util/result.hpp"

namespace mv::query {

// The first text/html body part (not an attachment), decoded to UTF-8; nullopt if none.
std::optional<std::string> html_body(std::string_view raw);

struct CidPart {
    std::string content_type;  // lowercased "image/png"
    std::string bytes;         // transfer-decoded
};
// The part whose Content-ID is `cid` (without <>); Error::Kind::not_found if none.
Result<CidPart> cid_part(std::string_view raw, std::string_view cid);

}  // namespace mv::query
