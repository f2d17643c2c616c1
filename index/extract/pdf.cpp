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

}  // namespace

Extracted pdf(std::string_view bytes, const Limits& limits) {
    if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) return {Status::too_large, "over 2 GiB", {}};
    return run_isolated([&] { return pdf_here(bytes, limits); }, limits);
}

}  // namespace mv::index::extract
