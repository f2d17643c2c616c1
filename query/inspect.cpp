#include "query/inspect.hpp"

#include <gmime/gmime.h>
#include <nlohmann/json.hpp>

namespace mv::query {

Result<Hit> load_hit(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links) {
    std::optional<Xapian::Document> doc;
    try {
        doc = archive.document(docno);
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "message " + std::to_string(docno) + ": " + e.get_msg());
    }
    if (!doc) return fail(Error::Kind::not_found, "no message " + std::to_string(docno) + " in the archive");
    Hit h;
    h.docno = docno;
    h.data = index::DocData::from_json(doc->get_data());
    decorate(archive, links, h);
    return h;
}

std::string link_json(const Hit& hit) {
    nlohmann::ordered_json j;
    j["docno"] = hit.docno;
    j["title"] = hit.title;
    j["link"] = hit.link;
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace mv::query
