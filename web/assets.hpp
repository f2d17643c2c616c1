#pragma once
// Static files of web/assets/, embedded at build time (web/embed_assets.cmake): /static/<name>.
#include <string>
#include <string_view>

namespace mv::web {

struct Asset {
    std::string_view name;          // "app.css"
    std::string_view content_type;  // from the extension
    std::string_view bytes;
    std::string etag;               // "\"<first 16 hex of SHA-256>\""
};

// nullptr if there is no such asset.
const Asset* find_asset(std::string_view name);

}  // namespace mv::web
