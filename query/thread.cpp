#include "query/thread.hpp"

#include <set>

#include "index/schema.hpp"
#include "index/text/fold.hpp"

namespace mv::query {
namespace {

// As index::add_boolean builds XMID/XREF terms: lowercased, folded, at most 240 bytes.
std::string id_term(std::string_view prefix, std::string_view id) {
    if (!id.empty() && id.front() == '<') id.remove_prefix(1);
    if (!id.empty() && id.back() == '>') id.remove_suffix(1);
    std::string lower(id);
    for (auto& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    std::string term(prefix);
    term += text::fold(lower);
    if (term.size() > 240) term.resize(240);
    return term;
}

bool all_digits(std::string_view s) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

Result<Xapian::Query> thread_query(const Xapian::Database& db, std::string_view seed) {
    const std::string_view mid = schema::prefix_of("msgid");
    std::set<std::string> ids;     // ids (without prefix) of the conversation so far
    std::vector<std::string> fresh;
    std::set<Xapian::docid> seen;
    std::string own_term;          // a document with no ids is its own thread
    auto take = [&](const index::DocData& d) {
        std::vector<std::string> all = d.references;
        if (!d.message_id.empty()) all.push_back(d.message_id);
        for (const auto& id : all) {
            std::string t = id_term("", id);
            if (!t.empty() && ids.insert(t).second) fresh.push_back(t);
        }
    };
    try {
        if (all_digits(seed)) {
            const auto docno = static_cast<Xapian::docid>(std::stoull(std::string(seed)));
            Xapian::Document doc;
            try {
                if (docno == 0) throw Xapian::DocNotFoundError("0");
                doc = db.get_document(docno);
            } catch (const Xapian::DocNotFoundError&) {
                return fail(Error::Kind::not_found, "thread:" + std::string(seed) + ": no message " +
                                                        std::string(seed) + " in the archive");
            }
            seen.insert(docno);
            auto d = index::DocData::from_json(doc.get_data());
            take(d);
            if (ids.empty()) own_term = std::string(schema::k_sha_prefix) + d.sha256;
        } else {
            std::string t = id_term("", seed);
            if (t.empty()) return fail(Error::Kind::usage, "thread: needs a docno or a Message-ID");
            ids.insert(t);
            fresh.push_back(t);
        }
        // Widen until no new Message-ID turns up (bounded: a conversation, not the archive).
        for (int round = 0; round < 64 && !fresh.empty() && seen.size() < 100000; ++round) {
            std::vector<Xapian::Query> terms;
            for (const auto& id : fresh) {
                terms.emplace_back(std::string(mid) + id);
                terms.emplace_back(std::string(schema::k_ref_prefix) + id);
            }
            fresh.clear();
            Xapian::Enquire enquire(db);
            enquire.set_query(Xapian::Query(Xapian::Query::OP_OR, terms.begin(), terms.end()));
            enquire.set_weighting_scheme(Xapian::BoolWeight());
            Xapian::MSet m = enquire.get_mset(0, db.get_doccount());
            for (auto it = m.begin(); it != m.end(); ++it)
                if (seen.insert(*it).second) take(index::DocData::from_json(it.get_document().get_data()));
        }
        std::vector<Xapian::Query> all;
        for (const auto& id : ids) {
            all.emplace_back(std::string(mid) + id);
            all.emplace_back(std::string(schema::k_ref_prefix) + id);
        }
        if (!own_term.empty()) all.emplace_back(own_term);
        return Xapian::Query(Xapian::Query::OP_OR, all.begin(), all.end());
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "thread: " + e.get_msg());
    }
}

std::string thread_id(std::uint64_t docno, const index::DocData& d) {
    if (!d.references.empty()) return d.references.front();
    if (!d.message_id.empty()) return d.message_id;
    return std::to_string(docno);
}

}  // namespace mv::query
