#include "query/links.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "index/text/fold.hpp"

namespace mv::query {
namespace {

constexpr std::string_view k_placeholders[] = {"base_url", "docno", "msgid", "sha256", "mailbox", "folder", "source"};

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
}

}  // namespace

Result<void> validate_template(std::string_view t) {
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] == '}') return fail(Error::Kind::usage, "links.template: \"}\" without \"{\" at position " + std::to_string(i + 1));
        if (t[i] != '{') continue;
        auto close = t.find('}', i);
        if (close == std::string_view::npos)
            return fail(Error::Kind::usage, "links.template: \"{\" is never closed at position " + std::to_string(i + 1));
        auto name = t.substr(i + 1, close - i - 1);
        if (std::find(std::begin(k_placeholders), std::end(k_placeholders), name) == std::end(k_placeholders))
            return fail(Error::Kind::usage, "links.template: unknown placeholder {" + std::string(name) +
                                                "} (known: {base_url} {docno} {msgid} {sha256} {mailbox} {folder} {source})");
        i = close;
    }
    return ok();
}

std::string url_escape(std::string_view s) {
    static const char* k_hex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 15];
        }
    }
    return out;
}

LinkBuilder::LinkBuilder(LinkConfig config) : config_(std::move(config)), field_(lower(config_.title_field)) {
    while (!config_.base_url.empty() && config_.base_url.back() == '/') config_.base_url.pop_back();
    while (!field_.empty() && (field_.back() == ':' || field_.back() == ' ')) field_.pop_back();
}

std::string LinkBuilder::link(std::uint64_t docno, const index::DocData& d) const {
    // A message without Message-ID cannot be linked by it: the docno link stands in.
    static const std::string k_docno_template = "{base_url}/m/{docno}";
    const std::string& t =
        d.message_id.empty() && config_.templ.find("{msgid}") != std::string::npos ? k_docno_template : config_.templ;
    std::string out;
    out.reserve(t.size() + config_.base_url.size() + 16);
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '{') {
            out += t[i];
            continue;
        }
        auto close = t.find('}', i);
        if (close == std::string::npos) {
            out.append(t, i);
            break;
        }
        std::string_view name(t.data() + i + 1, close - i - 1);
        const index::Location* first = d.locations.empty() ? nullptr : &d.locations.front();
        if (name == "base_url") out += config_.base_url;
        else if (name == "docno") out += std::to_string(docno);
        else if (name == "msgid") out += url_escape(d.message_id);
        else if (name == "sha256") out += url_escape(d.sha256);
        else if (name == "mailbox") out += url_escape(first ? first->mailbox : "");
        else if (name == "folder") out += url_escape(first ? first->folder : "");
        else if (name == "source") out += url_escape(first ? first->source : "");
        else out.append(t, i, close - i + 1);
        i = close;
    }
    return out;
}

bool LinkBuilder::needs_headers() const {
    return !field_.empty() && field_ != "subject" && field_ != "from" && field_ != "to" && field_ != "cc" &&
           field_ != "message-id" && field_ != "msgid";
}

std::string LinkBuilder::title(std::uint64_t docno, const index::DocData& d, const HeaderLookup& headers) const {
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
        return s;
    };
    std::string value;
    const std::string fallback = std::to_string(docno) + ": " + (d.subject.empty() ? "(no subject)" : d.subject);
    if (field_.empty()) return fallback;
    if (field_ == "subject") value = d.subject;
    else if (field_ == "from") value = d.from;
    else if (field_ == "to") value = join(d.to);
    else if (field_ == "cc") value = join(d.cc);
    else if (field_ == "message-id" || field_ == "msgid") value = d.message_id;
    else if (headers) value = headers(field_);
    if (value.empty()) return fallback;
    return value;
}

std::string header_value(std::string_view raw, std::string_view name) {
    // Walk the header block line by line, unfolding continuations.
    std::size_t pos = 0;
    std::string found;
    bool in_match = false;
    while (pos < raw.size()) {
        auto eol = raw.find('\n', pos);
        std::string_view line = raw.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        pos = eol == std::string_view::npos ? raw.size() : eol + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // end of headers
        if (line[0] == ' ' || line[0] == '\t') {
            if (in_match) {
                found += ' ';
                auto s = line.find_first_not_of(" \t");
                if (s != std::string_view::npos) found += line.substr(s);
            }
            continue;
        }
        if (in_match) break;  // first occurrence only
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        auto hname = line.substr(0, colon);
        while (!hname.empty() && (hname.back() == ' ' || hname.back() == '\t')) hname.remove_suffix(1);
        if (hname.size() == name.size() &&
            std::equal(hname.begin(), hname.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
            })) {
            in_match = true;
            auto v = line.substr(colon + 1);
            auto s = v.find_first_not_of(" \t");
            found = s == std::string_view::npos ? std::string() : std::string(v.substr(s));
        }
    }
    while (!found.empty() && (found.back() == ' ' || found.back() == '\t')) found.pop_back();
    if (found.find("=?") == std::string::npos) return text::valid_utf8(found);
    std::string valid = text::valid_utf8(found);
    char* decoded = g_mime_utils_header_decode_text(nullptr, valid.c_str());
    if (!decoded) return valid;
    std::string out = text::valid_utf8(decoded);
    g_free(decoded);
    return out;
}

}  // namespace mv::query
