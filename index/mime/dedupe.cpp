#include "index/mime/dedupe.hpp"

#include <array>
#include <optional>
#include <string>

namespace mv::index {
namespace {

constexpr std::array<std::string_view, 6> k_identity{"message-id", "date", "from", "to", "cc", "subject"};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (x != y) return false;
    }
    return true;
}

std::string unfold_trim(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v)
        if (c != '\r' && c != '\n') out.push_back(c);
    auto ws = [](char c) { return c == ' ' || c == '\t'; };
    std::size_t b = 0, e = out.size();
    while (b < e && ws(out[b])) ++b;
    while (e > b && ws(out[e - 1])) --e;
    return out.substr(b, e - b);
}

}  // namespace

Digest dedupe_key(std::string_view raw) {
    std::array<std::optional<std::string>, k_identity.size()> values;
    std::size_t pos = 0;
    std::size_t body_start = raw.size();
    // Walk header lines; a line starting with space/tab continues the previous header.
    while (pos < raw.size()) {
        std::size_t eol = raw.find('\n', pos);
        std::size_t line_end = eol == std::string_view::npos ? raw.size() : eol;
        std::string_view line = raw.substr(pos, line_end - pos);
        if (line.empty() || line == "\r") {
            body_start = eol == std::string_view::npos ? raw.size() : eol + 1;
            break;
        }
        // Extent of this header including continuation lines.
        std::size_t next = eol == std::string_view::npos ? raw.size() : eol + 1;
        while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
            std::size_t e2 = raw.find('\n', next);
            next = e2 == std::string_view::npos ? raw.size() : e2 + 1;
        }
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = line.substr(0, colon);
            while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
            for (std::size_t i = 0; i < k_identity.size(); ++i) {
                if (!values[i] && iequals(name, k_identity[i])) {
                    values[i] = unfold_trim(raw.substr(pos + colon + 1, next - (pos + colon + 1)));
                    break;
                }
            }
        }
        pos = next;
        body_start = pos;
    }
    Sha256 h;
    for (std::size_t i = 0; i < k_identity.size(); ++i) {
        h.update(k_identity[i]);
        if (values[i]) {
            std::string len = "=" + std::to_string(values[i]->size()) + ":";
            h.update(len);
            h.update(*values[i]);
        } else {
            h.update("-");
        }
        h.update("\n");
    }
    h.update("body\n");
    // Body with CRLF normalised to LF, hashed in runs between CRs.
    std::string_view body = raw.substr(std::min(body_start, raw.size()));
    std::size_t start = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') {
            h.update(body.substr(start, i - start));
            start = i + 1;
        }
    }
    h.update(body.substr(start));
    return h.final();
}

}  // namespace mv::index
