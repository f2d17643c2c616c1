// The HTML clean-up of the web's HTML view (web/html_clean, web/sanitize) and the indexer's
// HTML-to-text (index/mime html_to_text).
#include "index/mime/parser.hpp"
#include "tests/fuzz/fuzz_util.hpp"
#include "web/html_clean.hpp"
#include "web/sanitize.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view html = mv::fuzz::as_view(data, size);
    mv::web::CleanOptions o;
    o.cid_url = [](std::string_view cid) { return cid.size() % 2 ? "/m/1/cid/x" : ""; };
    (void)mv::web::clean_html(html, o);
    (void)mv::web::clean_css_declarations(html);
    (void)mv::web::clean_css_stylesheet(html);
    (void)mv::index::html_to_text(html);
    return 0;
}
