#include "query/export.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <xapian.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "index/schema.hpp"

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
