#include "web/sanitize.hpp"

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

}  // namespace mv::web
