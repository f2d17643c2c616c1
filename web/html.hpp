#pragma once
// HTML building blocks of the server-rendered pages: escaping and the page frame.
#include <cstdint>
#include <string>
#include <string_view>

namespace mv::web {

// Escapes & < > " ' for element text and quoted attribute values; invalid UTF-8 replaced.
std::string esc(std::string_view s);
// %-escapes everything but unreserved characters (for a query string value or a path segment).
std::string url_component(std::string_view s);
// "12.3 KiB"
std::string human_size(std::uint64_t bytes);

struct PageFrame {
    std::string title;
    std::string user;      // empty: not logged in (no top bar forms)
    std::string csrf;      // the session's CSRF token for the logout form
    std::string query;     // the search box value
    std::string sort = "newest";
    bool admin = false;    // the top bar links to /admin/sources
};
// A complete page: head (only /static/app.css and /static/app.js), top bar, `main_html`.
std::string page(const PageFrame& f, std::string_view main_html);

}  // namespace mv::web
