#include "ingest/smtp/mail_message.hpp"

#include <gmime/gmime.h>
#include <openssl/rand.h>

#include <memory>
#include <mutex>

#include "index/util/sha256.hpp"

namespace mv::ingest::smtp {

namespace {

struct GUnref {
    void operator()(gpointer p) const {
        if (p) g_object_unref(p);
    }
};
template <typename T>
using gptr = std::unique_ptr<T, GUnref>;

GMimeTextPart* text_part(const char* subtype, const std::string& body) {
    // The bytes as given, labelled UTF-8 (g_mime_text_part_set_text would convert to the
    // "best" charset, e.g. ISO-8859-1).
    GMimeTextPart* p = g_mime_text_part_new_with_subtype(subtype);
    GMimeStream* st = g_mime_stream_mem_new_with_buffer(body.data(), body.size());
    GMimeDataWrapper* content = g_mime_data_wrapper_new_with_stream(st, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(p), content);
    g_object_unref(content);
    g_object_unref(st);
    g_mime_text_part_set_charset(p, "utf-8");
    g_mime_part_set_content_encoding(GMIME_PART(p), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    return p;
}

std::string domain_of(const std::string& addr) {
    auto at = addr.rfind('@');
    return at == std::string::npos ? "localhost" : addr.substr(at + 1);
}

}  // namespace

std::string html_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string build_message(const MailMessage& m) {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
    gptr<GMimeMessage> msg(g_mime_message_new(TRUE));
    g_mime_message_add_mailbox(msg.get(), GMIME_ADDRESS_TYPE_FROM, m.from_name.c_str(), m.from.c_str());
    for (const auto& t : m.to) g_mime_message_add_mailbox(msg.get(), GMIME_ADDRESS_TYPE_TO, nullptr, t.c_str());
    g_mime_message_set_subject(msg.get(), m.subject.c_str(), "utf-8");
    GDateTime* now = g_date_time_new_now_utc();
    g_mime_message_set_date(msg.get(), now);
    g_date_time_unref(now);
    unsigned char rnd[12];
    RAND_bytes(rnd, sizeof rnd);
    std::string id = to_hex(std::string_view(reinterpret_cast<const char*>(rnd), sizeof rnd)) + ".mailvault@" + domain_of(m.from);
    g_mime_message_set_message_id(msg.get(), id.c_str());
    g_mime_object_set_header(GMIME_OBJECT(msg.get()), "Auto-Submitted", "auto-generated", nullptr);
    g_mime_object_set_header(GMIME_OBJECT(msg.get()), "X-Mailer", "mailvault", nullptr);
    gptr<GMimeTextPart> text(text_part("plain", m.text));
    if (m.html.empty()) {
        g_mime_message_set_mime_part(msg.get(), GMIME_OBJECT(text.get()));
    } else {
        gptr<GMimeMultipart> alt(g_mime_multipart_new_with_subtype("alternative"));
        gptr<GMimeTextPart> html(text_part("html", m.html));
        g_mime_multipart_add(alt.get(), GMIME_OBJECT(text.get()));
        g_mime_multipart_add(alt.get(), GMIME_OBJECT(html.get()));
        g_mime_message_set_mime_part(msg.get(), GMIME_OBJECT(alt.get()));
    }
    char* s = g_mime_object_to_string(GMIME_OBJECT(msg.get()), nullptr);
    std::string out = s ? s : "";
    g_free(s);
    return out;
}

}  // namespace mv::ingest::smtp
