#include "index/mime/dedupe.hpp"

#include <array>
#include <optional>
#include <string>

namespace mv::index {
namespace {

constexpr std::array<std::string_view, 6> k_identity{"message-id", "date", "from", "to", "cc", "subject"};
// Message-ID, From, Subject: without a non-empty one of them a message has too little identity.
constexpr std::array<std::size_t, 3> k_strong_identity{0, 2, 5};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (x != y) return false;
    }
    return true;
}

bool blank(char c) { return c == ' ' || c == '\t'; }
bool line_end_char(char c) { return c == '\r' || c == '\n'; }

// A header value as DESIGN.md compares it: unfolded (CR and LF removed) and trimmed of blanks,
// kept as a range of the raw bytes so that a huge header is never copied.
struct Value {
    std::string_view raw;  // from the first to the last kept character; may hold CRs and LFs
    std::size_t size = 0;  // length once CRs and LFs are removed
};

Value unfolded_trimmed(std::string_view v) {
    std::size_t b = 0, e = v.size();
    while (b < e && (blank(v[b]) || line_end_char(v[b]))) ++b;
    while (e > b && (blank(v[e - 1]) || line_end_char(v[e - 1]))) --e;
    Value out{v.substr(b, e - b), 0};
    for (char c : out.raw)
        if (!line_end_char(c)) ++out.size;
    return out;
}

void hash_unfolded(Sha256& h, std::string_view v) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (line_end_char(v[i])) {
            if (i > start) h.update(v.substr(start, i - start));
            start = i + 1;
        }
    }
    if (start < v.size()) h.update(v.substr(start));
}

// A line of nothing but CRs ends the header block (CRLF, and Courier's CR CR LF).
bool empty_line(std::string_view line) { return line.find_first_not_of('\r') == std::string_view::npos; }

bool field_name_char(unsigned char c) { return c >= 33 && c <= 126 && c != ':'; }

// "Name:" or "Name :" at the start of `line`.
bool header_field_line(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && field_name_char(static_cast<unsigned char>(line[i]))) ++i;
    if (i == 0) return false;
    while (i < line.size() && blank(line[i])) ++i;
    return i < line.size() && line[i] == ':';
}

}  // namespace

Digest dedupe_key(std::string_view raw) {
    std::array<std::optional<Value>, k_identity.size()> values;
    std::size_t pos = 0;
    std::size_t body_start = raw.size();
    // Walk header lines; a line starting with space/tab continues the previous header.
    while (pos < raw.size()) {
        std::size_t eol = raw.find('\n', pos);
        std::size_t line_end = eol == std::string_view::npos ? raw.size() : eol;
        std::string_view line = raw.substr(pos, line_end - pos);
        if (empty_line(line)) {
            body_start = eol == std::string_view::npos ? raw.size() : eol + 1;
            break;
        }
        // Extent of this header including continuation lines.
        std::size_t next = eol == std::string_view::npos ? raw.size() : eol + 1;
        while (next < raw.size() && blank(raw[next])) {
            std::size_t e2 = raw.find('\n', next);
            next = e2 == std::string_view::npos ? raw.size() : e2 + 1;
        }
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view name = line.substr(0, colon);
            while (!name.empty() && blank(name.back())) name.remove_suffix(1);
            for (std::size_t i = 0; i < k_identity.size(); ++i) {
                if (!values[i] && iequals(name, k_identity[i])) {
                    values[i] = unfolded_trimmed(raw.substr(pos + colon + 1, next - (pos + colon + 1)));
                    break;
                }
            }
        }
        pos = next;
        body_start = pos;
    }

    Sha256 h;
    bool identity = false;
    for (std::size_t i : k_strong_identity) identity = identity || (values[i] && values[i]->size > 0);
    if (!identity) {
        // Same only as a byte-identical copy. The prefix keeps this apart from the other form,
        // which starts with "message-id".
        h.update("bytes\n");
        h.update(raw);
        return h.final();
    }
    for (std::size_t i = 0; i < k_identity.size(); ++i) {
        h.update(k_identity[i]);
        if (values[i]) {
            std::string len = "=" + std::to_string(values[i]->size) + ":";
            h.update(len);
            hash_unfolded(h, values[i]->raw);
        } else {
            h.update("-");
        }
        h.update("\n");
    }
    h.update("body\n");
    // The body with every run of CRs before an LF dropped, hashed in the runs between them.
    std::string_view body = raw.substr(std::min(body_start, raw.size()));
    std::size_t start = 0;
    for (std::size_t i = 0; i < body.size();) {
        if (body[i] != '\r') {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < body.size() && body[j] == '\r') ++j;
        if (j < body.size() && body[j] == '\n') {
            h.update(body.substr(start, i - start));
            start = j;
        }
        i = j;
    }
    h.update(body.substr(start));
    return h.final();
}

std::string not_mail_reason(std::string_view raw) {
    if (raw.empty()) return "empty file";
    std::string_view window = raw.substr(0, std::min(raw.size(), k_mail_check_bytes));
    std::size_t pos = 0;
    std::size_t lines = 0, header_lines = 0, fields = 0;
    bool in_field = false, started = false;
    while (pos < window.size() && lines < k_mail_check_lines) {
        std::size_t eol = window.find('\n', pos);
        std::size_t line_end = eol == std::string_view::npos ? window.size() : eol;
        std::string_view line = window.substr(pos, line_end - pos);
        pos = eol == std::string_view::npos ? window.size() : eol + 1;
        if (empty_line(line)) {
            if (started) break;  // the end of the header block
            continue;            // leading empty lines
        }
        if (!started && line.starts_with("From ")) {  // mbox envelope line
            started = true;
            continue;
        }
        started = true;
        ++lines;
        if (header_field_line(line)) {
            ++fields;
            ++header_lines;
            in_field = true;
        } else if (in_field && blank(line.front())) {
            ++header_lines;
        } else {
            in_field = false;
        }
    }
    if (!started) return "no header block (only empty lines)";
    if (fields == 0) return "no header block (no \"Name: value\" line before the first empty line)";
    if (header_lines * 2 < lines)
        return "no header block (" + std::to_string(header_lines) + " of " + std::to_string(lines) +
               " lines before the first empty line are headers)";
    return {};
}

}  // namespace mv::index
