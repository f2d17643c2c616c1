#include "query/html_part.hpp"

#include <gmime/gmime.h>

#include <memory>
#include <utility>
#include <vector>

#include "index/mime/parser.hpp"
#include "query/mime_message.hpp"

namespace mv::query {
namespace {

using mime::gobj;
using mime::parse;
using mime::Parsed;

std::string decoded(GMimePart* part) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return {};
    gobj<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(content, mem.get());
    GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

}  // namespace

std::optional<std::string> html_body(std::string_view raw) {
    Parsed p = parse(raw);
    if (!p.msg) return std::nullopt;
    // Its own walk: index::walk_leaves keeps one rendering per multipart/alternative (the
    // text/plain one, for indexing), so the HTML beside it would never be found.
    const int max_depth = index::ParseLimits{}.max_depth;
    std::vector<std::pair<GMimeObject*, int>> stack{{g_mime_message_get_mime_part(p.msg.get()), 0}};
    while (!stack.empty()) {
        auto [obj, depth] = stack.back();
        stack.pop_back();
        if (obj == nullptr || depth > max_depth) continue;
        if (GMIME_IS_MULTIPART(obj)) {
            GMimeMultipart* mp = GMIME_MULTIPART(obj);
            for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; --i)
                stack.emplace_back(g_mime_multipart_get_part(mp, i), depth + 1);
            continue;
        }
        if (!GMIME_IS_TEXT_PART(obj)) continue;  // message/rfc822 (a forwarded mail) is not the body
        GMimeContentType* ct = g_mime_object_get_content_type(obj);
        if (!ct || !g_mime_content_type_is_type(ct, "text", "html")) continue;
        const char* disp = g_mime_object_get_disposition(obj);
        if ((disp && g_ascii_strcasecmp(disp, "attachment") == 0) || g_mime_part_get_filename(GMIME_PART(obj))) continue;
        char* text = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));  // charset converted to UTF-8
        std::string out = text ? std::string(text) : std::string();
        g_free(text);
        return out;
    }
    return std::nullopt;
}

Result<CidPart> cid_part(std::string_view raw, std::string_view cid) {
    Parsed p = parse(raw);
    if (!p.msg) return fail(Error::Kind::not_found, "no such part");
    std::optional<CidPart> out;
    index::walk_leaves(g_mime_message_get_mime_part(p.msg.get()), index::ParseLimits{}, [&](const index::MimeLeaf& leaf) {
        if (out) return;
        const char* id = g_mime_object_get_content_id(GMIME_OBJECT(leaf.part));
        if (!id || std::string_view(id) != cid) return;
        out = CidPart{leaf.type, decoded(leaf.part)};
    });
    if (!out) return fail(Error::Kind::not_found, "no such part");
    return std::move(*out);
}

}  // namespace mv::query
