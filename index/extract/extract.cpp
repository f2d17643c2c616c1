#include "index/extract/extract.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

constexpr std::array<std::pair<std::string_view, std::string_view>, 20> k_types{{
    {"application/pdf", "pdf"},
    {"application/x-pdf", "pdf"},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"},
    {"application/vnd.oasis.opendocument.text", "odt"},
    {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
    {"application/vnd.oasis.opendocument.presentation", "odp"},
    {"application/rtf", "rtf"},
    {"text/rtf", "rtf"},
    {"text/richtext", "rtf"},
    {"text/html", "html"},
    {"application/xhtml+xml", "html"},
    {"message/rfc822", "message"},
    {"message/global", "message"},
    {"application/zip", "zip"},
    {"application/x-zip-compressed", "zip"},
    {"application/x-zip", "zip"},
    {"application/edifact", "edifact"},
    {"application/edi-x12", "text"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 33> k_extensions{{
    {"pdf", "pdf"},   {"docx", "docx"}, {"docm", "docx"}, {"dotx", "docx"}, {"xlsx", "xlsx"},
    {"xlsm", "xlsx"}, {"pptx", "pptx"}, {"pptm", "pptx"}, {"odt", "odt"},   {"ods", "ods"},
    {"odp", "odp"},   {"rtf", "rtf"},   {"htm", "html"},  {"html", "html"}, {"eml", "message"},
    {"zip", "zip"},   {"edi", "edifact"}, {"mscons", "edifact"}, {"edifact", "edifact"}, {"txt", "text"},
    {"csv", "text"},  {"tsv", "text"},  {"ics", "text"},  {"vcf", "text"},  {"json", "text"},
    {"log", "text"},  {"md", "text"},   {"xml", "xml"},   {"ini", "text"},  {"yaml", "text"},
    {"yml", "text"},  {"patch", "text"}, {"diff", "text"},
}};

bool text_type(std::string_view t) {
    return t.starts_with("text/") || t == "application/json" || t == "application/csv" ||
           t == "application/x-sh" || t == "application/javascript" || t == "application/x-patch" ||
           t == "application/x-diff" || t == "application/ics" || t == "application/x-vcard" ||
           t == "message/delivery-status" || t.ends_with("+json");
}

// Types that say nothing about the content: the file name or the bytes decide.
bool generic_type(std::string_view t) {
    return t.empty() || t == "application/octet-stream" || t == "application/x-download" ||
           t == "application/force-download" || t == "application/binary" || t == "application/unknown";
}

std::string_view sniff(std::string_view head) {
    if (head.starts_with("%PDF-")) return "pdf";
    if (head.starts_with("{\\rtf")) return "rtf";
    if (head.starts_with("PK\x03\x04")) return "zip";
    if (head.starts_with("UNA") || head.starts_with("UNB+")) return "edifact";
    return {};
}

}  // namespace

std::string_view status_name(Status s) {
    switch (s) {
        case Status::none: return "";
        case Status::indexed: return "indexed";
        case Status::too_large: return "too_large";
        case Status::encrypted: return "encrypted";
        case Status::unsupported: return "unsupported";
        case Status::failed: return "failed";
        case Status::timed_out: return "timed_out";
        case Status::skipped: return "skipped";
    }
    return "";
}

Status status_from_name(std::string_view name) {
    for (Status s : {Status::indexed, Status::too_large, Status::encrypted, Status::unsupported, Status::failed,
                     Status::timed_out, Status::skipped})
        if (status_name(s) == name) return s;
    return Status::none;
}

std::string status_text(Status s, std::string_view reason) {
    switch (s) {
        case Status::none: return "";
        case Status::indexed: return "indexed";
        case Status::too_large: return reason.empty() ? "too large" : "too large: " + std::string(reason);
        case Status::encrypted: return "encrypted";
        case Status::unsupported: return "unsupported type";
        case Status::failed: return "failed: " + std::string(reason.empty() ? "unknown reason" : reason);
        case Status::timed_out: return "timed out";
        case Status::skipped: return "not extracted: " + std::string(reason);
    }
    return "";
}

std::string extension_of(std::string_view filename) {
    auto slash = filename.find_last_of("/\\");
    if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
    auto dot = filename.rfind('.');
    if (dot == std::string_view::npos || dot + 1 >= filename.size() || filename.size() - dot > 9) return {};
    return lower(filename.substr(dot + 1));
}

std::string kind_of(std::string_view mime_type, std::string_view filename, std::string_view head) {
    const std::string type = lower(mime_type);
    for (const auto& [t, k] : k_types)
        if (type == t) return std::string(k);
    const std::string ext = extension_of(filename);
    // An extension decides for generic types, and refines text/* (text/plain "x.csv", "x.edi").
    if (generic_type(type) || text_type(type) || type.ends_with("xml")) {
        for (const auto& [e, k] : k_extensions)
            if (ext == e) {
                if (text_type(type) && k != "edifact" && k != "xml" && k != "html" && k != "text") break;
                return std::string(k);
            }
    }
    if (auto s = sniff(head); !s.empty() && (generic_type(type) || text_type(type))) return std::string(s);
    if (type == "application/xml" || type == "text/xml" || type.ends_with("+xml")) return "xml";
    if (text_type(type)) return "text";
    return {};
}

void append_text(std::string& out, std::string_view text, std::size_t cap) {
    if (out.size() >= cap || text.empty()) return;
    if (!out.empty() && out.back() != '\n' && out.back() != ' ') {
        out.push_back('\n');
        if (out.size() >= cap) return;
    }
    std::size_t n = std::min(text.size(), cap - out.size());
    if (n < text.size())
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
    const std::size_t from = out.size();
    out.append(text.substr(0, n));
    std::replace(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), '\0', ' ');
}

Extracted extract(std::string_view bytes, std::string_view mime_type, std::string_view filename,
                  std::string_view charset, const Limits& limits, const Hooks& hooks, int depth) {
    Extracted r;
    if (bytes.size() > limits.max_bytes) {
        r.status = Status::too_large;
        r.reason = "over " + std::to_string(limits.max_bytes) + " bytes";
        return r;
    }
    const std::string kind = kind_of(mime_type, filename, bytes.substr(0, 8));
    const auto deadline = Clock::now() + limits.timeout;
    try {
        if (kind.empty()) {
            r.status = Status::unsupported;
        } else if (kind == "pdf") {
            r = pdf(bytes, limits);
        } else if (kind == "docx" || kind == "xlsx" || kind == "pptx" || kind == "odt" || kind == "ods" || kind == "odp") {
            r = office(bytes, kind, limits);
        } else if (kind == "rtf") {
            r = rtf(bytes, limits);
        } else if (kind == "edifact") {
            r = edifact(bytes, charset, limits);
        } else if (kind == "xml") {
            r = xml_text(bytes, limits);
        } else if (kind == "text") {
            r = text_like(bytes, charset, limits);
        } else if (kind == "html") {
            Extracted t = text_like(bytes, charset, Limits{.max_text = std::max<std::size_t>(limits.max_text, 1u << 20)});
            r.status = Status::indexed;
            if (hooks.html_to_text) append_text(r.text, hooks.html_to_text(t.text), limits.max_text);
        } else if (kind == "message" || kind == "zip") {
            if (depth >= limits.max_depth) {
                r.status = Status::failed;
                r.reason = "nested more than " + std::to_string(limits.max_depth) + " containers deep";
            } else if (kind == "zip") {
                r = zip(bytes, limits, hooks, depth, deadline);
            } else if (hooks.message_text) {
                r.status = Status::indexed;
                append_text(r.text, hooks.message_text(bytes, depth + 1), limits.max_text);
            }
        }
    } catch (const std::bad_alloc&) {
        r = Extracted{Status::failed, "out of memory", {}};
    } catch (const std::exception& e) {
        r = Extracted{Status::failed, e.what(), {}};
    }
    return r;
}

}  // namespace mv::index::extract
