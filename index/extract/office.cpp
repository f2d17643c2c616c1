// OOXML (docx, xlsx, pptx) and ODF (odt, ods, odp): a zip of XML parts; the words are in
// known parts. Encrypted OOXML is an OLE compound file, encrypted ODF says so in its manifest.
#include <algorithm>
#include <vector>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

bool wanted_part(std::string_view kind, std::string_view name) {
    auto xml = name.ends_with(".xml");
    if (kind == "docx")
        return xml && (name == "word/document.xml" || name.starts_with("word/header") || name.starts_with("word/footer") ||
                       name == "word/footnotes.xml" || name == "word/endnotes.xml" || name == "word/comments.xml");
    if (kind == "xlsx") return xml && (name == "xl/sharedStrings.xml" || name.starts_with("xl/worksheets/sheet"));
    if (kind == "pptx") return xml && (name.starts_with("ppt/slides/slide") || name.starts_with("ppt/notesSlides/"));
    return name == "content.xml" || name == "styles.xml";  // ODF
}

}  // namespace

Extracted office(std::string_view bytes, std::string_view kind, const Limits& limits) {
    if (bytes.starts_with("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")) {
        // An OLE compound file under an OOXML name is Office's encrypted package.
        if (kind == "docx" || kind == "xlsx" || kind == "pptx") return {Status::encrypted, {}, {}};
        return {Status::unsupported, {}, {}};
    }
    ZipReader z(bytes);
    if (!z.ok()) return {Status::failed, "not a readable " + std::string(kind) + " (zip) file", {}};
    const bool odf = kind == "odt" || kind == "ods" || kind == "odp";
    if (odf) {
        std::size_t m = z.find("META-INF/manifest.xml");
        std::string manifest;
        if (m < z.count() && z.read(m, 1u << 20, manifest) && manifest.find("encryption-data") != std::string::npos)
            return {Status::encrypted, {}, {}};
    }
    std::vector<std::pair<std::string, std::size_t>> parts;
    for (std::size_t i = 0, n = std::min(z.count(), limits.max_members); i < n; ++i) {
        ZipReader::Member m = z.member(i);
        if (wanted_part(kind, m.name)) parts.emplace_back(m.name, i);
    }
    if (parts.empty()) return {Status::failed, "no " + std::string(kind) + " text parts in the zip", {}};
    // Slides and sheets in their number order (slide2 before slide10).
    auto key = [](const std::string& name) {
        std::string k;
        for (std::size_t i = 0; i < name.size();) {
            if (name[i] >= '0' && name[i] <= '9') {
                std::size_t j = i;
                while (j < name.size() && name[j] >= '0' && name[j] <= '9') ++j;
                k.append(j - i < 10 ? 10 - (j - i) : 0, '0');
                k.append(name, i, j - i);
                i = j;
            } else {
                k.push_back(name[i++]);
            }
        }
        return k;
    };
    std::sort(parts.begin(), parts.end(), [&](const auto& a, const auto& b) { return key(a.first) < key(b.first); });
    Extracted r{Status::indexed, {}, {}};
    std::uint64_t unpacked = 0;
    std::string xml;
    std::size_t bad = 0;
    for (const auto& [name, i] : parts) {
        if (r.text.size() >= limits.max_text) break;
        const ZipReader::Member m = z.member(i);
        if (m.encrypted) return {Status::encrypted, {}, {}};
        const std::uint64_t budget = limits.max_unpacked - std::min(unpacked, limits.max_unpacked);
        if (budget == 0) break;
        if (m.packed > 0 && m.size / m.packed > limits.max_ratio && m.size > (16u << 20)) {
            ++bad;
            continue;
        }
        if (!z.read(i, budget, xml)) {
            ++bad;
            continue;
        }
        unpacked += xml.size();
        std::string words;
        if (!xml_words(xml, kind, words, limits.max_text - r.text.size())) ++bad;
        append_text(r.text, words, limits.max_text);
    }
    if (bad == parts.size()) return {Status::failed, "its XML could not be read", {}};
    return r;
}

}  // namespace mv::index::extract
