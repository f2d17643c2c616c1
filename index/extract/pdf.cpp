// PDF with poppler-cpp. Poppler is large C++ over hostile input (object loops, huge streams):
// it runs in a forked helper that limits can stop (run_isolated).
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <memory>

#include "index/extract/formats.hpp"

namespace mv::index::extract {
namespace {

void quiet(const std::string&, void*) {}  // poppler's complaints about broken files: not ours to print

Extracted pdf_here(std::string_view bytes, const Limits& limits) {
    static const bool silenced = (poppler::set_debug_error_function(quiet, nullptr), true);
    (void)silenced;
    std::unique_ptr<poppler::document> doc(
        poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
    if (!doc) return {Status::failed, "not a readable PDF", {}};
    if (doc->is_locked()) return {Status::encrypted, {}, {}};
    Extracted r{Status::indexed, {}, {}};
    const int pages = doc->pages();
    for (int i = 0; i < pages && r.text.size() < limits.max_text; ++i) {
        std::unique_ptr<poppler::page> page(doc->create_page(i));
        if (!page) continue;
        const poppler::byte_array utf8 = page->text().to_utf8();
        append_text(r.text, std::string_view(utf8.data(), utf8.size()), limits.max_text);
    }
    return r;
}

// A PDF of our own with a text in a standard (not embedded) font: read once in this process
// before the first helper is forked, so that poppler's global state and the system font
// lookup are set up here and inherited, not built again in every helper (about 100 ms each).
constexpr std::string_view k_warm_up =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>endobj\n"
    "4 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    "5 0 obj<</Length 35>>stream\nBT /F1 12 Tf 10 10 Td (warm) Tj ET\nendstream endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

}  // namespace

Extracted pdf(std::string_view bytes, const Limits& limits) {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) return {Status::too_large, "over 2 GiB", {}};
    if (limits.isolation == Isolation::process) start_helper();
    return run_isolated(pdf_here, bytes, limits);
}

void prepare_pdf() {
    static const bool warmed = (pdf_here(k_warm_up, Limits{}), true);
    (void)warmed;
}

}  // namespace mv::index::extract
