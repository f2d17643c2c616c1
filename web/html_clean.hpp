#pragma once
// Server-side allow-list rebuild of HTML mail for the sandboxed HTML view (/m/N/html/content).
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mv::web {

struct CleanOptions {
    // Bytes of input parsed; the rest is cut (at a UTF-8 boundary) and a note says so.
    std::size_t max_input = 4 << 20;
    // Maps a content-id (from a cid: URL, percent-decoded, no angle brackets) to an archive URL
    // such as /m/N/cid/<escaped>; empty function or empty result: the image/link is dropped.
    std::function<std::string(std::string_view cid)> cid_url;
    // Elements nested deeper than this are unwrapped (their text stays).
    std::size_t max_depth = 256;
    // Output stops growing past this many bytes (open elements are still closed); 0: 4*max_input.
    std::size_t max_output = 0;
    // CPU time (of the calling thread) the parse may take; beyond it the result is a document
    // saying the part is too complex to show (nested markup makes HTML5 parsing quadratic).
    std::size_t max_parse_ms = 2000;
};

// Parses `html` (UTF-8) with gumbo and rebuilds a complete HTML document from allow-listed
// tags, attributes, URL schemes (http/https/mailto links, cid: and data:image images) and CSS
// (no url(), expression(), @import or other resource-loading function). Never loads or keeps
// remote content. Bounded in time and memory by max_input; never throws for any input.
std::string clean_html(std::string_view html, const CleanOptions& options);

// The CSS filter used for style attributes: keeps declarations whose value only uses
// harmless functions (rgb(), calc(), gradients, ...); drops the rest. Exposed for tests.
std::string clean_css_declarations(std::string_view css);
// The same for the text of a <style> element (rules, @media/@supports; other at-rules dropped).
std::string clean_css_stylesheet(std::string_view css);

}  // namespace mv::web
