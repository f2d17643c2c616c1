#include "web/html_clean.hpp"

#include <gumbo.h>

#include <time.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdlib>
#include <string>
#include <vector>

namespace mv::web {
namespace {

// ---------------------------------------------------------------------------------------------
// CSS. The filter works on a normalised copy (comments removed, escapes decoded, no '<' and no
// backslash left), so what it checks is exactly what the browser will read.

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_ident_char(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c >= 0x80; }

void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string normalize_css(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    const std::size_t n = in.size();
    while (i < n) {
        const unsigned char c = static_cast<unsigned char>(in[i]);
        if (c == '/' && i + 1 < n && in[i + 1] == '*') {
            const std::size_t end = in.find("*/", i + 2);
            i = end == std::string_view::npos ? n : end + 2;
            out.push_back(' ');
            continue;
        }
        if (c == '\\') {
            if (i + 1 >= n) break;
            const unsigned char d = static_cast<unsigned char>(in[i + 1]);
            if (std::isxdigit(d)) {
                unsigned long cp = 0;
                std::size_t j = i + 1;
                for (int k = 0; k < 6 && j < n && std::isxdigit(static_cast<unsigned char>(in[j])); ++k, ++j)
                    cp = cp * 16 + static_cast<unsigned long>(hex_value(in[j]));
                if (j < n && in[j] == '\r' && j + 1 < n && in[j + 1] == '\n') j += 2;
                else if (j < n && (in[j] == ' ' || in[j] == '\t' || in[j] == '\n' || in[j] == '\r' || in[j] == '\f')) ++j;
                i = j;
                // Only characters that cannot change the structure survive decoding.
                if (cp < 0x80 ? (std::isalnum(static_cast<int>(cp)) || cp == '-' || cp == '_')
                              : (cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)))
                    append_utf8(out, cp);
                continue;
            }
            if (d == '\n' || d == '\r' || d == '\f') {  // line continuation
                i += 2;
                continue;
            }
            if (d < 0x80) {
                if (std::isalnum(d) || d == '-' || d == '_') out.push_back(static_cast<char>(d));
                i += 2;
                continue;
            }
            ++i;  // a backslash before a non-ASCII character: the character itself
            continue;
        }
        if (c == '<' || c == 0) {
            out.push_back(' ');
            ++i;
            continue;
        }
        out.push_back(static_cast<char>(c));
        ++i;
    }
    return out;
}

// Index after the string starting at s[i] (a quote), or npos for a string the browser would
// end early (newline) or never (end of text).
std::size_t skip_string(std::string_view s, std::size_t i) {
    const char q = s[i];
    for (std::size_t j = i + 1; j < s.size(); ++j) {
        if (s[j] == q) return j + 1;
        if (s[j] == '\n' || s[j] == '\r' || s[j] == '\f') return std::string_view::npos;
    }
    return std::string_view::npos;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

// CSS functions that cannot fetch anything. Everything else (url, image, image-set, cross-fade,
// element, src, expression, attr, paint, ...) makes the declaration go.
bool allowed_css_function(std::string_view name) {
    static constexpr std::string_view k_allowed[] = {
        "rgb", "rgba", "hsl", "hsla", "hwb", "lab", "lch", "oklab", "oklch", "color", "color-mix",
        "calc", "min", "max", "clamp", "var", "linear-gradient", "radial-gradient",
        "repeating-linear-gradient", "repeating-radial-gradient", "conic-gradient",
        "-webkit-linear-gradient", "-webkit-radial-gradient", "-moz-linear-gradient",
        "translate", "translatex", "translatey", "scale", "scalex", "scaley", "rotate", "skew",
        "skewx", "skewy", "matrix", "cubic-bezier", "steps", "rect", "inset", "circle", "ellipse",
        "counter", "counters", "blur", "brightness", "contrast", "grayscale", "opacity", "repeat",
        "minmax", "fit-content", "not", "and", "or", "selector"};
    const std::string n = lower(name);
    return std::find(std::begin(k_allowed), std::end(k_allowed), n) != std::end(k_allowed);
}

// True when every "name(" in s names an allowed function, strings are well formed and
// parentheses balance. `forbid` lists characters that must not appear outside strings.
bool css_functions_ok(std::string_view s, std::string_view forbid) {
    int depth = 0;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == '"' || c == '\'') {
            const std::size_t end = skip_string(s, i);
            if (end == std::string_view::npos) return false;
            i = end;
            continue;
        }
        if (forbid.find(c) != std::string_view::npos) return false;
        if (c == '(') {
            std::size_t b = i;
            while (b > 0 && is_ident_char(static_cast<unsigned char>(s[b - 1]))) --b;
            if (b < i && !allowed_css_function(s.substr(b, i - b))) return false;
            ++depth;
        } else if (c == ')') {
            if (--depth < 0) return false;
        }
        ++i;
    }
    return depth == 0;
}

// One declaration "name: value" if harmless, normalised to "name:value"; empty otherwise.
std::string filter_declaration(std::string_view decl) {
    decl = trim(decl);
    const std::size_t colon = decl.find(':');
    if (colon == std::string_view::npos) return {};
    const std::string name = lower(trim(decl.substr(0, colon)));
    const std::string_view value = trim(decl.substr(colon + 1));
    if (name.empty() || value.empty()) return {};
    for (char c : name)
        if (!is_ident_char(static_cast<unsigned char>(c))) return {};
    if (name == "behavior" || name == "-moz-binding" || name == "-ms-behavior" || name == "src") return {};
    if (!css_functions_ok(value, "{};@")) return {};
    std::string out = name;
    out.push_back(':');
    out.append(value);
    return out;
}

// Splits at ';' outside strings and parentheses; stops (drops the rest) at a broken string.
std::vector<std::string_view> split_declarations(std::string_view s) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    int depth = 0;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == '"' || c == '\'') {
            const std::size_t end = skip_string(s, i);
            if (end == std::string_view::npos) return parts;
            i = end;
            continue;
        }
        if (c == '(') ++depth;
        if (c == ')' && depth > 0) --depth;
        if (c == ';' && depth == 0) {
            parts.push_back(s.substr(start, i - start));
            start = i + 1;
        }
        ++i;
    }
    parts.push_back(s.substr(start));
    return parts;
}

std::string filter_declarations(std::string_view normalized) {
    std::string out;
    for (std::string_view part : split_declarations(normalized)) {
        std::string d = filter_declaration(part);
        if (d.empty()) continue;
        if (!out.empty()) out.append("; ");
        out.append(d);
    }
    return out;
}

// Position of the first of `stops` at top level (outside strings/parentheses) from i, npos if
// none or a string is broken.
std::size_t find_top(std::string_view s, std::size_t i, std::string_view stops) {
    int depth = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '"' || c == '\'') {
            const std::size_t end = skip_string(s, i);
            if (end == std::string_view::npos) return std::string_view::npos;
            i = end;
            continue;
        }
        if (depth == 0 && stops.find(c) != std::string_view::npos) return i;
        if (c == '(') ++depth;
        if (c == ')' && depth > 0) --depth;
        ++i;
    }
    return std::string_view::npos;
}

// Index just past the '}' matching the '{' at s[open], npos if unmatched or broken.
std::size_t skip_block(std::string_view s, std::size_t open) {
    int depth = 0;
    for (std::size_t i = open; i < s.size();) {
        const char c = s[i];
        if (c == '"' || c == '\'') {
            const std::size_t end = skip_string(s, i);
            if (end == std::string_view::npos) return std::string_view::npos;
            i = end;
            continue;
        }
        if (c == '{') ++depth;
        if (c == '}' && --depth == 0) return i + 1;
        ++i;
    }
    return std::string_view::npos;
}

constexpr int k_max_css_nesting = 8;

// Rules from s[i] until the end or (nested) the closing '}', which is consumed.
void clean_rules(std::string_view s, std::size_t& i, int nesting, std::string& out) {
    const std::size_t n = s.size();
    while (i < n) {
        while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
        if (i >= n) return;
        if (s[i] == '}') {
            ++i;
            if (nesting > 0) return;
            continue;
        }
        if (s[i] == ';') {
            ++i;
            continue;
        }
        const std::size_t stop = find_top(s, i, s[i] == '@' ? "{;}" : "{}");
        if (stop == std::string_view::npos) {
            i = n;
            return;
        }
        if (s[stop] == ';') {  // statement at-rule: @import, @charset, @namespace ... dropped
            i = stop + 1;
            continue;
        }
        if (s[stop] == '}') {  // junk before the end of a block
            i = stop;
            continue;
        }
        const std::string_view prelude = trim(s.substr(i, stop - i));
        const std::size_t end = skip_block(s, stop);
        if (end == std::string_view::npos) {
            i = n;
            return;
        }
        if (prelude.front() == '@') {
            std::size_t k = 1;
            while (k < prelude.size() && is_ident_char(static_cast<unsigned char>(prelude[k]))) ++k;
            const std::string name = lower(prelude.substr(1, k - 1));
            const bool nested_rules = name == "media" || name == "supports" || name == "keyframes" ||
                                      name == "-webkit-keyframes";
            if (nested_rules && nesting < k_max_css_nesting && css_functions_ok(prelude, "{};")) {
                std::string inner;
                std::size_t j = stop + 1;
                clean_rules(s.substr(0, end), j, nesting + 1, inner);
                out.append(prelude).append("{").append(inner).append("}\n");
            } else if (name == "page" && css_functions_ok(prelude, "{};")) {
                const std::string_view body = s.substr(stop + 1, end - stop - 2);
                if (body.find('{') == std::string_view::npos)
                    out.append(prelude).append("{").append(filter_declarations(body)).append("}\n");
            }
            // @font-face, @import with a block, unknown at-rules: dropped.
            i = end;
            continue;
        }
        const std::string_view body = s.substr(stop + 1, end - stop - 2);
        if (body.find('{') == std::string_view::npos && !prelude.empty()) {
            const std::string decls = filter_declarations(body);
            if (!decls.empty()) out.append(prelude).append("{").append(decls).append("}\n");
        }
        i = end;
    }
}

// ---------------------------------------------------------------------------------------------
// HTML.

enum class Action { keep, unwrap, drop };

Action tag_action(GumboTag tag) {
    switch (tag) {
        case GUMBO_TAG_A: case GUMBO_TAG_ABBR: case GUMBO_TAG_ACRONYM: case GUMBO_TAG_ADDRESS:
        case GUMBO_TAG_ARTICLE: case GUMBO_TAG_ASIDE: case GUMBO_TAG_B: case GUMBO_TAG_BDI:
        case GUMBO_TAG_BDO: case GUMBO_TAG_BIG: case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_BR:
        case GUMBO_TAG_CAPTION: case GUMBO_TAG_CENTER: case GUMBO_TAG_CITE: case GUMBO_TAG_CODE:
        case GUMBO_TAG_COL: case GUMBO_TAG_COLGROUP: case GUMBO_TAG_DD: case GUMBO_TAG_DEL:
        case GUMBO_TAG_DETAILS: case GUMBO_TAG_DFN: case GUMBO_TAG_DIV: case GUMBO_TAG_DL:
        case GUMBO_TAG_DT: case GUMBO_TAG_EM: case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_FIGURE:
        case GUMBO_TAG_FONT: case GUMBO_TAG_FOOTER: case GUMBO_TAG_H1: case GUMBO_TAG_H2:
        case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_H5: case GUMBO_TAG_H6:
        case GUMBO_TAG_HEADER: case GUMBO_TAG_HR: case GUMBO_TAG_I: case GUMBO_TAG_IMG:
        case GUMBO_TAG_INS: case GUMBO_TAG_KBD: case GUMBO_TAG_LI: case GUMBO_TAG_MAIN:
        case GUMBO_TAG_MARK: case GUMBO_TAG_NAV: case GUMBO_TAG_OL: case GUMBO_TAG_P:
        case GUMBO_TAG_PRE: case GUMBO_TAG_Q: case GUMBO_TAG_RP: case GUMBO_TAG_RT:
        case GUMBO_TAG_RUBY: case GUMBO_TAG_S: case GUMBO_TAG_SAMP: case GUMBO_TAG_SECTION:
        case GUMBO_TAG_SMALL: case GUMBO_TAG_SPAN: case GUMBO_TAG_STRIKE: case GUMBO_TAG_STRONG:
        case GUMBO_TAG_SUB: case GUMBO_TAG_SUMMARY: case GUMBO_TAG_SUP: case GUMBO_TAG_TABLE:
        case GUMBO_TAG_TBODY: case GUMBO_TAG_TD: case GUMBO_TAG_TFOOT: case GUMBO_TAG_TH:
        case GUMBO_TAG_THEAD: case GUMBO_TAG_TIME: case GUMBO_TAG_TR: case GUMBO_TAG_TT:
        case GUMBO_TAG_U: case GUMBO_TAG_UL: case GUMBO_TAG_VAR: case GUMBO_TAG_WBR:
            return Action::keep;
        // Raw text, active content, resources, forms' controls, document metadata: gone with
        // their content.
        case GUMBO_TAG_SCRIPT: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_TEMPLATE:
        case GUMBO_TAG_IFRAME: case GUMBO_TAG_FRAME: case GUMBO_TAG_FRAMESET:
        case GUMBO_TAG_NOFRAMES: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED: case GUMBO_TAG_APPLET:
        case GUMBO_TAG_PARAM: case GUMBO_TAG_TITLE: case GUMBO_TAG_BASE: case GUMBO_TAG_LINK:
        case GUMBO_TAG_META: case GUMBO_TAG_TEXTAREA: case GUMBO_TAG_SELECT: case GUMBO_TAG_OPTION:
        case GUMBO_TAG_OPTGROUP: case GUMBO_TAG_DATALIST: case GUMBO_TAG_BUTTON: case GUMBO_TAG_INPUT:
        case GUMBO_TAG_KEYGEN: case GUMBO_TAG_OUTPUT: case GUMBO_TAG_XMP: case GUMBO_TAG_PLAINTEXT:
        case GUMBO_TAG_NOEMBED: case GUMBO_TAG_AUDIO: case GUMBO_TAG_VIDEO: case GUMBO_TAG_SOURCE:
        case GUMBO_TAG_TRACK: case GUMBO_TAG_CANVAS: case GUMBO_TAG_MAP: case GUMBO_TAG_AREA:
        case GUMBO_TAG_SVG: case GUMBO_TAG_MATH: case GUMBO_TAG_BGSOUND: case GUMBO_TAG_ISINDEX:
        case GUMBO_TAG_MENUITEM: case GUMBO_TAG_HEAD: case GUMBO_TAG_IMAGE:
            return Action::drop;
        default:  // form, label, fieldset, unknown and custom elements: their content only
            return Action::unwrap;
    }
}

bool is_void(GumboTag tag) {
    return tag == GUMBO_TAG_BR || tag == GUMBO_TAG_HR || tag == GUMBO_TAG_IMG || tag == GUMBO_TAG_WBR ||
           tag == GUMBO_TAG_COL;
}

bool allowed_attribute(GumboTag tag, std::string_view name) {
    static constexpr std::string_view k_global[] = {"title", "lang", "dir", "align", "valign", "width",
                                                    "height", "bgcolor", "color", "border", "class", "id"};
    if (std::find(std::begin(k_global), std::end(k_global), name) != std::end(k_global)) return true;
    switch (tag) {
        case GUMBO_TAG_A: return name == "name";
        case GUMBO_TAG_IMG: return name == "alt" || name == "hspace" || name == "vspace";
        case GUMBO_TAG_FONT: return name == "face" || name == "size";
        case GUMBO_TAG_TD: case GUMBO_TAG_TH:
            return name == "colspan" || name == "rowspan" || name == "nowrap" || name == "headers" ||
                   name == "scope" || name == "abbr";
        case GUMBO_TAG_TABLE:
            return name == "cellpadding" || name == "cellspacing" || name == "summary" || name == "frame" ||
                   name == "rules";
        case GUMBO_TAG_COL: case GUMBO_TAG_COLGROUP: return name == "span";
        case GUMBO_TAG_OL: return name == "start" || name == "type" || name == "reversed";
        case GUMBO_TAG_UL: return name == "type";
        case GUMBO_TAG_LI: return name == "value" || name == "type";
        case GUMBO_TAG_TIME: case GUMBO_TAG_DEL: case GUMBO_TAG_INS: return name == "datetime";
        case GUMBO_TAG_HR: return name == "noshade" || name == "size";
        case GUMBO_TAG_DETAILS: return name == "open";
        default: return false;
    }
}

void escape_into(std::string& out, std::string_view s, bool attribute) {
    for (char c : s) {
        switch (c) {
            case '&': out.append("&amp;"); break;
            case '<': out.append("&lt;"); break;
            case '>': out.append("&gt;"); break;
            case '"':
                if (attribute) out.append("&quot;");
                else out.push_back(c);
                break;
            case '\'':
                if (attribute) out.append("&#39;");
                else out.push_back(c);
                break;
            case '\0': break;
            default: out.push_back(c);
        }
    }
}

// A URL as the browser's URL parser sees it: C0 controls and spaces trimmed, tabs and
// newlines removed anywhere ("java\tscript:" is "javascript:").
std::string prepare_url(std::string_view v) {
    while (!v.empty() && static_cast<unsigned char>(v.front()) <= 0x20) v.remove_prefix(1);
    while (!v.empty() && static_cast<unsigned char>(v.back()) <= 0x20) v.remove_suffix(1);
    std::string out;
    for (char c : v)
        if (c != '\t' && c != '\n' && c != '\r') out.push_back(c);
    return out;
}

// Lower-case scheme of an absolute URL; empty for a relative one.
std::string url_scheme(std::string_view u) {
    if (u.empty() || !std::isalpha(static_cast<unsigned char>(u[0]))) return {};
    for (std::size_t i = 1; i < u.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(u[i]);
        if (c == ':') return lower(u.substr(0, i));
        if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return {};
    }
    return {};
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::string cid_target(std::string_view url, const CleanOptions& options) {
    if (!options.cid_url) return {};
    std::string id = percent_decode(url.substr(4));
    if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
    if (id.empty()) return {};
    return options.cid_url(id);
}

// href of a link: http(s), mailto, in-page fragments, cid: through cid_url. Empty: dropped.
std::string clean_href(std::string_view value, const CleanOptions& options, bool& external) {
    const std::string u = prepare_url(value);
    const std::string scheme = url_scheme(u);
    external = true;
    if (scheme == "http" || scheme == "https" || scheme == "mailto") return u;
    if (scheme == "cid") return cid_target(u, options);
    if (scheme.empty() && !u.empty() && u[0] == '#') {
        external = false;
        return u;
    }
    return {};  // javascript:, data:, vbscript:, relative paths into the archive's origin, ...
}

// src of an image: cid: through cid_url or an inline raster data: URL. Empty: dropped.
std::string clean_img_src(std::string_view value, const CleanOptions& options) {
    const std::string u = prepare_url(value);
    const std::string scheme = url_scheme(u);
    if (scheme == "cid") return cid_target(u, options);
    if (scheme == "data") {
        const std::string head = lower(std::string_view(u).substr(0, std::min<std::size_t>(u.size(), 24)));
        for (std::string_view t : {"data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp"})
            if (head.compare(0, t.size(), t) == 0 && (head.size() > t.size() && (head[t.size()] == ';' || head[t.size()] == ',')))
                return u;
    }
    return {};  // http(s) (remote content, never), relative URLs, other schemes
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Every gumbo allocation goes through here, for two bounds gumbo itself lacks:
// - memory: gumbo's tree destruction recurses once per nesting level, which a deeply nested
//   mail turns into a stack overflow; instead all blocks are listed and freed at once.
// - time: the HTML5 tree builder scans the stack of open elements for many tags, quadratic in
//   nesting (200,000 nested <div> take minutes). Gumbo allocates at least once per token, so
//   checking the thread's CPU time here every few calls lets the parse be abandoned (longjmp
//   over gumbo's C frames; nothing of the parse is used afterwards, the arena frees it).
class ParseArena {
  public:
    explicit ParseArena(double cpu_deadline) : cpu_deadline_(cpu_deadline) { head_.prev = head_.next = &head_; }
    ~ParseArena() {
        Block* b = head_.next;
        while (b != &head_) {
            Block* next = b->next;
            std::free(b);
            b = next;
        }
    }
    ParseArena(const ParseArena&) = delete;
    ParseArena& operator=(const ParseArena&) = delete;

    // gumbo's parse of `html`, or null when it ran out of time.
    GumboOutput* parse(GumboOptions options, std::string_view html) {
        options.allocator = &ParseArena::allocate;
        options.deallocator = &ParseArena::deallocate;
        options.userdata = this;
        std::jmp_buf env;
        escape_ = &env;
        if (setjmp(env) != 0) return nullptr;
        return gumbo_parse_with_options(&options, html.data(), static_cast<unsigned>(html.size()));
    }

  private:
    struct alignas(16) Block {
        Block* prev;
        Block* next;
    };

    static void* allocate(void* self, size_t size) {
        auto* arena = static_cast<ParseArena*>(self);
        if ((++arena->calls_ & 255) == 0 && thread_cpu_seconds() > arena->cpu_deadline_) std::longjmp(*arena->escape_, 1);
        auto* b = static_cast<Block*>(std::malloc(sizeof(Block) + size));
        if (b == nullptr) std::abort();  // gumbo does not check for null; max_input bounds this
        b->prev = &arena->head_;
        b->next = arena->head_.next;
        arena->head_.next->prev = b;
        arena->head_.next = b;
        return b + 1;
    }
    static void deallocate(void*, void* p) {
        if (p == nullptr) return;
        Block* b = static_cast<Block*>(p) - 1;
        b->prev->next = b->next;
        b->next->prev = b->prev;
        std::free(b);
    }

    Block head_;
    double cpu_deadline_;
    unsigned long calls_ = 0;
    std::jmp_buf* escape_ = nullptr;
};

class Cleaner {
  public:
    Cleaner(const CleanOptions& options, std::size_t max_output) : options_(options), max_output_(max_output) {}

    void body_attributes(const GumboNode* body, std::string& out) {
        // The body's colours and style carry over; nothing else.
        const GumboVector& attrs = body->v.element.attributes;
        for (unsigned i = 0; i < attrs.length; ++i) {
            const auto* a = static_cast<const GumboAttribute*>(attrs.data[i]);
            const std::string_view name = a->name;
            if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE) continue;
            if (name == "style") {
                emit_style_attribute(a->value, out);
            } else if (name == "bgcolor" || name == "text" || name == "link" || name == "vlink" ||
                       name == "alink") {
                out.append(" ").append(name).append("=\"");
                escape_into(out, a->value, true);
                out.append("\"");
            }
        }
    }

    void emit_style_attribute(std::string_view value, std::string& out) {
        const std::string css = filter_declarations(normalize_css(value));
        if (css.empty()) return;
        out.append(" style=\"");
        escape_into(out, css, true);
        out.append("\"");
    }

    void emit_style_element(const GumboNode* node, std::string& out) {
        std::string text;
        const GumboVector& kids = node->v.element.children;
        for (unsigned i = 0; i < kids.length; ++i) {
            const auto* k = static_cast<const GumboNode*>(kids.data[i]);
            if (k->type == GUMBO_NODE_TEXT || k->type == GUMBO_NODE_WHITESPACE) text.append(k->v.text.text);
        }
        const std::string css = clean_css_stylesheet(text);
        if (css.empty()) return;
        out.append("<style>").append(css).append("</style>");
    }

    // The start tag of an allowed element; false if the element is to be replaced (an image
    // without an allowed source becomes its alt text).
    bool emit_start_tag(const GumboNode* node, std::string& out) {
        const GumboElement& el = node->v.element;
        const GumboTag tag = el.tag;
        std::string attrs;
        bool has_src = false;
        bool external_link = false;
        bool has_href = false;
        const char* alt = nullptr;
        for (unsigned i = 0; i < el.attributes.length; ++i) {
            const auto* a = static_cast<const GumboAttribute*>(el.attributes.data[i]);
            if (a->attr_namespace != GUMBO_ATTR_NAMESPACE_NONE) continue;
            const std::string_view name = a->name;
            if (name == "style") {
                emit_style_attribute(a->value, attrs);
                continue;
            }
            if (tag == GUMBO_TAG_A && name == "href") {
                const std::string href = clean_href(a->value, options_, external_link);
                if (href.empty() || has_href) continue;
                has_href = true;
                attrs.append(" href=\"");
                escape_into(attrs, href, true);
                attrs.append("\"");
                continue;
            }
            if (tag == GUMBO_TAG_IMG && name == "src") {
                const std::string src = clean_img_src(a->value, options_);
                if (src.empty() || has_src) continue;
                has_src = true;
                attrs.append(" src=\"");
                escape_into(attrs, src, true);
                attrs.append("\"");
                continue;
            }
            if (tag == GUMBO_TAG_IMG && name == "alt") alt = a->value;
            if (!allowed_attribute(tag, name)) continue;
            attrs.append(" ").append(name).append("=\"");
            escape_into(attrs, a->value, true);
            attrs.append("\"");
        }
        if (tag == GUMBO_TAG_IMG && !has_src) {
            if (alt != nullptr && *alt != '\0') {
                out.append("<span class=\"mv-blocked-image\">[");
                escape_into(out, alt, false);
                out.append("]</span>");
            }
            return false;
        }
        if (has_href && external_link) attrs.append(" rel=\"noopener noreferrer\" target=\"_blank\"");
        out.append("<").append(gumbo_normalized_tagname(tag)).append(attrs).append(">");
        // The parser drops one newline right after <pre>: give it one, so a leading newline of
        // the text (even after a dropped comment) survives.
        if (tag == GUMBO_TAG_PRE) out.push_back('\n');
        return true;
    }

    // Children of `root` (body or head), iteratively: mail can nest as deep as its size allows.
    // Stops adding once `out` holds max_output bytes more than at the start.
    void walk(const GumboNode* root, std::string& out) {
        const std::size_t limit = out.size() + max_output_;
        struct Frame {
            const GumboNode* node;
            unsigned next;
            const char* close;
        };
        std::vector<Frame> stack;
        stack.push_back({root, 0, nullptr});
        std::size_t open = 0;
        while (!stack.empty()) {
            Frame& f = stack.back();
            const GumboVector& kids = f.node->v.element.children;
            if (f.next >= kids.length || out.size() > limit) {
                if (f.close != nullptr) {
                    out.append("</").append(f.close).append(">");
                    --open;
                }
                stack.pop_back();
                continue;
            }
            const auto* child = static_cast<const GumboNode*>(kids.data[f.next++]);
            switch (child->type) {
                case GUMBO_NODE_TEXT:
                case GUMBO_NODE_WHITESPACE:
                    escape_into(out, child->v.text.text, false);
                    break;
                case GUMBO_NODE_ELEMENT: {
                    const GumboElement& el = child->v.element;
                    if (el.tag_namespace != GUMBO_NAMESPACE_HTML) break;  // svg, math: gone
                    if (el.tag == GUMBO_TAG_STYLE) {
                        emit_style_element(child, out);
                        break;
                    }
                    const Action action = tag_action(el.tag);
                    if (action == Action::drop) break;
                    if (action == Action::unwrap || open >= options_.max_depth) {
                        stack.push_back({child, 0, nullptr});
                        break;
                    }
                    if (!emit_start_tag(child, out)) break;
                    if (is_void(el.tag)) break;
                    stack.push_back({child, 0, gumbo_normalized_tagname(el.tag)});
                    ++open;
                    break;
                }
                default:  // comments, CDATA (only in foreign content), templates, documents
                    break;
            }
        }
    }

  private:
    const CleanOptions& options_;
    std::size_t max_output_;
};

const GumboNode* child_element(const GumboNode* parent, GumboTag tag) {
    const GumboVector& kids = parent->type == GUMBO_NODE_DOCUMENT ? parent->v.document.children
                                                                   : parent->v.element.children;
    for (unsigned i = 0; i < kids.length; ++i) {
        const auto* k = static_cast<const GumboNode*>(kids.data[i]);
        if (k->type == GUMBO_NODE_ELEMENT && k->v.element.tag == tag) return k;
    }
    return nullptr;
}

}  // namespace

std::string clean_css_declarations(std::string_view css) { return filter_declarations(normalize_css(css)); }

std::string clean_css_stylesheet(std::string_view css) {
    const std::string norm = normalize_css(css);
    std::string out;
    std::size_t i = 0;
    clean_rules(norm, i, 0, out);
    return out;
}

std::string clean_html(std::string_view html, const CleanOptions& options) {
    std::size_t cut = html.size();
    const bool truncated = html.size() > options.max_input;
    if (truncated) {
        cut = options.max_input;
        // Back off to the start of a UTF-8 sequence.
        while (cut > 0 && (static_cast<unsigned char>(html[cut]) & 0xC0) == 0x80) --cut;
    }
    const std::size_t max_output = options.max_output != 0 ? options.max_output : 4 * std::max<std::size_t>(options.max_input, 1);

    ParseArena arena(thread_cpu_seconds() + static_cast<double>(options.max_parse_ms) / 1000.0);
    GumboOptions gopts = kGumboDefaultOptions;
    gopts.max_errors = 0;  // parse errors are not kept: mail is full of them
    GumboOutput* parsed = arena.parse(gopts, html.substr(0, cut));
    // No gumbo_destroy_output: the arena frees everything (see ParseArena).

    std::string out;
    if (parsed == nullptr) {
        out = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">";
        out.append("</head><body><p class=\"mv-too-complex\">This HTML part is too complex to show here. "
                   "Download the original to see it.</p></body></html>");
        return out;
    }
    // The browser parses and lays out the result in the mode the mail's own doctype chose: a
    // mail without one (most) is built in quirks mode, where e.g. <table> stays inside <p>.
    switch (parsed->document->v.document.doc_type_quirks_mode) {
        case GUMBO_DOCTYPE_NO_QUIRKS: out = "<!DOCTYPE html>\n"; break;
        case GUMBO_DOCTYPE_LIMITED_QUIRKS:
            out = "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" "
                  "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n";
            break;
        case GUMBO_DOCTYPE_QUIRKS: break;
    }
    out.append("<html><head><meta charset=\"utf-8\">");
    out.reserve(cut + 256);
    Cleaner cleaner(options, max_output);
    const GumboNode* root = parsed->root;  // the <html> element, always present
    if (const GumboNode* head = child_element(root, GUMBO_TAG_HEAD)) {
        const GumboVector& kids = head->v.element.children;
        for (unsigned i = 0; i < kids.length; ++i) {
            const auto* k = static_cast<const GumboNode*>(kids.data[i]);
            if (k->type == GUMBO_NODE_ELEMENT && k->v.element.tag == GUMBO_TAG_STYLE &&
                k->v.element.tag_namespace == GUMBO_NAMESPACE_HTML)
                cleaner.emit_style_element(k, out);
        }
    }
    out.append("</head><body");
    const GumboNode* body = child_element(root, GUMBO_TAG_BODY);
    if (body != nullptr) {
        cleaner.body_attributes(body, out);
        out.append(">");
        cleaner.walk(body, out);
    } else {
        out.append(">");  // a <frameset> document: nothing shown
    }
    if (truncated) {
        out.append("\n<hr><p class=\"mv-truncated\">This HTML part is longer than ");
        out.append(std::to_string(options.max_input));
        out.append(" bytes; the rest is not shown. Download the original to see it all.</p>");
    }
    out.append("</body></html>");
    return out;
}

}  // namespace mv::web
