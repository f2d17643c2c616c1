#include "web/sanitize.hpp"

#include "web/html.hpp"

#if __has_include("web/html_clean.hpp")
#include "web/html_clean.hpp"
#define MV_HAVE_HTML_CLEAN 1
#endif

namespace mv::web {

#ifdef MV_HAVE_HTML_CLEAN
std::string sanitize_html(std::string_view html, std::function<std::string(std::string_view cid)> cid_url) {
    CleanOptions o;
    o.cid_url = std::move(cid_url);
    return clean_html(html, o);
}
bool have_html_cleaner() { return true; }
#else
std::string sanitize_html(std::string_view html, std::function<std::string(std::string_view)>) {
    return "<!doctype html><html><head><meta charset=\"utf-8\"></head><body><pre>" +
           esc(html.substr(0, 4 << 20)) + "</pre></body></html>";
}
bool have_html_cleaner() { return false; }
#endif

}  // namespace mv::web
