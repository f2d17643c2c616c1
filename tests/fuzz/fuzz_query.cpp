// The query parser (query/parser): any text against a small in-memory database whose terms
// let wildcards and field prefixes expand.
#include <xapian.h>

#include "query/parser.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {
Xapian::Database& db() {
    static Xapian::WritableDatabase w = [] {
        Xapian::WritableDatabase d(std::string(), Xapian::DB_BACKEND_INMEMORY);
        for (const char* t : {"Bkernel", "Bkernels", "ZBkernel", "Sreport", "Falice", "Tbob", "XMBbox@example.org",
                              "XFDInbox", "XSRsrc", "XHASattachment", "XAreport.pdf", "XADRFalice@example.org",
                              "XDOMFexample.org", "XSTATEbroken", "XFLAGseen"}) {
            Xapian::Document doc;
            doc.add_term(t);
            d.add_document(doc);
        }
        d.commit();
        return d;
    }();
    return w;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text = mv::fuzz::as_view(data, size);
    mv::query::ParseOptions o;
    o.now = 1700000000;
    o.stemmer = size % 2 ? "english" : "none";
    auto q = mv::query::parse(text, db(), o);
    if (q) {
        Xapian::Enquire e(db());
        e.set_query(q->query);
        (void)e.get_mset(0, 10);
        (void)q->query.get_description();
    }
    (void)mv::query::parse_date_range(text, o.now);
    (void)mv::query::parse_size_range(text);
    return 0;
}
