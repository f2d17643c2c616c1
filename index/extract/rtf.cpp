// RTF: a small bounded reader. Text of the body; destinations that are not text (font and
// colour tables, pictures, objects, \* groups) skipped; \'hh in the document's code page,
// \uN as Unicode (then \ucN fallback characters skipped). Linear in the input, depth-limited.
#include <glib.h>

#include <cctype>
#include <string>
#include <vector>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

void put_unicode(std::string& out, std::uint32_t cp) {
    char buf[8];
    int n = g_unichar_to_utf8(cp, buf);
    out.append(buf, static_cast<std::size_t>(n));
}

// A byte of the document's ANSI code page (windows-1252 unless \ansicpgN says otherwise).
void put_ansi(std::string& out, unsigned char byte, int codepage) {
    if (byte < 0x80) {
        out.push_back(static_cast<char>(byte));
        return;
    }
    std::string cp = "WINDOWS-" + std::to_string(codepage > 0 ? codepage : 1252);
    char in = static_cast<char>(byte);
    gsize written = 0;
    gchar* s = g_convert(&in, 1, "UTF-8", cp.c_str(), nullptr, &written, nullptr);
    if (!s) s = g_convert(&in, 1, "UTF-8", "WINDOWS-1252", nullptr, &written, nullptr);
    if (s) {
        out.append(s, written);
        g_free(s);
    }
}

bool skipped_destination(std::string_view word) {
    static constexpr std::string_view k[] = {"fonttbl", "colortbl", "stylesheet", "info",     "pict",  "object",
                                             "header",  "footer",   "listtable",  "listoverridetable", "rsidtbl",
                                             "generator", "themedata", "colorschememapping", "datastore", "latentstyles",
                                             "xmlnstbl", "fldinst", "filetbl", "revtbl", "pgdsctbl", "bkmkstart", "bkmkend"};
    for (auto d : k)
        if (word == d) return true;
    return false;
}

}  // namespace

Extracted rtf(std::string_view in, const Limits& limits) {
    if (!in.starts_with("{\\rtf")) return {Status::failed, "not RTF (no {\\rtf at the start)", {}};
    struct Group {
        bool skip;
        int uc;  // fallback characters after \uN
    };
    constexpr std::size_t k_max_depth = 256;
    std::vector<Group> groups;
    groups.reserve(16);
    Group cur{false, 1};
    int codepage = 1252;
    int pending_skip = 0;  // fallback characters still to drop after a \uN
    std::string out;
    const std::size_t cap = limits.max_text;
    for (std::size_t i = 0; i < in.size() && out.size() < cap;) {
        char c = in[i];
        if (c == '{') {
            if (groups.size() >= k_max_depth) return {Status::failed, "RTF groups nested too deep", {}};
            groups.push_back(cur);
            ++i;
            // {\*\dest ...}: an optional destination, skipped unless known as text.
            if (in.substr(i).starts_with("\\*")) cur.skip = true;
            continue;
        }
        if (c == '}') {
            if (!groups.empty()) {
                cur = groups.back();
                groups.pop_back();
            }
            pending_skip = 0;
            ++i;
            continue;
        }
        if (c == '\r' || c == '\n') {
            ++i;
            continue;
        }
        if (c != '\\') {
            if (pending_skip > 0) --pending_skip;
            else if (!cur.skip) out.push_back(c);
            ++i;
            continue;
        }
        // a control word or symbol
        ++i;
        if (i >= in.size()) break;
        char s = in[i];
        if (s == '\\' || s == '{' || s == '}') {
            if (pending_skip > 0) --pending_skip;
            else if (!cur.skip) out.push_back(s);
            ++i;
            continue;
        }
        if (s == '\'') {  // \'hh
            if (i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
                std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
                unsigned v = static_cast<unsigned>(std::stoul(std::string(in.substr(i + 1, 2)), nullptr, 16));
                if (pending_skip > 0) --pending_skip;
                else if (!cur.skip) put_ansi(out, static_cast<unsigned char>(v), codepage);
            }
            i += 3;
            continue;
        }
        if (s == '~') {  // non-breaking space
            if (!cur.skip) out.push_back(' ');
            ++i;
            continue;
        }
        if (!std::isalpha(static_cast<unsigned char>(s))) {  // other symbols: \-, \_, \*, \:, ...
            ++i;
            continue;
        }
        std::size_t w = i;
        while (i < in.size() && i - w < 32 && std::isalpha(static_cast<unsigned char>(in[i]))) ++i;
        std::string_view word = in.substr(w, i - w);
        bool has_param = false;
        long param = 0;
        bool neg = false;
        if (i < in.size() && in[i] == '-') {
            neg = true;
            ++i;
        }
        std::size_t d = i;
        while (i < in.size() && i - d < 10 && std::isdigit(static_cast<unsigned char>(in[i]))) {
            param = param * 10 + (in[i] - '0');
            has_param = true;
            ++i;
        }
        if (neg) param = -param;
        if (i < in.size() && in[i] == ' ') ++i;  // the delimiter space belongs to the control word
        if (skipped_destination(word)) {
            cur.skip = true;
        } else if (word == "bin" && has_param && param > 0) {  // binary data: skipped whole
            i += static_cast<std::size_t>(param);
        } else if (word == "ansicpg" && has_param) {
            codepage = static_cast<int>(param);
        } else if (word == "uc" && has_param) {
            cur.uc = static_cast<int>(std::max(0L, param));
        } else if (word == "u" && has_param) {
            if (!cur.skip) put_unicode(out, static_cast<std::uint32_t>(param < 0 ? param + 65536 : param));
            pending_skip = cur.uc;
        } else if (!cur.skip) {
            if (word == "par" || word == "line" || word == "sect" || word == "page" || word == "row") out.push_back('\n');
            else if (word == "tab" || word == "cell" || word == "emspace" || word == "enspace") out.push_back(' ');
            else if (word == "emdash") out.append("\xE2\x80\x94");
            else if (word == "endash") out.append("\xE2\x80\x93");
            else if (word == "lquote" || word == "rquote") out.push_back('\'');
            else if (word == "ldblquote" || word == "rdblquote") out.push_back('"');
            else if (word == "bullet") out.append("\xE2\x80\xA2");
        }
    }
    Extracted r{Status::indexed, {}, {}};
    gchar* valid = g_utf8_make_valid(out.data(), static_cast<gssize>(out.size()));
    append_text(r.text, valid, cap);
    g_free(valid);
    return r;
}

}  // namespace mv::index::extract
