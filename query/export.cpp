#include "query/export.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <nlohmann/json.hpp>
#include <xapian.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <random>

#include "index/document/builder.hpp"
#include "index/mime/parser.hpp"
#include "index/schema.hpp"
#include "index/text/fold.hpp"
#include "index/util/iso_date.hpp"
#include "index/util/json_text.hpp"
#include "index/util/sha256.hpp"
#include "query/mime_message.hpp"

namespace mv::query {
namespace {

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ > 2) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            if (fd_ > 2) ::close(fd_);
            fd_ = o.release();
        }
        return *this;
    }
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }

  private:
    int fd_;
};

bool write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

namespace {

// The unfolded value of the first `name` header ("" when absent).
std::optional<std::string> header_value(std::string_view msg, std::string_view name) {
    std::size_t pos = 0;
    while (pos < msg.size()) {
        std::size_t eol = msg.find('\n', pos);
        std::size_t end = eol == std::string_view::npos ? msg.size() : eol;
        std::string_view line = msg.substr(pos, end - pos);
        if (line.empty() || line == "\r") break;  // end of the header
        if (line.size() > name.size() && line[name.size()] == ':' &&
            std::equal(name.begin(), name.end(), line.begin(),
                       [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                   std::tolower(static_cast<unsigned char>(b)); })) {
            std::string value(line.substr(name.size() + 1));
            pos = end + 1;
            while (pos < msg.size() && (msg[pos] == ' ' || msg[pos] == '\t')) {  // folded
                std::size_t e2 = msg.find('\n', pos);
                std::size_t stop = e2 == std::string_view::npos ? msg.size() : e2;
                value += ' ';
                value.append(msg.substr(pos, stop - pos));
                pos = stop + 1;
            }
            return value;
        }
        pos = end + 1;
    }
    return std::nullopt;
}

// The address of a Return-Path or From value: inside <...>, else the first word with '@'.
std::string address_of(const std::string& value) {
    std::string addr;
    if (auto lt = value.find('<'); lt != std::string::npos) {
        auto gt = value.find('>', lt);
        addr = value.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
    } else {
        std::size_t pos = 0;
        while (pos < value.size()) {
            while (pos < value.size() && std::isspace(static_cast<unsigned char>(value[pos]))) ++pos;
            std::size_t end = pos;
            while (end < value.size() && !std::isspace(static_cast<unsigned char>(value[end]))) ++end;
            std::string word = value.substr(pos, end - pos);
            if (word.find('@') != std::string::npos) {
                addr = word;
                break;
            }
            pos = end;
        }
    }
    std::string out;
    for (char c : addr)
        if (static_cast<unsigned char>(c) > 0x20 && c != 0x7f) out += c;
    return out;
}

}  // namespace

std::string envelope_sender(std::string_view msg) {
    if (auto rp = header_value(msg, "Return-Path")) {
        auto a = address_of(*rp);
        return a.empty() ? "MAILER-DAEMON" : a;  // "<>": a bounce
    }
    if (auto from = header_value(msg, "From")) {
        auto a = address_of(*from);
        if (!a.empty()) return a;
    }
    return "MAILER-DAEMON";
}

std::string from_line(std::string_view msg, std::int64_t date) {
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t t = static_cast<std::time_t>(date);
    std::tm tm{};
    if (!gmtime_r(&t, &tm)) {
        t = 0;
        gmtime_r(&t, &tm);
    }
    char buf[64];  // asctime's layout, independent of the locale
    std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday % 7], months[tm.tm_mon % 12],
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
    return "From " + envelope_sender(msg) + " " + buf;
}

void append_mboxrd(std::string& out, std::string_view msg, std::int64_t date) {
    out += from_line(msg, date);
    out += '\n';
    std::size_t pos = 0;
    while (pos < msg.size()) {
        auto eol = msg.find('\n', pos);
        std::size_t end = eol == std::string_view::npos ? msg.size() : eol + 1;
        std::string_view line = msg.substr(pos, end - pos);
        std::size_t q = 0;
        while (q < line.size() && line[q] == '>') ++q;
        if (line.substr(q).starts_with("From ")) out += '>';
        out += line;
        pos = end;
    }
    if (msg.empty() || msg.back() != '\n') out += '\n';
    out += '\n';
}

Result<ExportProgress> export_messages(const index::Archive& archive, const std::vector<std::uint64_t>& docnos,
                                       ExportFormat format, const std::filesystem::path& dest,
                                       const std::function<void(const ExportProgress&)>& progress,
                                       ExistingFiles existing) {
    namespace fs = std::filesystem;
    ExportProgress p;
    p.total = docnos.size();
    const bool refuse = existing == ExistingFiles::refuse;
    const std::string exists_hint = " exists already (--force overwrites it)";
    Fd out;
    std::string tmp;  // the mbox being written, linked or renamed to `dest` at the end
    struct Cleanup {
        std::string* path;
        ~Cleanup() {
            if (!path->empty()) ::unlink(path->c_str());
        }
    } cleanup{&tmp};
    std::error_code ec;
    if (format == ExportFormat::mbox) {
        if (dest == "-") {
            out = Fd(STDOUT_FILENO);
        } else {
            if (refuse && fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
                return fail(Error::Kind::usage, dest.string() + exists_hint);
            std::string pattern = dest.string() + ".part-XXXXXX";
            int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
            if (fd < 0) return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
            tmp = pattern;
            out = Fd(fd);
        }
    } else {
        fs::create_directories(dest, ec);
        if (ec) return fail(Error::Kind::io, dest.string() + ": " + ec.message());
        if (refuse)
            for (std::uint64_t docno : docnos) {
                auto file = dest / (std::to_string(docno) + ".eml");
                if (fs::symlink_status(file, ec).type() != fs::file_type::not_found)
                    return fail(Error::Kind::usage, file.string() + exists_hint);
            }
    }
    std::string buf;
    for (std::uint64_t docno : docnos) {
        auto raw = archive.read_original(docno);
        if (!raw) {
            p.errors.push_back("message " + std::to_string(docno) + ": " + raw.error().message);
            ++p.done;
            if (progress) progress(p);
            continue;
        }
        if (format == ExportFormat::mbox) {
            std::int64_t date = 0;
            if (auto doc = archive.document(docno)) {
                auto v = doc->get_value(schema::k_slot_date);
                if (!v.empty()) date = static_cast<std::int64_t>(Xapian::sortable_unserialise(v));
            }
            buf.clear();
            append_mboxrd(buf, *raw, date);
            if (!write_all(out.get(), buf)) return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
        } else {
            auto file = dest / (std::to_string(docno) + ".eml");
            int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (refuse ? O_EXCL : O_TRUNC);
            Fd f(::open(file.c_str(), flags, 0644));
            if (f.get() < 0 && errno == EEXIST) return fail(Error::Kind::usage, file.string() + exists_hint);
            if (f.get() < 0 || !write_all(f.get(), *raw))
                return fail(Error::Kind::io, file.string() + ": " + std::strerror(errno));
            if (::close(f.release()) != 0) return fail(Error::Kind::io, file.string() + ": " + std::strerror(errno));
        }
        p.bytes += raw->size();
        ++p.done;
        if (progress) progress(p);
    }
    if (format == ExportFormat::mbox && !tmp.empty()) {
        if (::fsync(out.get()) != 0 || ::close(out.release()) != 0)
            return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
        bool placed = false;
        if (refuse) {  // link() never replaces a file that appeared meanwhile
            if (::link(tmp.c_str(), dest.c_str()) == 0) {
                placed = true;
            } else {
                int e = errno;
                if (e == EEXIST) return fail(Error::Kind::usage, dest.string() + exists_hint);
                if (e != EPERM && e != EOPNOTSUPP && e != ENOSYS)  // else: no hard links here, rename below
                    return fail(Error::Kind::io, dest.string() + ": " + std::strerror(e));
                if (fs::symlink_status(dest, ec).type() != fs::file_type::not_found)
                    return fail(Error::Kind::usage, dest.string() + exists_hint);
            }
        }
        if (!placed) {
            if (::rename(tmp.c_str(), dest.c_str()) != 0)
                return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
            tmp.clear();  // renamed: nothing to remove
        }
    }
    return p;
}

}  // namespace mv::query

// ---- attachments ----

namespace mv::query {
namespace {

// The extension for an unnamed attachment of `type`.
std::string extension_for(std::string_view type) {
    static const std::pair<std::string_view, std::string_view> table[] = {
        {"application/pdf", ".pdf"},
        {"text/plain", ".txt"},
        {"text/html", ".html"},
        {"text/csv", ".csv"},
        {"text/calendar", ".ics"},
        {"text/vcard", ".vcf"},
        {"text/x-vcard", ".vcf"},
        {"text/xml", ".xml"},
        {"application/xml", ".xml"},
        {"application/json", ".json"},
        {"message/rfc822", ".eml"},
        {"message/global", ".eml"},
        {"image/jpeg", ".jpg"},
        {"image/png", ".png"},
        {"image/gif", ".gif"},
        {"image/svg+xml", ".svg"},
        {"application/zip", ".zip"},
        {"application/gzip", ".gz"},
        {"application/msword", ".doc"},
        {"application/vnd.ms-excel", ".xls"},
        {"application/vnd.ms-powerpoint", ".ppt"},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"},
        {"application/vnd.oasis.opendocument.text", ".odt"},
        {"application/vnd.oasis.opendocument.spreadsheet", ".ods"},
        {"application/vnd.oasis.opendocument.presentation", ".odp"},
        {"application/rtf", ".rtf"},
        {"application/edifact", ".edi"},
        {"application/octet-stream", ".bin"},
    };
    auto semi = type.find(';');
    type = type.substr(0, semi);
    for (const auto& [t, ext] : table)
        if (type == t) return std::string(ext);
    auto slash = type.find('/');
    if (slash != std::string_view::npos) {
        std::string_view sub = type.substr(slash + 1);
        if (!sub.empty() && sub.size() <= 10 &&
            std::all_of(sub.begin(), sub.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }))
            return "." + std::string(sub);
    }
    return ".bin";
}

// Decodes one code point of valid UTF-8 at `s[i]`; advances `i`.
char32_t next_code_point(std::string_view s, std::size_t& i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    if (i + static_cast<std::size_t>(len) > s.size()) len = static_cast<int>(s.size() - i);
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    i += static_cast<std::size_t>(len);
    return cp;
}

bool is_unsafe_code_point(char32_t cp) {
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return true;  // C0, DEL, C1
    switch (cp) {
        case '<': case '>': case ':': case '"': case '|': case '?': case '*': case '/': case '\\':
            return true;
        default:
            break;
    }
    // Bidi controls (a name shown as "invoice_fdp.exe" that is "invoice_exe.pdf"), BOM.
    return cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xfeff;
}

bool is_device_name(std::string_view name) {
    std::string_view stem = name.substr(0, name.find('.'));
    while (!stem.empty() && stem.back() == ' ') stem.remove_suffix(1);
    std::string up;
    for (char c : stem) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    static const std::string_view devices[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"};
    for (auto d : devices)
        if (up == d) return true;
    if (up.size() == 4 && (up.starts_with("COM") || up.starts_with("LPT")) && up[3] >= '0' && up[3] <= '9') return true;
    // COM¹ COM² COM³ (superscript digits count as well on Windows)
    if ((up.starts_with("COM") || up.starts_with("LPT")) &&
        (up.substr(3) == "\xc2\xb9" || up.substr(3) == "\xc2\xb2" || up.substr(3) == "\xc2\xb3"))
        return true;
    return false;
}

void trim_dots_and_spaces(std::string& s, bool leading) {
    if (leading) {
        std::size_t k = 0;
        while (k < s.size() && (s[k] == '.' || s[k] == ' ')) ++k;
        s.erase(0, k);
    }
    while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
}

// Longest prefix of `s` of at most `max` bytes that ends on a UTF-8 boundary.
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
    return s.substr(0, cut);
}

bool glob(const std::string& pattern, const std::string& text) {
    return ::fnmatch(pattern.c_str(), text.c_str(), FNM_NOESCAPE) == 0;
}

}  // namespace

std::string safe_file_name(std::string_view name, std::string_view content_type, std::size_t max_bytes) {
    std::string s = text::valid_utf8(name);
    if (auto sep = s.find_last_of("/\\"); sep != std::string::npos) s.erase(0, sep + 1);  // the last component
    if (s.size() >= 2 && std::isalpha(static_cast<unsigned char>(s[0])) && s[1] == ':') s.erase(0, 2);  // C:name
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        std::size_t start = i;
        char32_t cp = next_code_point(s, i);
        if (is_unsafe_code_point(cp)) out += '_';
        else out.append(s, start, i - start);
    }
    trim_dots_and_spaces(out, true);
    if (out.empty() || out.find_first_not_of('_') == std::string::npos) out = "attachment" + extension_for(content_type);
    if (is_device_name(out)) out.insert(0, "_");
    if (max_bytes < 16) max_bytes = 16;
    if (out.size() > max_bytes) {
        std::string ext;
        if (auto dot = out.rfind('.'); dot != std::string::npos && dot > 0 && out.size() - dot <= 16 &&
                                       std::all_of(out.begin() + static_cast<std::ptrdiff_t>(dot) + 1, out.end(), [](char c) {
                                           return std::isalnum(static_cast<unsigned char>(c)) != 0;
                                       }))
            ext = out.substr(dot);
        std::string stem(utf8_prefix(out, max_bytes - ext.size()));
        trim_dots_and_spaces(stem, false);
        if (stem.empty()) stem = "attachment";
        out = stem + ext;
    }
    return out;
}

std::string attachment_file_name(std::uint64_t docno, std::size_t n, std::string_view name,
                                 std::string_view content_type) {
    return std::to_string(docno) + "-" + std::to_string(n) + "-" + safe_file_name(name, content_type);
}

bool AttachmentFilter::matches(std::string_view filename, std::string_view content_type) const {
    if (!types.empty()) {
        const std::string type = text::fold(content_type.substr(0, content_type.find(';')));
        const std::string name = text::fold(filename);
        std::string ext;
        if (auto dot = name.rfind('.'); dot != std::string::npos) ext = name.substr(dot + 1);
        const std::string sub = type.find('/') == std::string::npos ? std::string() : type.substr(type.find('/') + 1);
        bool any = false;
        for (const auto& t : types) {
            const std::string p = text::fold(t);
            if (p.find('/') != std::string::npos ? glob(p, type) : ((!ext.empty() && glob(p, ext)) || glob(p, sub))) {
                any = true;
                break;
            }
        }
        if (!any) return false;
    }
    if (!names.empty()) {
        const std::string name = text::fold(filename);
        if (std::none_of(names.begin(), names.end(), [&](const std::string& g) { return glob(text::fold(g), name); }))
            return false;
    }
    return true;
}

void for_each_attachment(std::string_view raw, const std::function<void(AttachmentFile&)>& each) {
    mime::Parsed p = mime::parse(raw);
    if (!p.msg) return;
    std::size_t n = 0;
    // The walk of query/inspect.cpp (walk_attachments), so numbers are show's.
    index::walk_leaves(g_mime_message_get_mime_part(p.msg.get()), index::ParseLimits{}, [&](const index::MimeLeaf& leaf) {
        if (!leaf.attachment) return;
        AttachmentFile a;
        a.n = ++n;
        a.filename = leaf.filename;
        a.content_type = leaf.type;
        if (GMimeDataWrapper* content = g_mime_part_get_content(leaf.part)) {
            mime::gobj<GMimeStream> mem(g_mime_stream_mem_new());
            g_mime_data_wrapper_write_to_stream(content, mem.get());
            GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
            a.bytes.assign(reinterpret_cast<const char*>(bytes->data), bytes->len);
        }
        each(a);
    });
}

namespace {

std::string csv_field(std::string_view v) {
    if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
    std::string out = "\"";
    for (char c : v) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

}  // namespace

std::string manifest_csv_header() { return "docno,n,date,from,subject,name,file,type,size,sha256\r\n"; }

std::string manifest_csv_line(const ManifestRow& r) {
    std::string out;
    out += std::to_string(r.docno) + ',' + std::to_string(r.n) + ',' + index::iso_date(r.date) + ',';
    out += csv_field(text::valid_utf8(r.from)) + ',' + csv_field(text::valid_utf8(r.subject)) + ',';
    out += csv_field(text::valid_utf8(r.name)) + ',' + csv_field(r.file) + ',' + csv_field(r.type) + ',';
    out += std::to_string(r.size) + ',' + r.sha256 + "\r\n";
    return out;
}

std::string manifest_json_line(const ManifestRow& r) {
    nlohmann::ordered_json j;
    j["docno"] = r.docno;
    j["n"] = r.n;
    j["date"] = index::iso_date(r.date);
    j["from"] = r.from;
    j["subject"] = r.subject;
    j["name"] = r.name;
    j["file"] = r.file;
    j["type"] = r.type;
    j["size"] = r.size;
    j["sha256"] = r.sha256;
    return index::json_text(j) + "\n";
}

namespace {

constexpr std::string_view k_part_prefix = ".mailvault-part-";
constexpr std::uint64_t k_step_files = 256;
constexpr std::uint64_t k_step_bytes = 64ull << 20;
constexpr std::size_t k_max_error_lines = 1000;

std::string errno_text(int e) { return std::strerror(e); }

// A new temporary file in `dirfd` (O_EXCL: never an existing file or link); its name in `name`.
int create_temp(int dirfd, std::string& name) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    for (int tries = 0; tries < 100; ++tries) {
        char suffix[20];
        std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
        name = std::string(k_part_prefix) + suffix;
        int fd = ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

// SHA-256 (hex) and size of an existing regular file, opened without following a link;
// nullopt with errno set when it cannot be read.
std::optional<std::pair<std::string, std::uint64_t>> hash_file(int dirfd, const std::string& name) {
    Fd f(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (f.get() < 0) return std::nullopt;
    Sha256 h;
    std::uint64_t size = 0;
    std::string buf(1 << 16, '\0');
    for (;;) {
        ssize_t n = ::read(f.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        if (n == 0) break;
        h.update(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        size += static_cast<std::uint64_t>(n);
    }
    return std::make_pair(to_hex(h.final()), size);
}

// The manifest being written: two temporary files renamed into place by finish().
class ManifestWriter {
  public:
    explicit ManifestWriter(int dirfd) : dirfd_(dirfd) {}
    ~ManifestWriter() {
        for (auto* name : {&csv_name_, &json_name_})
            if (!name->empty()) ::unlinkat(dirfd_, name->c_str(), 0);
    }
    Result<void> open() {
        csv_ = Fd(create_temp(dirfd_, csv_name_));
        if (csv_.get() < 0) return fail(Error::Kind::io, errno_text(errno));
        json_ = Fd(create_temp(dirfd_, json_name_));
        if (json_.get() < 0) return fail(Error::Kind::io, errno_text(errno));
        return add_text(manifest_csv_header(), "");
    }
    Result<void> add(const ManifestRow& r) { return add_text(manifest_csv_line(r), manifest_json_line(r)); }
    // Makes what was written so far durable (the files it lists were fsynced before).
    Result<void> sync() {
        if (::fsync(csv_.get()) != 0 || ::fsync(json_.get()) != 0 || ::fsync(dirfd_) != 0)
            return fail(Error::Kind::io, "manifest: " + errno_text(errno));
        return ok();
    }
    Result<void> finish() {
        if (auto s = sync(); !s) return s;
        if (::close(csv_.release()) != 0 || ::close(json_.release()) != 0)
            return fail(Error::Kind::io, "manifest: " + errno_text(errno));
        // rename() replaces a planted symlink itself, never its target.
        if (::renameat(dirfd_, csv_name_.c_str(), dirfd_, "manifest.csv") != 0)
            return fail(Error::Kind::io, "manifest.csv: " + errno_text(errno));
        csv_name_.clear();
        if (::renameat(dirfd_, json_name_.c_str(), dirfd_, "manifest.jsonl") != 0)
            return fail(Error::Kind::io, "manifest.jsonl: " + errno_text(errno));
        json_name_.clear();
        if (::fsync(dirfd_) != 0) return fail(Error::Kind::io, "manifest: " + errno_text(errno));
        return ok();
    }

  private:
    Result<void> add_text(std::string_view csv, std::string_view json) {
        if (!write_all(csv_.get(), csv) || !write_all(json_.get(), json))
            return fail(Error::Kind::io, "manifest: " + errno_text(errno));
        return ok();
    }
    int dirfd_;
    Fd csv_, json_;
    std::string csv_name_, json_name_;
};

enum class Placed { written, kept };

// Puts `bytes` into `dirfd` as `name`: kept when a regular file with the same SHA-256 is
// there; else through a temporary file, fsynced, renamed without replacing (refuse) or over
// what is there (replace; a symlink is replaced itself, never followed).
Result<Placed> place_file(int dirfd, const std::string& name, std::string_view bytes, const std::string& sha,
                          bool replace) {
    struct stat st{};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
            if (!replace) return fail(Error::Kind::usage, "is a symbolic link, not followed (--force replaces the link)");
        } else if (!S_ISREG(st.st_mode)) {
            return fail(Error::Kind::usage, "exists and is not a regular file");
        } else {
            auto have = hash_file(dirfd, name);
            if (!have) return fail(Error::Kind::io, "cannot read the existing file: " + errno_text(errno));
            if (have->first == sha && have->second == bytes.size()) return Placed::kept;
            if (!replace) return fail(Error::Kind::usage, "exists with other content (--force replaces it)");
        }
    } else if (errno != ENOENT) {
        return fail(Error::Kind::io, errno_text(errno));
    }
    std::string tmp;
    Fd f(create_temp(dirfd, tmp));
    if (f.get() < 0) return fail(Error::Kind::io, errno_text(errno));
    struct Unlink {
        int dirfd;
        std::string* name;
        ~Unlink() {
            if (!name->empty()) ::unlinkat(dirfd, name->c_str(), 0);
        }
    } cleanup{dirfd, &tmp};
    if (!write_all(f.get(), bytes) || ::fsync(f.get()) != 0) return fail(Error::Kind::io, errno_text(errno));
    if (::close(f.release()) != 0) return fail(Error::Kind::io, errno_text(errno));
    if (replace) {
        if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) return fail(Error::Kind::io, errno_text(errno));
        tmp.clear();
        return Placed::written;
    }
    if (::renameat2(dirfd, tmp.c_str(), dirfd, name.c_str(), RENAME_NOREPLACE) == 0) {
        tmp.clear();
        return Placed::written;
    }
    int e = errno;
    if (e == EEXIST) return fail(Error::Kind::usage, "appeared while it was written; left as it is");
    if (e != EINVAL && e != ENOSYS && e != EOPNOTSUPP) return fail(Error::Kind::io, errno_text(e));
    // No RENAME_NOREPLACE on this file system: link() never replaces either.
    if (::linkat(dirfd, tmp.c_str(), dirfd, name.c_str(), 0) != 0) {
        e = errno;
        if (e == EEXIST) return fail(Error::Kind::usage, "appeared while it was written; left as it is");
        return fail(Error::Kind::io, errno_text(e));
    }
    return Placed::written;  // the temporary name is unlinked by `cleanup`
}

// Removes the temporary files a killed run left in `dirfd` (regular files only).
void remove_stale_parts(const std::filesystem::path& dir, int dirfd) {
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.starts_with(k_part_prefix)) continue;
        struct stat st{};
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
            ::unlinkat(dirfd, name.c_str(), 0);
    }
}

}  // namespace

Result<AttachmentExportProgress> export_attachments(const index::Archive& archive,
                                                    const std::vector<std::uint64_t>& docnos,
                                                    const std::filesystem::path& dir, const AttachmentFilter& filter,
                                                    const std::function<void(const AttachmentExportProgress&)>& progress,
                                                    ExistingFiles existing, const std::atomic<bool>* stop) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(Error::Kind::io, dir.string() + ": " + ec.message());
    Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dirfd.get() < 0) return fail(Error::Kind::io, dir.string() + ": " + errno_text(errno));
    // One export per directory at a time: the next step removes temporary files it finds.
    if (::flock(dirfd.get(), LOCK_EX | LOCK_NB) != 0)
        return fail(Error::Kind::locked, dir.string() + ": another export is writing into it");
    remove_stale_parts(dir, dirfd.get());
    ManifestWriter manifest(dirfd.get());
    if (auto o = manifest.open(); !o) return fail(Error::Kind::io, dir.string() + ": " + o.error().message);

    AttachmentExportProgress p;
    p.messages_total = docnos.size();
    const bool replace = existing == ExistingFiles::replace;
    auto note = [&](std::string line) {
        ++p.failed;
        if (p.errors.size() < k_max_error_lines) p.errors.push_back(std::move(line));
    };
    std::uint64_t step_files = 0, step_bytes = 0;
    Result<void> fatal = ok();
    for (std::uint64_t docno : docnos) {
        if (stop && stop->load()) {
            p.interrupted = true;
            break;
        }
        const std::string msg = "message " + std::to_string(docno);
        auto skip = [&](const std::string& why) {  // this message failed; the others go on
            note(msg + ": " + why);
            ++p.messages_done;
            if (progress) progress(p);
        };
        index::DocData data;
        try {
            auto doc = archive.document(docno);
            if (!doc) {
                skip("not in the archive");
                continue;
            }
            data = index::DocData::from_json(doc->get_data());
        } catch (const Xapian::Error& e) {
            skip(e.get_msg());
            continue;
        }
        auto raw = archive.read_original(docno);
        if (!raw) {
            skip(raw.error().message);
            continue;
        }
        for_each_attachment(*raw, [&](AttachmentFile& a) {
            if (!fatal || !filter.matches(a.filename, a.content_type)) return;
            ManifestRow row;
            row.docno = docno;
            row.n = a.n;
            row.date = data.date;
            row.from = data.from;
            row.subject = data.subject;
            row.name = a.filename;
            row.file = attachment_file_name(docno, a.n, a.filename, a.content_type);
            row.type = a.content_type;
            row.size = a.bytes.size();
            row.sha256 = to_hex(sha256(a.bytes));
            auto placed = place_file(dirfd.get(), row.file, a.bytes, row.sha256, replace);
            if (!placed) {
                const std::string line = msg + " attachment " + std::to_string(a.n) + ": " +
                                         (dir / row.file).string() + ": " + placed.error().message;
                if (placed.error().kind == Error::Kind::io) {  // the directory cannot be written: stop
                    fatal = fail(Error::Kind::io, line);
                    note(line);
                    return;
                }
                note(line);
                return;
            }
            if (*placed == Placed::written) {
                ++p.written;
                p.bytes += row.size;
                step_bytes += row.size;
            } else {
                ++p.kept;
            }
            if (auto m = manifest.add(row); !m) {
                fatal = fail(Error::Kind::io, dir.string() + ": " + m.error().message);
                note(fatal.error().message);
                return;
            }
            if (++step_files >= k_step_files || step_bytes >= k_step_bytes) {
                step_files = step_bytes = 0;
                if (auto s = manifest.sync(); !s) {
                    fatal = fail(Error::Kind::io, dir.string() + ": " + s.error().message);
                    note(fatal.error().message);
                }
            }
        });
        ++p.messages_done;
        if (progress) progress(p);
        if (!fatal) break;
    }
    if (!fatal) p.aborted = true;
    // Stopped or not, the manifest lists what this run exported (when it can still be written).
    if (auto f = manifest.finish(); !f) {
        p.aborted = true;
        note(dir.string() + ": " + f.error().message);
    }
    return p;
}

}  // namespace mv::query
