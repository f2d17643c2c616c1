// MIME to fields: the whole parse (index/mime) and the document build (index/document), then
// the leaf walk `show --attachment` uses.
#include <xapian.h>

#include "index/document/builder.hpp"
#include "index/mime/parser.hpp"
#include "index/util/sha256.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace mv;
    using namespace mv::index;
    static DocumentBuilder builder("english");
    std::string_view raw = mv::fuzz::as_view(data, size);
    ParseLimits limits;
    auto parsed = parse_message(raw, limits, 0);
    if (!parsed) return 0;
    Location where{"src", "box@example.org", "Inbox", "1"};
    Digest sha = sha256(raw);
    Xapian::Document doc = builder.build(*parsed, where, sha, sha, raw.size());
    (void)DocData::from_json(doc.get_data());
    return 0;
}
