#include "ingest/net/utf7.hpp"

#include <cstdint>
#include <vector>

namespace mv::ingest::net {
namespace {

constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == ',') return 63;
    return -1;
}

void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Next code point of UTF-8 text; invalid bytes map to U+FFFD.
std::uint32_t next_cp(std::string_view s, std::size_t& i) {
    unsigned char c = static_cast<unsigned char>(s[i++]);
    if (c < 0x80) return c;
    int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (n < 0) return 0xFFFD;
    std::uint32_t cp = c & (0x3F >> n);
    for (int k = 0; k < n; ++k) {
        if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3F);
    }
    return cp;
}

}  // namespace

std::string mutf7_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size();) {
        char c = in[i];
        if (c != '&') {
            out += c;
            ++i;
            continue;
        }
        std::size_t end = in.find('-', i + 1);
        if (end == std::string_view::npos) return std::string(in);
        if (end == i + 1) {
            out += '&';
            i = end + 1;
            continue;
        }
        std::vector<std::uint16_t> units;
        std::uint32_t acc = 0;
        int bits = 0;
        for (std::size_t k = i + 1; k < end; ++k) {
            int v = b64_value(in[k]);
            if (v < 0) return std::string(in);
            acc = (acc << 6) | static_cast<std::uint32_t>(v);
            bits += 6;
            if (bits >= 16) {
                bits -= 16;
                units.push_back(static_cast<std::uint16_t>((acc >> bits) & 0xFFFF));
            }
        }
        for (std::size_t k = 0; k < units.size(); ++k) {
            std::uint32_t u = units[k];
            if (u >= 0xD800 && u < 0xDC00 && k + 1 < units.size() && units[k + 1] >= 0xDC00 && units[k + 1] < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (units[k + 1] - 0xDC00);
                ++k;
            }
            put_utf8(out, u);
        }
        i = end + 1;
    }
    return out;
}

std::string mutf7_encode(std::string_view in) {
    std::string out;
    std::vector<std::uint16_t> pending;
    auto flush = [&] {
        if (pending.empty()) return;
        out += '&';
        std::uint32_t acc = 0;
        int bits = 0;
        for (auto u : pending) {
            acc = (acc << 16) | u;
            bits += 16;
            while (bits >= 6) {
                bits -= 6;
                out += k_b64[(acc >> bits) & 0x3F];
            }
        }
        if (bits > 0) out += k_b64[(acc << (6 - bits)) & 0x3F];
        out += '-';
        pending.clear();
    };
    for (std::size_t i = 0; i < in.size();) {
        std::uint32_t cp = next_cp(in, i);
        if (cp >= 0x20 && cp < 0x7F) {
            flush();
            if (cp == '&')
                out += "&-";
            else
                out += static_cast<char>(cp);
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            pending.push_back(static_cast<std::uint16_t>(0xD800 + (cp >> 10)));
            pending.push_back(static_cast<std::uint16_t>(0xDC00 + (cp & 0x3FF)));
        } else {
            pending.push_back(static_cast<std::uint16_t>(cp));
        }
    }
    flush();
    return out;
}

}  // namespace mv::ingest::net
