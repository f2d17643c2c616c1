#include "web/sanitize.hpp"

#include <sodium.h>

#include "query/html_part.hpp"
#include "web/html_clean.hpp"

namespace mv::web {

// html_clean.hpp is included unconditionally: a __has_include() test let ccache (direct mode,
// shared between work trees) reuse an object built while the header was absent, which
// silently served the escape-everything stand-in.
std::string sanitize_html(std::string_view html, std::function<std::string(std::string_view cid)> cid_url) {
    CleanOptions o;
    o.cid_url = std::move(cid_url);
    return clean_html(html, o);
}
bool have_html_cleaner() { return true; }

std::string CidInliner::operator()(std::string_view cid) {
    if (++lookups_ > k_max_cid_images) return {};
    auto part = query::cid_part(raw_, cid);
    if (!part) return {};
    const std::string& type = part->content_type;
    if (type != "image/png" && type != "image/jpeg" && type != "image/gif" && type != "image/webp") return {};
    if (part->bytes.empty() || bytes_ + part->bytes.size() > k_max_cid_bytes) return {};
    bytes_ += part->bytes.size();
    const std::size_t len = sodium_base64_ENCODED_LEN(part->bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string b64(len, '\0');
    sodium_bin2base64(b64.data(), len, reinterpret_cast<const unsigned char*>(part->bytes.data()), part->bytes.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    b64.resize(std::char_traits<char>::length(b64.c_str()));
    return "data:" + type + ";base64," + b64;
}

}  // namespace mv::web
