#pragma once
// A message parsed by GMime for the query side (show, attachments, the HTML view): one
// helper for the files that read a stored original's MIME structure.
#include <gmime/gmime.h>

#include <memory>
#include <string_view>

#include "index/mime/parser.hpp"

namespace mv::query::mime {

struct GObjUnref {
    void operator()(void* p) const {
        if (p) g_object_unref(p);
    }
};
template <typename T>
using gobj = std::unique_ptr<T, GObjUnref>;

// The message and what it borrows from (GMime reads the bytes in place: `raw` must outlive it),
// within the bounds indexing uses (index::BoundedMimeStream), so huge headers or 100,000
// parts cost show and the web what they cost import, and attachment numbers agree.
struct Parsed {
    std::unique_ptr<index::BoundedMimeStream> input;
    gobj<GMimeParser> parser;
    gobj<GMimeMessage> msg;  // null when GMime found no message
};

inline Parsed parse(std::string_view raw) {
    Parsed p;
    p.input = std::make_unique<index::BoundedMimeStream>(raw, index::ParseLimits{});
    p.parser.reset(g_mime_parser_new_with_stream(p.input->get()));
    p.msg.reset(g_mime_parser_construct_message(p.parser.get(), nullptr));
    return p;
}

}  // namespace mv::query::mime
