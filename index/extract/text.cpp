// Text-like attachments: plain text in any charset, EDIFACT, XML (and the XML of office formats).
#include <glib.h>
#include <libxml/xmlreader.h>

#include <cstring>
#include <memory>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

bool is_utf8(std::string_view s) { return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr); }

std::string converted(std::string_view bytes, const char* from) {
    gsize written = 0;
    gchar* out = g_convert_with_fallback(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8", from, "?", nullptr,
                                         &written, nullptr);
    if (!out) return {};
    std::string s(out, written);
    g_free(out);
    return s;
}

// `bytes` as UTF-8: the declared charset, else UTF-8 if valid, else windows-1252.
std::string as_utf8(std::string_view bytes, std::string_view charset) {
    if (bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);
    std::string cs(charset);
    if (!cs.empty() && g_ascii_strcasecmp(cs.c_str(), "utf-8") != 0 && g_ascii_strcasecmp(cs.c_str(), "us-ascii") != 0) {
        std::string s = converted(bytes, cs.c_str());
        if (!s.empty()) return s;
    } else if (bytes.starts_with("\xFF\xFE") || bytes.starts_with("\xFE\xFF")) {
        std::string s = converted(bytes, "UTF-16");
        if (!s.empty()) return s;
    }
    if (is_utf8(bytes)) return std::string(bytes);
    std::string s = converted(bytes, "WINDOWS-1252");
    if (!s.empty()) return s;
    gchar* valid = g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size()));
    std::string out(valid);
    g_free(valid);
    return out;
}

struct ReaderFree {
    void operator()(xmlTextReader* r) const { xmlFreeTextReader(r); }
};

bool is_break(std::string_view local) {
    // Paragraphs, rows, cells and line breaks of WordprocessingML, SpreadsheetML, DrawingML
    // and ODF; "s" and "tab" are ODF/Word spaces.
    static constexpr std::string_view k[] = {"p",   "br",  "tab", "tr",   "tc",        "c",    "si",  "row",
                                             "h",   "s",   "cr",  "line-break", "table-cell", "table-row", "list-item",
                                             "v",   "is"};
    for (auto b : k)
        if (local == b) return true;
    return false;
}

}  // namespace

Extracted text_like(std::string_view bytes, std::string_view charset, const Limits& limits) {
    Extracted r{Status::indexed, {}, {}};
    append_text(r.text, as_utf8(bytes.substr(0, limits.max_text * 2), charset), limits.max_text);
    return r;
}

Extracted edifact(std::string_view bytes, std::string_view charset, const Limits& limits) {
    // UNA:+.? ' sets the separators (component, element, decimal, release, -, segment).
    char component = ':', element = '+', release = '?', segment = '\'';
    if (bytes.starts_with("UNA") && bytes.size() >= 9) {
        component = bytes[3];
        element = bytes[4];
        release = bytes[6];
        segment = bytes[8];
        bytes.remove_prefix(9);
    }
    std::string text = as_utf8(bytes.substr(0, limits.max_text * 2), charset);
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == release && i + 1 < text.size()) {
            out.push_back(text[++i]);
            continue;
        }
        if (c == segment) out.push_back('\n');
        else if (c == element || c == component) out.push_back(' ');
        else out.push_back(c);
    }
    Extracted r{Status::indexed, {}, {}};
    append_text(r.text, out, limits.max_text);
    return r;
}

bool xml_words(std::string_view xml, std::string_view kind, std::string& out, std::size_t cap) {
    if (xml.size() > static_cast<std::size_t>(INT32_MAX)) return false;
    static const bool initialised = (xmlInitParser(), true);  // once, before threads share libxml2
    (void)initialised;
    // No network, no entity substitution, no DTD loading: entity expansion bombs stay small.
    std::unique_ptr<xmlTextReader, ReaderFree> reader(xmlReaderForMemory(
        xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_COMPACT | XML_PARSE_NOBLANKS));
    if (!reader) return false;
    const bool xlsx = kind == "xlsx";
    bool shared_string_cell = false;  // in an xlsx <c t="s">: its <v> is an index, not a value
    bool in_v = false;
    int rc;
    while ((rc = xmlTextReaderRead(reader.get())) == 1 && out.size() < cap) {
        const int type = xmlTextReaderNodeType(reader.get());
        if (type == XML_READER_TYPE_ELEMENT || type == XML_READER_TYPE_END_ELEMENT) {
            const char* local = reinterpret_cast<const char*>(xmlTextReaderConstLocalName(reader.get()));
            std::string_view name = local ? local : "";
            if (xlsx && name == "c" && type == XML_READER_TYPE_ELEMENT) {
                xmlChar* t = xmlTextReaderGetAttribute(reader.get(), BAD_CAST "t");
                shared_string_cell = t && std::strcmp(reinterpret_cast<const char*>(t), "s") == 0;
                xmlFree(t);
            }
            if (name == "v") in_v = type == XML_READER_TYPE_ELEMENT && !xmlTextReaderIsEmptyElement(reader.get());
            if ((type == XML_READER_TYPE_END_ELEMENT || xmlTextReaderIsEmptyElement(reader.get())) && is_break(name) &&
                !out.empty() && out.back() != ' ' && out.back() != '\n')
                out.push_back(name == "p" || name == "row" || name == "tr" || name == "h" ? '\n' : ' ');
        } else if (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
                   type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) {
            if (xlsx && in_v && shared_string_cell) continue;
            const char* v = reinterpret_cast<const char*>(xmlTextReaderConstValue(reader.get()));
            if (v) {
                std::size_t n = std::min(std::strlen(v), cap - out.size());
                out.append(v, n);
            }
        }
    }
    return rc == 0 || out.size() >= cap;
}

Extracted xml_text(std::string_view bytes, const Limits& limits) {
    Extracted r{Status::indexed, {}, {}};
    std::string words;
    if (xml_words(bytes, "xml", words, limits.max_text)) {
        append_text(r.text, words, limits.max_text);
        return r;
    }
    return text_like(bytes, {}, limits);  // not well-formed: its text as it stands
}

}  // namespace mv::index::extract
