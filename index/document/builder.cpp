#include "index/document/builder.hpp"

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "index/schema.hpp"
#include "index/text/fold.hpp"

namespace mv::index {
namespace {

using json = nlohmann::json;

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

// Xapian terms are limited to ~245 bytes.
void add_boolean(Xapian::Document& doc, std::string_view prefix, std::string_view value) {
    if (value.empty()) return;
    std::string term(prefix);
    term += text::fold(value);
    if (term.size() > 240) term.resize(240);
    doc.add_boolean_term(term);
}

// The stemmer of the index side: a stem equal to its word is left out ("" tells the
// TermGenerator to add no Z term), since the exact term already holds that word. Most words
// are their own stem, so this takes about a third of the terms out of every document, and
// the serial index write is paid per term. The query side puts it back
// (with_exact_stems in query/parser.cpp).
class DistinctStem final : public Xapian::StemImplementation {
  public:
    explicit DistinctStem(const std::string& language) : stem_(language) {}
    std::string operator()(const std::string& word) override {
        std::string s = stem_(word);
        if (s == word) s.clear();
        return s;
    }
    std::string get_description() const override { return "distinct " + stem_.get_description(); }

  private:
    Xapian::Stem stem_;
};

// "Name <a@b>" or "a@b" -> "a@b" lowercased; "" when there is no '@'.
std::string addr_spec(std::string_view display) {
    auto lt = display.rfind('<');
    if (lt != std::string_view::npos) {
        auto gt = display.find('>', lt);
        display = display.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
    }
    while (!display.empty() && (display.front() == ' ' || display.front() == '"')) display.remove_prefix(1);
    while (!display.empty() && (display.back() == ' ' || display.back() == '"')) display.remove_suffix(1);
    if (display.find('@') == std::string_view::npos || display.find(' ') != std::string_view::npos) return {};
    return lower_ascii(display);
}

// XADR<f><address> and XDOM<f><domain> of one address field (schema::k_address_fields).
void add_address_terms(Xapian::Document& doc, std::string_view field, const std::vector<std::string>& displays) {
    const schema::AddressField* f = schema::address_field(field);
    for (const auto& d : displays) {
        std::string a = addr_spec(d);
        if (a.empty()) continue;
        add_boolean(doc, f->address, a);
        add_boolean(doc, f->domain, a.substr(a.rfind('@') + 1));
    }
}

}  // namespace

std::string flag_name(std::string_view flag) {
    if (flag.size() == 1) {  // Maildir info letters
        switch (flag[0]) {
            case 'S': return "seen";
            case 'F': return "flagged";
            case 'R': return "answered";
            case 'D': return "draft";
            case 'T': return "deleted";
            case 'P': return "passed";
            default: break;
        }
    }
    if (!flag.empty() && flag.front() == '\\') flag.remove_prefix(1);
    return lower_ascii(flag);
}

std::string DocData::to_json() const {
    json j;
    j["msgid"] = message_id;
    if (!references.empty()) j["refs"] = references;
    j["date"] = date;
    j["from"] = from;
    j["to"] = to;
    j["cc"] = cc;
    j["subject"] = subject;
    j["size"] = size;
    j["sha256"] = sha256;
    json atts = json::array();
    for (const auto& a : attachments) {
        json x = {{"name", a.filename}, {"type", a.content_type}, {"size", a.size}};
        if (a.status != extract::Status::none) x["status"] = extract::status_name(a.status);
        if (!a.status_reason.empty()) x["reason"] = a.status_reason;
        atts.push_back(std::move(x));
    }
    j["attachments"] = std::move(atts);
    json locs = json::array();
    for (const auto& l : locations) {
        json loc = {{"source", l.source}, {"mailbox", l.mailbox}, {"folder", l.folder}, {"id", l.server_id}};
        if (!l.removed.empty()) {
            loc["removed"] = l.removed;
            loc["removed_at"] = l.removed_at;
        }
        if (!l.flags.empty()) loc["flags"] = l.flags;
        locs.push_back(std::move(loc));
    }
    j["locations"] = std::move(locs);
    if (broken) j["broken"] = true;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

namespace od = simdjson::ondemand;

std::string str(od::value v) { return std::string(std::string_view(v.get_string())); }

std::vector<std::string> strings(od::value v) {
    std::vector<std::string> out;
    for (auto e : v.get_array()) out.push_back(str(e.value()));
    return out;
}

DocData parse_doc_data(const std::string& s) {
    // One parser per thread, reused: the search side reads 20+ documents per request.
    thread_local od::parser parser;
    const simdjson::padded_string padded(s);
    DocData d;
    od::document doc = parser.iterate(padded);
    for (auto field : doc.get_object()) {
        const std::string_view key = field.unescaped_key();
        od::value v = field.value();
        if (key == "msgid") d.message_id = str(v);
        else if (key == "refs") d.references = strings(v);
        else if (key == "date") d.date = v.get_int64();
        else if (key == "from") d.from = str(v);
        else if (key == "to") d.to = strings(v);
        else if (key == "cc") d.cc = strings(v);
        else if (key == "subject") d.subject = str(v);
        else if (key == "size") d.size = v.get_uint64();
        else if (key == "sha256") d.sha256 = str(v);
        else if (key == "broken") d.broken = v.get_bool();
        else if (key == "attachments") {
            for (auto e : v.get_array()) {
                Attachment a;
                for (auto af : e.get_object()) {
                    const std::string_view k = af.unescaped_key();
                    od::value x = af.value();
                    if (k == "name") a.filename = str(x);
                    else if (k == "type") a.content_type = str(x);
                    else if (k == "size") a.size = x.get_uint64();
                    else if (k == "status") a.status = extract::status_from_name(str(x));
                    else if (k == "reason") a.status_reason = str(x);
                }
                d.attachments.push_back(std::move(a));
            }
        } else if (key == "locations") {
            for (auto e : v.get_array()) {
                Location l;
                for (auto lf : e.get_object()) {
                    const std::string_view k = lf.unescaped_key();
                    od::value x = lf.value();
                    if (k == "source") l.source = str(x);
                    else if (k == "mailbox") l.mailbox = str(x);
                    else if (k == "folder") l.folder = str(x);
                    else if (k == "id") l.server_id = str(x);
                    else if (k == "removed") l.removed = str(x);
                    else if (k == "removed_at") l.removed_at = x.get_int64();
                    else if (k == "flags") l.flags = strings(x);
                }
                d.locations.push_back(std::move(l));
            }
        }
    }
    return d;
}

}  // namespace

// simdjson's on-demand reader: ~1 us per document where building a DOM (nlohmann) took
// ~15 us, most of the per-hit cost of a result page in `serve`.
DocData DocData::from_json(const std::string& s) {
    try {
        return parse_doc_data(s);
    } catch (const simdjson::simdjson_error&) {
        return DocData{};  // not ours (or damaged): nothing, as for any unreadable data
    }
}

std::string location_id_term(const Location& where) {
    if (where.server_id.empty()) return {};
    std::string key = where.source;
    key.push_back('\0');
    key += where.mailbox;
    key.push_back('\0');
    key += where.server_id;
    return std::string(schema::k_location_id_prefix) + to_hex(sha256(key)).substr(0, 16);
}

void add_location_terms(Xapian::Document& doc, const Location& where) {
    if (auto id = location_id_term(where); !id.empty()) doc.add_boolean_term(id);
    if (!where.removed.empty()) doc.add_boolean_term(std::string(schema::k_removed_term));
    for (const auto& f : where.flags) add_boolean(doc, schema::k_flag_prefix, flag_name(f));
    add_boolean(doc, schema::prefix_of("source"), where.source);
    add_boolean(doc, schema::prefix_of("mailbox"), where.mailbox);
    // "Inbox/Projects/2024": the folder and each ancestor, so folder:Inbox/Projects finds it.
    std::string_view folder = where.folder;
    while (!folder.empty()) {
        add_boolean(doc, schema::prefix_of("folder"), folder);
        auto slash = folder.rfind('/');
        if (slash == std::string_view::npos) break;
        folder = folder.substr(0, slash);
    }
}

DocumentBuilder::DocumentBuilder(const std::string& stemmer) {
    if (!stemmer.empty() && stemmer != "none") {
        tg_.set_stemmer(Xapian::Stem(new DistinctStem(stemmer)));
        tg_.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
    } else {
        tg_.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
    }
    tg_.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
}

Xapian::Document DocumentBuilder::build(const ParsedMessage& msg, const Location& where, const Digest& sha,
                                        const Digest& dedupe_key, std::uint64_t raw_size) {
    Xapian::Document doc;
    tg_.set_document(doc);
    auto field = [&](std::string_view name, const std::string& text) {
        if (text.empty()) return;
        const schema::Field* f = schema::field(name);
        std::string folded = text::fold(text);
        tg_.index_text(folded, 1, std::string(f->prefix));
        tg_.increase_termpos();
    };
    field("subject", msg.subject);
    field("from", msg.from_text);
    field("to", msg.to_text);
    field("cc", msg.cc_text);
    field("bcc", msg.bcc_text);
    std::string names;
    for (const auto& a : msg.attachments) {
        if (a.filename.empty()) continue;
        names += a.filename;
        names.push_back('\n');
    }
    field("attachment", names);
    field("body", msg.body_text);
    field("atext", msg.attachment_text);

    add_boolean(doc, schema::prefix_of("msgid"), lower_ascii(msg.message_id));
    for (const auto& r : msg.references) add_boolean(doc, schema::k_ref_prefix, lower_ascii(r));
    add_address_terms(doc, "from", {msg.from});
    add_address_terms(doc, "to", msg.to);
    add_address_terms(doc, "cc", msg.cc);
    add_address_terms(doc, "bcc", msg.bcc);
    if (!msg.attachments.empty()) doc.add_boolean_term(std::string(schema::prefix_of("has")) + "attachment");
    for (const auto& a : msg.attachments) {
        add_boolean(doc, schema::prefix_of("type"), lower_ascii(a.content_type));
        add_boolean(doc, schema::prefix_of("type"), extract::extension_of(a.filename));
        add_boolean(doc, schema::prefix_of("type"), extract::kind_of(a.content_type, a.filename));
    }
    if (msg.broken || !msg.defects.empty()) doc.add_boolean_term(std::string(schema::k_broken_term));
    doc.add_boolean_term(std::string(schema::k_dedupe_prefix) + to_hex(dedupe_key));
    doc.add_boolean_term(std::string(schema::k_sha_prefix) + to_hex(sha));
    add_location_terms(doc, where);

    doc.add_value(schema::k_slot_date, Xapian::sortable_serialise(static_cast<double>(msg.date)));
    doc.add_value(schema::k_slot_size, Xapian::sortable_serialise(static_cast<double>(raw_size)));
    doc.add_value(schema::k_slot_sha256, std::string(reinterpret_cast<const char*>(sha.data()), sha.size()));

    DocData data;
    data.message_id = msg.message_id;
    data.references = msg.references;
    data.date = msg.date;
    data.from = msg.from;
    data.to = msg.to;
    data.cc = msg.cc;
    data.subject = msg.subject;
    data.size = raw_size;
    data.sha256 = to_hex(sha);
    data.attachments = msg.attachments;
    data.locations.push_back(where);
    data.broken = msg.broken || !msg.defects.empty();  // as the XSTATEbroken term
    doc.set_data(data.to_json());
    // The TermGenerator keeps a reference to the document it fills, and Xapian's reference
    // counts are not atomic: the document goes to a shard's writer thread, so let go of it.
    tg_.set_document(Xapian::Document());
    return doc;
}

}  // namespace mv::index
