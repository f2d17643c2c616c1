#include "query/inspect.hpp"

#include <gmime/gmime.h>
#include <nlohmann/json.hpp>

#include <memory>

#include "index/schema.hpp"

#include "index/mime/parser.hpp"
#include "index/text/fold.hpp"
#include "query/thread.hpp"
#include "query/mime_message.hpp"

namespace mv::query {
namespace {

using mime::gobj;
using mime::parse;
using mime::Parsed;

struct GFree {
    void operator()(void* p) const { g_free(p); }
};

std::string safe(const char* s) { return s ? text::valid_utf8(s) : std::string{}; }

std::uint64_t decoded_size(GMimePart* part) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return 0;
    gobj<GMimeStream> null(g_mime_stream_null_new());
    g_mime_data_wrapper_write_to_stream(content, null.get());
    return static_cast<std::uint64_t>(g_mime_stream_length(null.get()));
}

// Attachments in the order indexing lists them (the same walk), so numbers match.
std::vector<std::pair<AttachmentPart, GMimePart*>> walk_attachments(GMimeMessage* msg, bool sizes) {
    std::vector<std::pair<AttachmentPart, GMimePart*>> out;
    if (!msg) return out;
    index::walk_leaves(g_mime_message_get_mime_part(msg), index::ParseLimits{}, [&](const index::MimeLeaf& leaf) {
        if (!leaf.attachment) return;
        AttachmentPart a;
        a.filename = leaf.filename;
        a.content_type = leaf.type;
        if (sizes) a.size = decoded_size(leaf.part);
        out.push_back({std::move(a), leaf.part});
    });
    return out;
}

// Text for reading: no blank lines before the first text (HTML reduced to text starts with
// many), runs of blank lines cut to one, no trailing white space at the end.
std::string tidy_text(std::string_view t) {
    std::string out;
    out.reserve(t.size());
    int blank_run = 0;
    bool started = false;
    std::size_t pos = 0;
    while (pos <= t.size()) {
        auto eol = t.find('\n', pos);
        std::string_view line = t.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        pos = eol == std::string_view::npos ? t.size() + 1 : eol + 1;
        const bool blank = line.find_first_not_of(" \t\r\f\v\xc2\xa0") == std::string_view::npos;
        if (blank) {
            if (started) ++blank_run;
            continue;
        }
        if (started && blank_run) out += "\n";
        blank_run = 0;
        started = true;
        out += line;
        out += '\n';
    }
    return out;
}

}  // namespace

Result<Hit> load_hit(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links) {
    std::optional<Xapian::Document> doc;
    try {
        doc = archive.document(docno);
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "message " + std::to_string(docno) + ": " + e.get_msg());
    }
    if (!doc) {
        auto damaged = archive.read_original(docno);  // says so when its index shard is damaged
        if (!damaged && damaged.error().kind == Error::Kind::corrupt) return fail(damaged.error());
        return fail(Error::Kind::not_found, "no message " + std::to_string(docno) + " in the archive");
    }
    Hit h;
    h.docno = docno;
    h.data = index::DocData::from_json(doc->get_data());
    decorate(archive, links, h);
    return h;
}

Result<std::vector<Hit>> thread_hits(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links) {
    try {
        Xapian::Database db = archive.database();
        auto q = thread_query(db, std::to_string(docno));
        if (!q) return fail(q.error());
        Xapian::Enquire enquire(db);
        enquire.set_query(*q);
        enquire.set_weighting_scheme(Xapian::BoolWeight());
        enquire.set_sort_by_value(schema::k_slot_date, false);
        enquire.set_docid_order(Xapian::Enquire::ASCENDING);
        Xapian::MSet m = enquire.get_mset(0, db.get_doccount());
        std::vector<Hit> out;
        for (auto it = m.begin(); it != m.end(); ++it) {
            Hit h;
            h.docno = *it;
            h.data = index::DocData::from_json(it.get_document().get_data());
            decorate(archive, links, h);
            out.push_back(std::move(h));
        }
        return out;
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "thread of " + std::to_string(docno) + ": " + e.get_msg());
    }
}

std::string link_json(const Hit& hit) {
    nlohmann::ordered_json j;
    j["docno"] = hit.docno;
    j["title"] = hit.title;
    j["link"] = hit.link;
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::vector<AttachmentPart> list_attachments(std::string_view raw) {
    Parsed p = parse(raw);
    std::vector<AttachmentPart> out;
    for (auto& [a, part] : walk_attachments(p.msg.get(), true)) out.push_back(std::move(a));
    return out;
}

Result<std::string> extract_attachment(std::string_view raw, std::size_t n) {
    Parsed p = parse(raw);
    auto parts = walk_attachments(p.msg.get(), false);
    if (n == 0 || n > parts.size())
        return fail(Error::Kind::usage, "attachment " + std::to_string(n) + " does not exist; the message has " +
                                            std::to_string(parts.size()) + " attachment(s)");
    GMimeDataWrapper* content = g_mime_part_get_content(parts[n - 1].second);
    if (!content) return std::string();
    gobj<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(content, mem.get());
    GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

namespace {

MessageView view_of(Hit hit, const std::string& raw);

}  // namespace

Result<MessageView> load_view(const index::Archive& archive, std::uint64_t docno, const LinkBuilder& links) {
    auto hit = load_hit(archive, docno, links);
    if (!hit) return fail(hit.error());
    auto raw = archive.read_original(docno);
    if (!raw) return fail(raw.error());
    return view_of(std::move(*hit), *raw);
}

Result<MessageView> load_view(const index::Archive& archive, const Xapian::Database& db, std::uint64_t docno,
                              const LinkBuilder& links) {
    std::optional<Xapian::Document> doc;
    try {
        if (docno > 0 && docno <= db.get_lastdocid()) doc = db.get_document(static_cast<Xapian::docid>(docno));
    } catch (const Xapian::DocNotFoundError&) {
    } catch (const Xapian::Error&) {
    }
    if (!doc) return load_view(archive, docno, links);  // says what is wrong (missing, damaged shard)
    Hit h;
    h.docno = docno;
    h.data = index::DocData::from_json(doc->get_data());
    decorate(archive, links, h);
    auto raw = archive.read_original(docno, *doc);
    if (!raw) return fail(raw.error());
    return view_of(std::move(h), *raw);
}

namespace {

MessageView view_of(Hit hit, const std::string& raw) {
    MessageView v;
    v.hit = std::move(hit);
    Parsed p = parse(raw);
    if (p.msg) {
        GMimeHeaderList* list = g_mime_object_get_header_list(GMIME_OBJECT(p.msg.get()));
        int n = list ? g_mime_header_list_get_count(list) : 0;
        for (int i = 0; i < n; ++i) {
            GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
            v.headers.emplace_back(safe(g_mime_header_get_name(h)), safe(g_mime_header_get_value(h)));
        }
        for (auto& [a, part] : walk_attachments(p.msg.get(), true)) v.attachments.push_back(std::move(a));
    }
    // The text status indexing stored, attachment by attachment (the same walk numbers both).
    const auto& stored = v.hit.data.attachments;
    for (std::size_t i = 0; i < v.attachments.size() && i < stored.size(); ++i) {
        v.attachments[i].text_status = std::string(index::extract::status_name(stored[i].status));
        v.attachments[i].text_status_reason = stored[i].status_reason;
    }
    index::ParseLimits body_only;
    body_only.attachment_text = false;  // the body is shown; attachments are not extracted again
    auto parsed = index::parse_message(raw, body_only, v.hit.data.date);
    if (parsed) v.body = tidy_text(parsed->body_text);
    return v;
}

}  // namespace

std::string text_status_line(const AttachmentPart& a) {
    return index::extract::status_text(index::extract::status_from_name(a.text_status), a.text_status_reason);
}

std::string view_text(const MessageView& v) {
    const auto& d = v.hit.data;
    auto join = [](const std::vector<std::string>& xs) {
        std::string s;
        for (const auto& x : xs) s += (s.empty() ? "" : ", ") + x;
        return s;
    };
    std::string out;
    auto line = [&](const char* name, const std::string& value) {
        if (!value.empty()) out += std::string(name) + ": " + for_terminal(value) + "\n";
    };
    line("Docno", std::to_string(v.hit.docno));
    line("Title", v.hit.title);
    line("Link", v.hit.link);
    line("Date", local_date(d.date, DateStyle::full));
    line("From", d.from);
    line("To", join(d.to));
    line("Cc", join(d.cc));
    line("Subject", d.subject);
    line("Message-ID", d.message_id.empty() ? "" : "<" + d.message_id + ">");
    line("Mailboxes", join(mailboxes_of(d)));
    line("Folders", join(folders_of(d)));
    line("Flags", join(flags_of(d)));
    if (d.broken) line("State", "broken (not cleanly parsable MIME; shown as far as it could be read)");
    line("Thread", thread_id(v.hit.docno, d));
    for (const auto& l : d.locations)
        if (!l.removed.empty())
            line("Removed on the server", l.source + " " + l.mailbox + "/" + l.folder + " (" + l.removed + ", seen " +
                                              iso_date(l.removed_at) + ")");
    line("Size", std::to_string(d.size));
    line("SHA-256", d.sha256);
    if (!v.attachments.empty()) {
        out += "Attachments:\n";
        for (std::size_t i = 0; i < v.attachments.size(); ++i) {
            const auto& a = v.attachments[i];
            out += "  " + std::to_string(i + 1) + ". " + (a.filename.empty() ? "(no name)" : for_terminal(a.filename)) +
                   " (" + for_terminal(a.content_type) + ", " + std::to_string(a.size) + " bytes" +
                   (a.text_status.empty() ? "" : ", text: " + for_terminal(text_status_line(a))) + ")\n";
        }
    }
    out += "\n";
    out += v.body;
    if (!out.empty() && out.back() != '\n') out += '\n';
    return out;
}

std::string view_json(const MessageView& v) {
    const auto& d = v.hit.data;
    nlohmann::ordered_json j;
    j["docno"] = v.hit.docno;
    j["date"] = iso_date(d.date);
    j["from"] = d.from;
    j["to"] = d.to;
    j["cc"] = d.cc;
    j["subject"] = d.subject;
    j["message_id"] = d.message_id;
    j["thread"] = thread_id(v.hit.docno, d);
    j["references"] = d.references;
    j["flags"] = flags_of(d);
    j["broken"] = d.broken;
    j["mailboxes"] = mailboxes_of(d);
    j["folders"] = folders_of(d);
    j["size"] = d.size;
    j["sha256"] = d.sha256;
    j["title"] = v.hit.title;
    j["link"] = v.hit.link;
    auto headers = nlohmann::ordered_json::array();
    for (const auto& [name, value] : v.headers) headers.push_back({name, value});
    j["headers"] = std::move(headers);
    auto atts = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < v.attachments.size(); ++i) {
        const auto& a = v.attachments[i];
        nlohmann::ordered_json x;
        x["n"] = i + 1;
        x["filename"] = a.filename;
        x["content_type"] = a.content_type;
        x["size"] = a.size;
        if (!a.text_status.empty()) x["text_status"] = a.text_status;
        if (!a.text_status_reason.empty()) x["text_status_reason"] = a.text_status_reason;
        atts.push_back(std::move(x));
    }
    j["attachments"] = std::move(atts);
    if (auto removed = removed_json(d); !removed.empty()) j["removed"] = std::move(removed);
    j["body"] = v.body;
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace mv::query
