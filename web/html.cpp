#include "web/html.hpp"

#include <cstdio>

namespace mv::web {

std::string esc(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '&': out += "&amp;"; continue;
            case '<': out += "&lt;"; continue;
            case '>': out += "&gt;"; continue;
            case '"': out += "&quot;"; continue;
            case '\'': out += "&#39;"; continue;
            default: break;
        }
        if (c < 0x80) {
            if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') out += "\xEF\xBF\xBD";
            else out += static_cast<char>(c);
            continue;
        }
        // Validate one UTF-8 sequence; replace what is not.
        int len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool good = len > 0 && i + len <= s.size() && c >= 0xC2 && c <= 0xF4;
        for (int k = 1; good && k < len; ++k) good = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (good) {
            out.append(s.substr(i, len));
            i += len - 1;
        } else {
            out += "\xEF\xBF\xBD";
        }
    }
    return out;
}

std::string url_component(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string human_size(std::uint64_t b) {
    char buf[32];
    if (b < 1024) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    else if (b < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
    else if (b < 1024ull * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
    else std::snprintf(buf, sizeof buf, "%.1f GiB", b / 1073741824.0);
    return buf;
}

std::string page(const PageFrame& f, std::string_view main_html) {
    std::string s;
    s.reserve(main_html.size() + 2048);
    s += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta name=\"referrer\" content=\"no-referrer\">"
         "<title>";
    s += esc(f.title);
    s += "</title><link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"
         "<link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>\n<body>";
    if (!f.user.empty()) {
        s += "<header id=\"topbar\"><a class=\"brand\" href=\"/search\">mailvault</a>"
             "<form id=\"search-form\" method=\"get\" action=\"/search\" role=\"search\">"
             "<input id=\"q\" name=\"q\" type=\"search\" autocomplete=\"off\" placeholder=\"Search mail\" aria-label=\"Search\" value=\"";
        s += esc(f.query);
        s += "\"><select name=\"sort\" aria-label=\"Sort\">";
        for (const char* o : {"newest", "oldest", "relevance"}) {
            s += "<option value=\"";
            s += o;
            s += f.sort == o ? "\" selected>" : "\">";
            s += o;
            s += "</option>";
        }
        s += "</select><button type=\"submit\">Search</button></form><span class=\"user\">";
        s += esc(f.user);
        s += "</span>";
        if (f.admin) s += "<a id=\"admin-link\" href=\"/admin/sources\">Admin</a>";
        s += "<form id=\"logout-form\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"";
        s += esc(f.csrf);
        s += "\"><button type=\"submit\">Log out</button></form></header>\n";
    }
    s += "<main>";
    s += main_html;
    s += "</main></body></html>\n";
    return s;
}

}  // namespace mv::web
