#include "index/mime/parser.hpp"

#include <gmime/gmime.h>
#include <gumbo.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <memory>
#include <mutex>
#include <vector>

#include "index/text/fold.hpp"

namespace mv::index {
namespace {

template <typename T>
struct GObjDeleter {
    void operator()(T* p) const {
        if (p) g_object_unref(p);
    }
};
// Owns a GObject reference ("transfer full").
template <typename T>
using gobj_ptr = std::unique_ptr<T, GObjDeleter<T>>;

struct GFreeDeleter {
    void operator()(void* p) const { g_free(p); }
};
using gchar_ptr = std::unique_ptr<char, GFreeDeleter>;

GMimeParserOptions* parser_options() {
    static GMimeParserOptions* opts = [] {
        GMimeParserOptions* o = g_mime_parser_options_new();
        g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
        g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
        g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
        static const char* fallback[] = {"utf-8", "windows-1252", nullptr};
        g_mime_parser_options_set_fallback_charsets(o, fallback);
        return o;
    }();
    return opts;
}

std::string safe(const char* s) { return s ? text::valid_utf8(s) : std::string{}; }

// A GMime stream over bytes the caller keeps alive: GMime's own memory stream would copy them
// (a 2 GB message twice in memory). The GByteArray only points at the bytes: the stream does
// not own it, GMime only reads through it, and it is emptied before it is freed.
class BorrowedStream {
  public:
    explicit BorrowedStream(std::string_view bytes) : array_(g_byte_array_new()) {
        array_->data = reinterpret_cast<guint8*>(const_cast<char*>(bytes.data()));
        array_->len = static_cast<guint>(bytes.size());  // callers keep it below 4 GiB
        stream_ = g_mime_stream_mem_new_with_byte_array(array_);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream_), FALSE);
    }
    ~BorrowedStream() {
        g_object_unref(stream_);
        array_->data = nullptr;
        array_->len = 0;
        g_byte_array_free(array_, TRUE);
    }
    BorrowedStream(const BorrowedStream&) = delete;
    BorrowedStream& operator=(const BorrowedStream&) = delete;
    GMimeStream* get() const { return stream_; }

  private:
    GByteArray* array_;
    GMimeStream* stream_;
};

// `raw` with every run of two or more CRs before an LF made one CR (CRLF), or "" when it has
// none. Courier delivers CRLF files as CR CR LF, which GMime does not read as line ends: the
// header block would never end and the body would be lost to indexing.
std::string crlf_from_cr_runs(std::string_view raw) {
    std::size_t at = raw.find("\r\r\n");
    if (at == std::string_view::npos) return {};
    std::string out;
    out.reserve(raw.size());
    std::size_t start = 0;
    while (at != std::string_view::npos) {
        while (at > start && raw[at - 1] == '\r') --at;     // the whole run (find() hits its last 2)
        std::size_t lf = raw.find_first_not_of('\r', at);  // the LF ending this run
        out.append(raw.substr(start, at - start));
        out.append("\r\n");
        start = lf + 1;
        at = raw.find("\r\r\n", start);
    }
    out.append(raw.substr(start));
    return out;
}

bool only_crs(std::string_view line) { return line.find_first_not_of('\r') == std::string_view::npos; }

// The top-level header block rewritten within the limits (each field cut to max_header_field
// bytes, fields past max_header_block bytes dropped), or "" when it already is within them.
// `body_at` is where the rest of the message (from the empty line on) starts.
std::string bounded_header(std::string_view raw, const ParseLimits& limits, std::size_t& body_at,
                           std::vector<std::string>& defects) {
    struct Field {
        std::size_t begin, end;
    };
    std::vector<Field> fields;
    bool over = false;
    std::size_t pos = 0;
    while (pos < raw.size()) {
        std::size_t eol = raw.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? raw.size() : eol + 1;
        if (only_crs(raw.substr(pos, next - pos - (eol == std::string_view::npos ? 0 : 1)))) break;
        while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
            std::size_t e2 = raw.find('\n', next);
            next = e2 == std::string_view::npos ? raw.size() : e2 + 1;
        }
        fields.push_back({pos, next});
        over = over || next - pos > limits.max_header_field || next > limits.max_header_block;
        pos = next;
    }
    body_at = pos;
    if (!over) return {};
    std::string out;
    std::size_t cut = 0, dropped = 0;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto& f = fields[i];
        std::string_view text = raw.substr(f.begin, f.end - f.begin);
        if (text.size() > limits.max_header_field) {
            text = text.substr(0, limits.max_header_field);
            ++cut;
        }
        if (out.size() + text.size() + 1 > limits.max_header_block) {  // this field and all after it
            dropped = fields.size() - i;
            break;
        }
        out.append(text);
        if (out.back() != '\n') out.push_back('\n');
    }
    if (cut) defects.push_back(std::to_string(cut) + " header field(s) longer than " + std::to_string(limits.max_header_field) +
                               " bytes: indexed in part");
    if (dropped) defects.push_back(std::to_string(dropped) + " header field(s) past " +
                                   std::to_string(limits.max_header_block) + " bytes of headers: not indexed");
    return out;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && g_ascii_strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

bool contains_ci(std::string_view s, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= s.size(); ++i)
        if (g_ascii_strncasecmp(s.data() + i, needle.data(), needle.size()) == 0) return true;
    return false;
}

// A header field line that makes the next block a message's header (message/rfc822 content).
bool message_content_type(std::string_view line) {
    return starts_with_ci(line, "content-type:") && contains_ci(line.substr(0, 256), "message/");
}

// What GMime is given of the body (after the top-level header block): slices of `body`, so
// that GMime's memory stays bounded (README "Hostile input"). GMime keeps each header field
// whole and a tree node per part: in the header blocks of parts and attached messages (the
// lines after a "--" line up to the empty one, and the block after a message/* part's header)
// each field is cut to max_header_field bytes and each block to max_header_block; the body
// ends before its (max_parts + 1)th "--" line. Lines are counted as they look, not matched to
// declared boundaries: bounds, not MIME. `starts_with_header` when the body itself begins
// with a message's header (a top-level message/rfc822).
std::vector<std::string_view> bounded_body(std::string_view body, const ParseLimits& limits, bool starts_with_header,
                                           std::vector<std::string>& defects) {
    static constexpr std::size_t k_max_slices = 4096;  // cuts given to GMime as a cat stream
    std::vector<std::string_view> out;
    std::size_t slice_start = 0, end = body.size();
    std::size_t delimiters = 0, cut_fields = 0, dropped_lines = 0;
    bool in_header = starts_with_header, next_is_message = false, over = false;
    std::size_t field_bytes = 0, block_bytes = 0;
    for (std::size_t pos = 0; pos < body.size();) {
        std::size_t eol = body.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? body.size() : eol + 1;
        std::string_view line = body.substr(pos, next - pos);
        if (line.starts_with("--")) {
            if (++delimiters > limits.max_parts) {
                end = pos;
                defects.push_back("more than " + std::to_string(limits.max_parts) +
                                  " MIME delimiter lines: the parts after them are not indexed");
                break;
            }
            in_header = true;
            next_is_message = false;
            field_bytes = block_bytes = 0;
            pos = next;
            continue;
        }
        if (!in_header) {
            pos = next;
            continue;
        }
        if (only_crs(line.substr(0, line.size() - (eol == std::string_view::npos ? 0 : 1)))) {  // end of the block
            in_header = next_is_message;
            next_is_message = false;
            field_bytes = block_bytes = 0;
            pos = next;
            continue;
        }
        if (line.front() != ' ' && line.front() != '\t') {
            field_bytes = 0;
            if (message_content_type(line)) next_is_message = true;
        }
        std::size_t keep = line.size();
        if (field_bytes >= limits.max_header_field || block_bytes >= limits.max_header_block) keep = 0;
        else keep = std::min({keep, limits.max_header_field - field_bytes, limits.max_header_block - block_bytes});
        field_bytes += line.size();
        block_bytes += line.size();
        if (keep < line.size()) {
            if (out.size() + 2 >= k_max_slices) {
                end = pos;
                over = true;
                break;
            }
            out.push_back(body.substr(slice_start, pos + keep - slice_start));
            if (keep > 0) {
                out.push_back("\n");
                ++cut_fields;
            } else {
                ++dropped_lines;
            }
            slice_start = next;
        }
        pos = next;
    }
    out.push_back(body.substr(slice_start, end - std::min(end, slice_start)));
    if (cut_fields)
        defects.push_back(std::to_string(cut_fields) + " header line(s) of parts longer than " +
                          std::to_string(limits.max_header_field) + " bytes: indexed in part");
    if (dropped_lines)
        defects.push_back(std::to_string(dropped_lines) + " header line(s) of parts past the header bounds: not indexed");
    if (over) defects.push_back("too many oversized header lines in parts: the rest of the message is not indexed");
    return out;
}

void append_capped(std::string& into, std::string_view text, std::size_t cap) {
    if (into.size() >= cap) return;
    if (!into.empty()) into.push_back('\n');
    std::size_t from = into.size();
    into.append(text.substr(0, cap - std::min(cap, into.size())));
    std::replace(into.begin() + static_cast<std::ptrdiff_t>(from), into.end(), '\0', ' ');  // NULs end C strings downstream
}

// Collects display forms and index text of an address list (groups flattened).
void collect_addresses(InternetAddressList* list, std::vector<std::string>& display, std::string& index_text) {
    if (!list) return;
    int n = internet_address_list_length(list);
    for (int i = 0; i < n; ++i) {
        InternetAddress* ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            collect_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), display, index_text);
            continue;
        }
        gchar_ptr s(internet_address_to_string(ia, nullptr, FALSE));
        display.push_back(safe(s.get()));
        if (const char* name = internet_address_get_name(ia)) {
            index_text += safe(name);
            index_text.push_back(' ');
        }
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            index_text += safe(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
            index_text.push_back(' ');
        }
    }
}

// References, then In-Reply-To: the Message-IDs a message answers (threads).
void collect_references(GMimeMessage* msg, std::vector<std::string>& out) {
    auto add_all = [&](GMimeReferences* refs) {
        if (!refs) return;
        for (int i = 0, n = g_mime_references_length(refs); i < n && out.size() < 256; ++i) {
            std::string id = safe(g_mime_references_get_message_id(refs, i));
            if (!id.empty() && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(std::move(id));
        }
    };
    for (const char* name : {"References", "In-Reply-To"}) {
        const char* value = g_mime_object_get_header(GMIME_OBJECT(msg), name);
        if (!value) continue;
        GMimeReferences* refs = g_mime_references_parse(nullptr, value);
        add_all(refs);
        if (refs) g_mime_references_free(refs);
    }
}

// The first `cap` bytes of a part's content with its transfer encoding undone, read in chunks so
// that a huge part is never decoded into memory whole. With `decoded_size`, the rest is read
// through (and dropped) to count the whole decoded size.
std::string decoded_content(GMimePart* part, std::size_t cap, std::uint64_t* decoded_size) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return {};
    GMimeStream* source = g_mime_data_wrapper_get_stream(content);
    if (!source) return {};
    g_mime_stream_reset(source);
    gobj_ptr<GMimeStream> filtered(g_mime_stream_filter_new(source));
    GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(content);
    if (encoding == GMIME_CONTENT_ENCODING_BASE64 || encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
        gobj_ptr<GMimeFilter> decoder(g_mime_filter_basic_new(encoding, FALSE));
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), decoder.get());
    }
    std::string out;
    std::uint64_t total = 0;
    std::vector<char> buf(64 << 10);
    for (int idle = 0; idle < 64;) {
        ssize_t n = g_mime_stream_read(filtered.get(), buf.data(), buf.size());
        if (n < 0) break;
        if (n == 0) {
            if (g_mime_stream_eos(filtered.get())) break;
            ++idle;
            continue;
        }
        total += static_cast<std::uint64_t>(n);
        if (out.size() < cap) out.append(buf.data(), std::min(static_cast<std::size_t>(n), cap - out.size()));
        else if (!decoded_size) break;
    }
    if (decoded_size) *decoded_size = total;
    return out;
}

// Decoded (transfer encoding and charset) text of a leaf part, as UTF-8: at most `cap` bytes of
// the decoded content are read.
std::string part_text(GMimePart* part, std::uint64_t* decoded_size, std::size_t cap) {
    const std::string decoded = decoded_content(part, cap, decoded_size);
    std::string_view raw(decoded);
    if (raw.empty()) return {};
    const char* charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    if (charset && g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0) {
        const char* iconv_name = g_mime_charset_iconv_name(charset);
        gsize written = 0;
        gchar* converted = g_convert_with_fallback(raw.data(), static_cast<gssize>(raw.size()), "UTF-8", iconv_name,
                                                   "?", nullptr, &written, nullptr);
        if (!converted)  // unknown or wrong charset: the most common real-world guess
            converted = g_convert_with_fallback(raw.data(), static_cast<gssize>(raw.size()), "UTF-8", "WINDOWS-1252",
                                                "?", nullptr, &written, nullptr);
        if (converted) {
            std::string out(converted, written);
            g_free(converted);
            return text::valid_utf8(out);
        }
    }
    if (g_utf8_validate(raw.data(), static_cast<gssize>(raw.size()), nullptr)) return std::string(raw);
    gsize written = 0;
    gchar* converted = g_convert_with_fallback(raw.data(), static_cast<gssize>(raw.size()), "UTF-8", "WINDOWS-1252", "?",
                                               nullptr, &written, nullptr);
    if (converted) {
        std::string out(converted, written);
        g_free(converted);
        return out;
    }
    return text::valid_utf8(raw);
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return s;
}

std::string mime_type_of(GMimeObject* obj) {
    GMimeContentType* ct = g_mime_object_get_content_type(obj);
    if (!ct) return "text/plain";
    gchar_ptr s(g_mime_content_type_get_mime_type(ct));
    return lower(safe(s.get()));
}

std::uint64_t decoded_size(GMimePart* part) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return 0;
    gobj_ptr<GMimeStream> null(g_mime_stream_null_new());
    g_mime_data_wrapper_write_to_stream(content, null.get());
    return static_cast<std::uint64_t>(g_mime_stream_length(null.get()));
}

// Types that are never text and whose bytes are not worth sniffing.
bool opaque_type(std::string_view type) {
    return type.starts_with("image/") || type.starts_with("audio/") || type.starts_with("video/") ||
           type.starts_with("font/") || type == "application/pgp-encrypted" || type == "application/pkcs7-mime";
}

std::string message_text(std::string_view raw, int depth, const ParseLimits& limits);

// The attachment's text (index/extract) into out.attachment_text, its status into `a`.
void extract_attachment(const MimeLeaf& leaf, Attachment& a, ParsedMessage& out, const ParseLimits& limits) {
    using extract::Status;
    const std::string kind = extract::kind_of(leaf.type, leaf.filename);
    auto skip = [&](Status s, std::string reason) {
        a.size = decoded_size(leaf.part);
        a.status = s;
        a.status_reason = std::move(reason);
    };
    if (!limits.attachment_text) return skip(Status::skipped, "[index] attachment_text = false");
    if (kind.empty() && opaque_type(leaf.type)) return skip(Status::unsupported, {});
    if (out.attachment_text.size() >= limits.max_attachment_text)
        return skip(Status::skipped, "the message's attachment text limit (" + std::to_string(limits.max_attachment_text) +
                                         " bytes) is reached");
    extract::Limits el = limits.extract;
    el.max_text = std::min(el.max_text, limits.max_attachment_text - out.attachment_text.size());
    // Text kinds are read from the start only (as much as their text may hold): a 40 MB log
    // is indexed in part, not refused as too large.
    const bool streamable = kind == "text" || kind == "edifact";
    const std::uint64_t read_cap = streamable ? std::min<std::uint64_t>(el.max_bytes, 2 * el.max_text) : el.max_bytes + 1;
    std::string bytes = decoded_content(leaf.part, read_cap, &a.size);
    if (streamable && a.size > bytes.size()) {
        el.max_bytes = a.size;  // what was read is the part that is indexed
        a.status_reason = "the first " + std::to_string(bytes.size()) + " bytes";
    }
    extract::Hooks hooks;
    hooks.html_to_text = [&](std::string_view html) { return html_to_text(html.substr(0, limits.max_html)); };
    hooks.message_text = [&](std::string_view raw, int depth) { return message_text(raw, depth, limits); };
    const char* charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(leaf.part), "charset");
    extract::Extracted r = a.size > el.max_bytes
                               ? extract::Extracted{Status::too_large, "over " + std::to_string(el.max_bytes) + " bytes", {}}
                               : extract::extract(bytes, leaf.type, leaf.filename, charset ? charset : "", el, hooks,
                                                  limits.extract_depth);
    a.status = r.status;
    if (!r.reason.empty() || r.status != Status::indexed) a.status_reason = std::move(r.reason);
    append_capped(out.attachment_text, r.text, limits.max_attachment_text);
}

// Headers (subject, from, to, cc) of an attached message as searchable text.
std::string message_header_text(GMimeMessage* inner, std::size_t cap) {
    std::string t;
    if (const char* s = g_mime_message_get_subject(inner)) t += std::string_view(s).substr(0, cap);
    std::vector<std::string> ignored;
    for (auto type : {GMIME_ADDRESS_TYPE_FROM, GMIME_ADDRESS_TYPE_TO, GMIME_ADDRESS_TYPE_CC}) {
        t.push_back('\n');
        collect_addresses(g_mime_message_get_addresses(inner, type), ignored, t);
    }
    return text::valid_utf8(t);
}

// Indexes one message's leaves: body text, attachments and their text.
void walk(GMimeObject* root, ParsedMessage& out, const ParseLimits& limits) {
    std::size_t unlisted = 0;
    auto html_cap = [&](const MimeLeaf& leaf) {
        return leaf.type == "text/html" ? limits.max_html : std::numeric_limits<std::size_t>::max();
    };
    walk_leaves(
        root, limits,
        [&](const MimeLeaf& leaf) {
            if (leaf.attachment && out.attachments.size() >= limits.max_attachments) {
                ++unlisted;
                return;
            }
            if (leaf.attachment) {
                Attachment a;
                a.filename = leaf.filename;
                a.content_type = leaf.type;
                extract_attachment(leaf, a, out, limits);
                out.attachments.push_back(std::move(a));
                return;
            }
            if (out.body_text.size() >= limits.max_body_text) return;  // full: nothing more is read
            std::string t = part_text(leaf.part, nullptr, std::min(limits.max_body_text, html_cap(leaf)));
            if (leaf.type == "text/html") t = html_to_text(t);
            // An attached message's text is attachment text too (atext:), and stays body text.
            if (leaf.in_message && limits.attachment_text) append_capped(out.attachment_text, t, limits.max_attachment_text);
            append_capped(out.body_text, t, limits.max_body_text);
        },
        [&](GMimeMessage* inner) {
            // Headers of attached messages are searchable text too.
            if (const char* s = g_mime_message_get_subject(inner))
                append_capped(out.body_text, std::string_view(s).substr(0, limits.max_header_field), limits.max_body_text);
            if (limits.attachment_text)
                append_capped(out.attachment_text, message_header_text(inner, limits.max_header_field),
                              limits.max_attachment_text);
        },
        &out.defects);
    if (unlisted)
        out.defects.push_back(std::to_string(unlisted) + " attachment(s) past the first " +
                              std::to_string(limits.max_attachments) + ": not listed");
}

std::int64_t newest_received(GMimeObject* msg) {
    GMimeHeaderList* headers = g_mime_object_get_header_list(msg);
    int n = g_mime_header_list_get_count(headers);
    std::int64_t best = 0;
    for (int i = 0; i < n; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(headers, i);
        if (g_ascii_strcasecmp(g_mime_header_get_name(h), "Received") != 0) continue;
        const char* v = g_mime_header_get_value(h);
        if (!v) continue;
        const char* semi = std::strrchr(v, ';');
        if (!semi) continue;
        GDateTime* dt = g_mime_utils_header_decode_date(semi + 1);
        if (dt) {
            best = std::max<std::int64_t>(best, g_date_time_to_unix(dt));
            g_date_time_unref(dt);
        }
    }
    return best;
}

// Last resort for input GMime will not read as a message: headers by hand, rest as text.
void parse_broken(std::string_view raw, ParsedMessage& out, const ParseLimits& limits) {
    out.broken = true;
    std::size_t end = raw.find("\n\n");
    std::size_t body = end == std::string_view::npos ? 0 : end + 2;
    append_capped(out.body_text, text::valid_utf8(raw.substr(body, limits.max_body_text)), limits.max_body_text);
}

void gumbo_text(const GumboNode* node, std::string& out) {
    if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_CDATA) {
        out.append(node->v.text.text);
        return;
    }
    if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) return;
    GumboTag tag = node->v.element.tag;
    if (tag == GUMBO_TAG_SCRIPT || tag == GUMBO_TAG_STYLE || tag == GUMBO_TAG_HEAD) return;
    const GumboVector* children = &node->v.element.children;
    for (unsigned i = 0; i < children->length; ++i) gumbo_text(static_cast<const GumboNode*>(children->data[i]), out);
    switch (tag) {
        case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_BR: case GUMBO_TAG_TR: case GUMBO_TAG_LI:
        case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_TABLE:
        case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_PRE: case GUMBO_TAG_TD: case GUMBO_TAG_TH:
            out.push_back('\n');
            break;
        default:
            break;
    }
}

}  // namespace

void walk_leaves(GMimeObject* root, const ParseLimits& limits, const std::function<void(const MimeLeaf&)>& on_leaf,
                 const std::function<void(GMimeMessage*)>& on_message, std::vector<std::string>* defects) {
    struct Frame {
        GMimeObject* obj;
        int depth;
        bool in_message = false;
    };
    std::vector<Frame> stack{{root, 0}};
    while (!stack.empty()) {
        Frame f = stack.back();
        stack.pop_back();
        if (!f.obj) continue;
        if (f.depth > limits.max_depth) {
            if (defects) defects->push_back("MIME nesting deeper than " + std::to_string(limits.max_depth));
            continue;
        }
        if (GMIME_IS_MESSAGE_PART(f.obj)) {
            GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(f.obj));
            if (inner) {
                if (on_message) on_message(inner);
                stack.push_back({g_mime_message_get_mime_part(inner), f.depth + 1, true});
            }
            continue;
        }
        if (GMIME_IS_MULTIPART(f.obj)) {
            GMimeMultipart* mp = GMIME_MULTIPART(f.obj);
            int n = g_mime_multipart_get_count(mp);
            if (mime_type_of(f.obj) == "multipart/alternative") {
                // One rendering of the text: plain if there is one, else the richest.
                GMimeObject* chosen = nullptr;
                for (int i = 0; i < n && !chosen; ++i) {
                    GMimeObject* c = g_mime_multipart_get_part(mp, i);
                    if (mime_type_of(c) == "text/plain") chosen = c;
                }
                if (chosen) {
                    stack.push_back({chosen, f.depth + 1, f.in_message});
                    for (int i = n - 1; i >= 0; --i) {  // non-text alternatives may hold attachments
                        GMimeObject* c = g_mime_multipart_get_part(mp, i);
                        if (c != chosen && !mime_type_of(c).starts_with("text/")) stack.push_back({c, f.depth + 1, f.in_message});
                    }
                    continue;
                }
            }
            for (int i = n - 1; i >= 0; --i) stack.push_back({g_mime_multipart_get_part(mp, i), f.depth + 1, f.in_message});
            continue;
        }
        if (!GMIME_IS_PART(f.obj)) continue;
        MimeLeaf leaf{GMIME_PART(f.obj), mime_type_of(f.obj), safe(g_mime_part_get_filename(GMIME_PART(f.obj))), false,
                      f.in_message};
        const char* disp = g_mime_object_get_disposition(f.obj);
        leaf.attachment = (disp && g_ascii_strcasecmp(disp, "attachment") == 0) || !leaf.filename.empty() ||
                          !(leaf.type.starts_with("text/plain") || leaf.type.starts_with("text/html"));
        if (leaf.type == "application/pgp-signature" || leaf.type == "application/pkcs7-signature" ||
            leaf.type == "application/x-pkcs7-signature") {
            leaf.attachment = !leaf.filename.empty() && leaf.filename != "signature.asc" && leaf.filename != "smime.p7s";
            if (!leaf.attachment) continue;
        }
        on_leaf(leaf);
    }
}

void init_mime() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_mime_init();
        (void)parser_options();
    });
}

std::string html_to_text(std::string_view html) {
    GumboOutput* output = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
    std::string out;
    out.reserve(html.size() / 2);
    gumbo_text(output->root, out);
    gumbo_destroy_output(&kGumboDefaultOptions, output);
    return out;
}

struct BoundedMimeStream::Impl {
    std::string crlf, header;
    std::vector<std::unique_ptr<BorrowedStream>> slices;
    gobj_ptr<GMimeStream> stream;
};

BoundedMimeStream::BoundedMimeStream(std::string_view raw, const ParseLimits& limits, std::vector<std::string>* defects)
    : impl_(std::make_unique<Impl>()) {
    init_mime();
    std::vector<std::string> ignored;
    std::vector<std::string>& notes = defects ? *defects : ignored;
    if (raw.size() > G_MAXUINT) {  // the most a GMime memory stream holds; the original is kept whole
        raw = raw.substr(0, G_MAXUINT);
        notes.push_back("larger than 4 GiB: the rest is not indexed");
    }
    // GMime gets the message without copies (but for CR CR LF line ends), huge header fields
    // cut (see bounded_header).
    impl_->crlf = crlf_from_cr_runs(raw);
    if (!impl_->crlf.empty()) raw = impl_->crlf;
    std::size_t body_at = 0;
    impl_->header = bounded_header(raw, limits, body_at, notes);
    const std::string& header = impl_->header;
    // The top-level header as given to GMime, then slices of the body (see bounded_body).
    const std::string_view head = header.empty() ? raw.substr(0, body_at) : std::string_view(header);
    bool body_is_message = false;
    for (std::size_t pos = 0; pos < head.size() && !body_is_message;) {
        std::size_t eol = head.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? head.size() : eol + 1;
        body_is_message = message_content_type(head.substr(pos, next - pos));
        pos = next;
    }
    // The empty line ending the header block goes with the head, so that the body's scan
    // starts at the first body line.
    std::size_t blank_end = body_at;
    if (body_at < raw.size()) {
        std::size_t eol = raw.find('\n', body_at);
        blank_end = eol == std::string_view::npos ? raw.size() : eol + 1;
    }
    const std::vector<std::string_view> body_slices = bounded_body(raw.substr(blank_end), limits, body_is_message, notes);
    auto& slices = impl_->slices;
    auto& stream = impl_->stream;
    if (header.empty() && body_slices.size() == 1 && blank_end + body_slices[0].size() == raw.size()) {
        slices.push_back(std::make_unique<BorrowedStream>(raw));
        stream.reset(GMIME_STREAM(g_object_ref(slices.back()->get())));
    } else {
        stream.reset(g_mime_stream_cat_new());
        auto add = [&](std::string_view bytes) {
            if (bytes.empty()) return;
            slices.push_back(std::make_unique<BorrowedStream>(bytes));
            g_mime_stream_cat_add_source(GMIME_STREAM_CAT(stream.get()), slices.back()->get());
        };
        add(head);
        add(raw.substr(body_at, blank_end - body_at));
        for (auto b : body_slices) add(b);
    }
}

BoundedMimeStream::~BoundedMimeStream() = default;

GMimeStream* BoundedMimeStream::get() const { return impl_->stream.get(); }

Result<ParsedMessage> parse_message(std::string_view raw, const ParseLimits& limits, std::int64_t fallback_date) {
    init_mime();
    if (raw.empty()) return fail(Error::Kind::corrupt, "empty message");
    if (limits.attachment_text && limits.extract.isolation == extract::Isolation::process)
        extract::start_helper();  // early, while this process is small (see index/extract/isolate.cpp)
    ParsedMessage out;
    BoundedMimeStream input(raw, limits, &out.defects);
    GMimeStream* stream = input.get();
    gobj_ptr<GMimeParser> parser(g_mime_parser_new_with_stream(stream));
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    gobj_ptr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), parser_options()));
    if (!msg) {
        parse_broken(raw, out, limits);
        out.date = fallback_date;
        out.defects.push_back("not a MIME message");
        return out;
    }
    out.message_id = safe(g_mime_message_get_message_id(msg.get()));
    collect_references(msg.get(), out.references);
    out.subject = safe(g_mime_message_get_subject(msg.get()));
    std::vector<std::string> from;
    collect_addresses(g_mime_message_get_from(msg.get()), from, out.from_text);
    if (!from.empty()) out.from = from.front();
    collect_addresses(g_mime_message_get_addresses(msg.get(), GMIME_ADDRESS_TYPE_TO), out.to, out.to_text);
    collect_addresses(g_mime_message_get_addresses(msg.get(), GMIME_ADDRESS_TYPE_CC), out.cc, out.cc_text);
    collect_addresses(g_mime_message_get_addresses(msg.get(), GMIME_ADDRESS_TYPE_BCC), out.bcc, out.bcc_text);
    if (GDateTime* dt = g_mime_message_get_date(msg.get())) {
        out.date = g_date_time_to_unix(dt);
        out.date_from_header = true;
    } else if (std::int64_t rcv = newest_received(GMIME_OBJECT(msg.get())); rcv > 0) {
        out.date = rcv;
        out.defects.push_back("no usable Date header; used Received");
    } else {
        out.date = fallback_date;
        out.defects.push_back("no usable Date header");
    }
    GMimeObject* body = g_mime_message_get_mime_part(msg.get());
    if (!body) out.defects.push_back("no body");
    walk(body, out, limits);
    return out;
}

namespace {

// The text of an attached message parsed on its own (an .eml attachment, or message/rfc822 that
// GMime did not open): headers, body and its attachments' text, one container deeper.
std::string message_text(std::string_view raw, int depth, const ParseLimits& limits) {
    ParseLimits inner = limits;
    inner.extract_depth = depth;
    auto parsed = parse_message(raw, inner, 0);
    if (!parsed) return {};
    std::string t;
    for (const std::string* part : {&parsed->subject, &parsed->from_text, &parsed->to_text, &parsed->cc_text,
                                    &parsed->body_text, &parsed->attachment_text}) {
        t.append(*part);
        t.push_back('\n');
    }
    return t;
}

}  // namespace

}  // namespace mv::index
