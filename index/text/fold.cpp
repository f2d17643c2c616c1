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

namespace {

// Code points that fold to themselves and compose with nothing before them: CJK
// ideographs, kana, precomposed Hangul. CJK text is mostly these; copying them keeps
// the indexing hot path out of GLib.
bool is_stable(gunichar c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x3041 && c <= 0x3096) ||
           (c >= 0x30A1 && c <= 0x30FA) || c == 0x30FC || (c >= 0xAC00 && c <= 0xD7A3) || c == 0x3001 || c == 0x3002;
}

// Code points that may combine with the one before them (marks, conjoining jamo): they
// are folded together with it.
bool combines_backwards(gunichar c) {
    return (c >= 0x1100 && c <= 0x11FF) || (c >= 0xA960 && c <= 0xA97F) || (c >= 0xD7B0 && c <= 0xD7FF) ||
           g_unichar_ismark(c);
}

constexpr gunichar k_cached_first = 0x80, k_cached_last = 0x4FF;  // Latin, Greek, Cyrillic

// Per-thread memo of single code point folds for the alphabets most mail uses.
const std::string& cached_fold(gunichar c) {
    struct Memo {
        std::string value[k_cached_last - k_cached_first + 1];
        bool known[k_cached_last - k_cached_first + 1] = {};
    };
    thread_local Memo memo;
    std::size_t k = c - k_cached_first;
    if (!memo.known[k]) {
        char buf[8];
        int len = g_unichar_to_utf8(c, buf);
        fold_run(std::string_view(buf, static_cast<std::size_t>(len)), memo.value[k]);
        memo.known[k] = true;
    }
    return memo.value[k];
}

}  // namespace

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
    // One pass: ASCII, stable and memoised code points are appended directly; anything
    // else collects into a run that GLib folds as a whole (with the code point before a
    // combining one, so NFC can compose them as it would in the whole text).
    const std::size_t npos = std::string_view::npos;
    std::size_t run = npos;                   // start of the pending GLib run
    std::size_t prev_in = npos, prev_out = 0; // last directly appended code point
    auto flush = [&](std::size_t end) {
        if (run != npos) fold_run(s.substr(run, end - run), out);
        run = npos;
    };
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            flush(i);
            prev_in = i;
            prev_out = out.size();
            out += (b >= 'A' && b <= 'Z') ? static_cast<char>(b + 32) : static_cast<char>(b);
            ++i;
            continue;
        }
        const gunichar c = g_utf8_get_char(s.data() + i);
        const std::size_t len = static_cast<std::size_t>(g_utf8_next_char(s.data() + i) - (s.data() + i));
        if (combines_backwards(c)) {
            if (run == npos) {
                if (prev_in != npos) {
                    out.resize(prev_out);
                    run = prev_in;
                } else {
                    run = i;
                }
            }
            prev_in = npos;
        } else if (is_stable(c) || (c >= k_cached_first && c <= k_cached_last)) {
            flush(i);
            prev_in = i;
            prev_out = out.size();
            if (is_stable(c)) out.append(s.data() + i, len);
            else out += cached_fold(c);
        } else {
            if (run == npos) run = i;
            prev_in = npos;
        }
        i += len;
    }
    flush(n);
    return out;
}

}  // namespace mv::text
