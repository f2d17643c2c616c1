#include "query/export.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

void append_mboxrd(std::string& out, std::string_view msg) {
    out += "From mboxrd@z Thu Jan  1 00:00:00 1970\n";
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
                                       const std::function<void(const ExportProgress&)>& progress) {
    ExportProgress p;
    p.total = docnos.size();
    Fd out;
    std::filesystem::path tmp;
    if (format == ExportFormat::mbox) {
        if (dest == "-") {
            out = Fd(STDOUT_FILENO);
        } else {
            tmp = dest;
            tmp += ".part";
            int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
            out = Fd(fd);
        }
    } else {
        std::error_code ec;
        std::filesystem::create_directories(dest, ec);
        if (ec) return fail(Error::Kind::io, dest.string() + ": " + ec.message());
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
            buf.clear();
            append_mboxrd(buf, *raw);
            if (!write_all(out.get(), buf)) return fail(Error::Kind::io, dest.string() + ": " + std::strerror(errno));
        } else {
            auto file = dest / (std::to_string(docno) + ".eml");
            Fd f(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
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
        std::error_code ec;
        std::filesystem::rename(tmp, dest, ec);
        if (ec) return fail(Error::Kind::io, dest.string() + ": " + ec.message());
    }
    return p;
}

}  // namespace mv::query
