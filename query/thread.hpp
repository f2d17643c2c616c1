#pragma once
// Threads: a conversation is the closure of Message-ID, In-Reply-To and References over the
// archive (XMID and XREF terms, see index/document/builder.hpp), computed at query time, so
// it needs no thread ids assigned at import and holds across dedupe, reindex and late replies.
#include <xapian.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/document/builder.hpp"
#include "index/util/result.hpp"

namespace mv::query {

// The conversation that `seed` belongs to: a docno ("8441") or a Message-ID (with or without
// <>). Error::Kind::not_found for a docno the archive does not have.
Result<Xapian::Query> thread_query(const Xapian::Database& db, std::string_view seed);

// The thread of a document as `search --json` shows it: the first References id (the root
// of the conversation), else In-Reply-To, else its own Message-ID, else its docno;
// `thread:` with that value finds the whole conversation.
std::string thread_id(std::uint64_t docno, const index::DocData& d);

}  // namespace mv::query
