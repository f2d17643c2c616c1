#include "index/text/fold.hpp"

#include <glib.h>

#include <cstdint>
#include <memory>

namespace mv::text {
namespace {

struct GFree {
    void operator()(gchar* p) const { g_free(p); }
};
using GStr = std::unique_ptr<gchar, GFree>;

// Accents only: the combining diacritical blocks. Other marks (Indic vowel signs, kana
// voicing marks) carry meaning and stay; NFC recomposes them.
bool is_accent(gunichar c) {
    return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x1DC0 && c <= 0x1DFF) ||
           (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE20 && c <= 0xFE2F);
}

// Folds one run of non-ASCII, valid UTF-8: casefold, NFKD, drop accents, NFC.
void fold_run(std::string_view run, std::string& out) {
    GStr folded(g_utf8_casefold(run.data(), static_cast<gssize>(run.size())));
    if (!folded) return;
    GStr nfkd(g_utf8_normalize(folded.get(), -1, G_NORMALIZE_NFKD));
    if (!nfkd) {
        out += folded.get();
        return;
    }
    std::string stripped;
    stripped.reserve(std::char_traits<char>::length(nfkd.get()));
    for (const gchar* p = nfkd.get(); *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (is_accent(c)) continue;
        stripped.append(p, static_cast<std::size_t>(g_utf8_next_char(p) - p));
    }
    GStr nfc(g_utf8_normalize(stripped.data(), static_cast<gssize>(stripped.size()), G_NORMALIZE_NFC));
    if (nfc) {
        for (const gchar* p = nfc.get(); *p; ++p) {
            char ch = *p;
            out += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;  // NFKD may yield ASCII
        }
    } else {
        out += stripped;
    }
}

bool all_ascii(std::string_view s) {
    std::size_t i = 0;
    const std::size_t n = s.size();
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        __builtin_memcpy(&w, s.data() + i, 8);
        if (w & 0x8080808080808080ull) return false;
    }
    for (; i < n; ++i)
        if (static_cast<unsigned char>(s[i]) >= 0x80) return false;
    return true;
}

void ascii_lower(std::string_view s, std::string& out) {
    std::size_t base = out.size();
    out.append(s);
    for (std::size_t i = base; i < out.size(); ++i) {
        char c = out[i];
        if (c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c + 32);
    }
}

}  // namespace

std::string valid_utf8(std::string_view bytes) {
    if (all_ascii(bytes)) return std::string(bytes);
    const gchar* end = nullptr;
    if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), &end) &&
        end == bytes.data() + bytes.size())
        return std::string(bytes);
    std::string out;
    out.reserve(bytes.size() + 16);
    const char* p = bytes.data();
    const char* const e = bytes.data() + bytes.size();
    while (p < e) {
        const gchar* bad = nullptr;
        if (g_utf8_validate(p, e - p, &bad)) {
            out.append(p, e);
            break;
        }
        out.append(p, bad);
        if (*bad == '\0' && bad < e) {  // embedded NUL: valid UTF-8, keep it
            out.push_back('\0');
            p = bad + 1;
            continue;
        }
        out += "\xEF\xBF\xBD";
        // Skip the bad lead byte and any continuation bytes that belong to it.
        p = bad + 1;
        while (p < e && (static_cast<unsigned char>(*p) & 0xC0) == 0x80) ++p;
    }
    return out;
}

std::string fold(std::string_view utf8) {
    std::string out;
    out.reserve(utf8.size());
    if (all_ascii(utf8)) {
        ascii_lower(utf8, out);
        return out;
    }
    std::string valid;
    std::string_view s = utf8;
    {
        const gchar* end = nullptr;
        if (!g_utf8_validate(utf8.data(), static_cast<gssize>(utf8.size()), &end) ||
            end != utf8.data() + utf8.size()) {
            valid = valid_utf8(utf8);
            s = valid;
        }
    }
    // ASCII runs take the fast path; each non-ASCII run goes through GLib. Splitting at
    // ASCII is safe because accents are dropped, never composed onto the ASCII letter.
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        std::size_t j = i;
        while (j < n && static_cast<unsigned char>(s[j]) < 0x80) ++j;
        if (j > i) ascii_lower(s.substr(i, j - i), out);
        if (j >= n) break;
        std::size_t k = j;
        while (k < n && static_cast<unsigned char>(s[k]) >= 0x80) ++k;
        fold_run(s.substr(j, k - j), out);
        i = k;
    }
    return out;
}

}  // namespace mv::text
