#include "ingest/local/local_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <set>

namespace mv::ingest {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t k_sniff_bytes = 16 << 10;  // what classification looks at
constexpr int k_max_depth = 64;                   // directory nesting walked
constexpr std::size_t k_max_listed = 100;         // skip and error lines kept

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_maildir(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p / "cur", ec) || fs::is_directory(p / "new", ec);
}

bool contains_maildir(const fs::path& p, int depth) {
    if (is_maildir(p)) return true;
    if (depth == 0) return false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(p, ec))
        if (!e.is_symlink(ec) && e.is_directory(ec) && contains_maildir(e.path(), depth - 1)) return true;
    return false;
}

std::int64_t mtime_of(const fs::path& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_mtime) : 0;
}

// Size on disk, at least 1 (an mbox file's share of the progress estimate).
std::uint64_t file_size_of(const fs::path& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 && st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 1;
}

// ---- Byte inputs: plain, gzip or zstd, chosen by the file's magic bytes, not its name.

enum class Compression { none, gzip, zstd, bzip2, xz };

Compression compression_of(std::string_view head) {
    auto u = [&](std::size_t i) { return i < head.size() ? static_cast<unsigned char>(head[i]) : 0u; };
    if (u(0) == 0x1f && u(1) == 0x8b) return Compression::gzip;
    if (u(0) == 0x28 && u(1) == 0xb5 && u(2) == 0x2f && u(3) == 0xfd) return Compression::zstd;
    if (head.starts_with("BZh")) return Compression::bzip2;
    if (head.size() >= 6 && head.substr(0, 6) == std::string_view("\xFD" "7zXZ\0", 6)) return Compression::xz;
    return Compression::none;
}

class ByteInput {
  public:
    virtual ~ByteInput() = default;
    // Fills up to n bytes; 0 at end; -1 on error (truncated or corrupt data).
    virtual long read(char* buf, std::size_t n) = 0;
    // Bytes of the file (compressed, when it is) taken in so far: for the progress estimate.
    virtual std::uint64_t consumed() const = 0;
};

class PlainInput : public ByteInput {
  public:
    explicit PlainInput(int fd) : fd_(fd) {}
    ~PlainInput() override { ::close(fd_); }
    long read(char* buf, std::size_t n) override {
        for (;;) {
            ssize_t r = ::read(fd_, buf, n);
            if (r < 0 && errno == EINTR) continue;
            if (r > 0) consumed_ += static_cast<std::uint64_t>(r);
            return static_cast<long>(r);
        }
    }
    std::uint64_t consumed() const override { return consumed_; }

  private:
    int fd_;
    std::uint64_t consumed_ = 0;
};

class GzInput : public ByteInput {
  public:
    explicit GzInput(gzFile f) : f_(f) {}
    ~GzInput() override { gzclose(f_); }
    long read(char* buf, std::size_t n) override {
        int got = gzread(f_, buf, static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30)));
        if (got < 0) return -1;
        if (got == 0) {
            int err = Z_OK;
            gzerror(f_, &err);
            if (err != Z_OK) return -1;  // truncated or corrupt
        }
        return got;
    }
    std::uint64_t consumed() const override {
        z_off_t at = gzoffset(f_);
        return at > 0 ? static_cast<std::uint64_t>(at) : 0;
    }

  private:
    gzFile f_;
};

class ZstdInput : public ByteInput {
  public:
    explicit ZstdInput(int fd) : raw_(fd), dctx_(ZSTD_createDStream()), in_buf_(ZSTD_DStreamInSize()) {
        ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, 31);
    }
    ~ZstdInput() override { ZSTD_freeDStream(dctx_); }
    long read(char* buf, std::size_t n) override {
        ZSTD_outBuffer out{buf, n, 0};
        while (out.pos == 0) {
            if (in_.pos == in_.size) {
                long got = raw_.read(in_buf_.data(), in_buf_.size());
                if (got < 0) return -1;
                if (got == 0) return frame_open_ ? -1 : 0;  // a frame cut short: truncated file
                in_ = {in_buf_.data(), static_cast<std::size_t>(got), 0};
            }
            std::size_t r = ZSTD_decompressStream(dctx_, &out, &in_);
            if (ZSTD_isError(r)) return -1;
            frame_open_ = r != 0;
        }
        return static_cast<long>(out.pos);
    }
    std::uint64_t consumed() const override { return raw_.consumed() - (in_.size - in_.pos); }

  private:
    PlainInput raw_;
    ZSTD_DStream* dctx_;
    std::vector<char> in_buf_;
    ZSTD_inBuffer in_{nullptr, 0, 0};
    bool frame_open_ = false;
};

Result<std::unique_ptr<ByteInput>> open_input(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, p.string() + ": " + std::strerror(errno));
    char magic[6] = {};
    ssize_t n = ::pread(fd, magic, sizeof magic, 0);
    switch (compression_of(std::string_view(magic, n > 0 ? static_cast<std::size_t>(n) : 0))) {
        case Compression::gzip: {
            gzFile f = gzdopen(fd, "rb");
            if (!f) {
                ::close(fd);
                return fail(Error::Kind::io, p.string() + ": cannot open");
            }
            gzbuffer(f, 1 << 18);  // reads of 1 MiB, twice this, inflate straight into the caller's buffer
            return std::unique_ptr<ByteInput>(new GzInput(f));
        }
        case Compression::zstd:
            return std::unique_ptr<ByteInput>(new ZstdInput(fd));
        case Compression::bzip2:
        case Compression::xz:
            ::close(fd);
            return fail(Error::Kind::failed,
                        p.string() + ": compressed with bzip2 or xz, which import does not read (decompress it first)");
        case Compression::none:
            break;
    }
    return std::unique_ptr<ByteInput>(new PlainInput(fd));
}

// Appends up to `limit` bytes (all when 0); false on a read error.
bool read_into(ByteInput& in, std::string& out, std::size_t limit = 0) {
    std::size_t want = limit ? limit : SIZE_MAX;
    std::size_t got = 0;
    while (got < want) {
        std::size_t chunk = std::min<std::size_t>(want - got, 1 << 20);
        std::size_t at = out.size();
        out.resize(at + chunk);
        long n = in.read(out.data() + at, chunk);
        if (n <= 0) {
            out.resize(at);
            return n == 0;
        }
        out.resize(at + static_cast<std::size_t>(n));
        got += static_cast<std::size_t>(n);
    }
    return true;
}

// A whole file, decompressed when it is gzip or zstd.
Result<std::string> read_message_file(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, p.string() + ": " + std::strerror(errno));
    struct stat st{};
    ::fstat(fd, &st);
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    bool error = false;
    while (done < out.size()) {
        ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) error = true;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    int saved = errno;
    ::close(fd);
    if (error) return fail(Error::Kind::io, p.string() + ": " + std::strerror(saved));
    out.resize(done);
    if (compression_of(out) == Compression::none) return out;
    auto in = open_input(p);
    if (!in) return fail(in.error());
    out.clear();
    if (!read_into(**in, out)) return fail(Error::Kind::corrupt, p.string() + ": truncated or corrupt compressed data");
    return out;
}

// ---- What a file holds, by content.

enum class Content { message, mbox, empty, not_mail, unreadable };
struct Sniffed {
    Content content = Content::not_mail;
    std::string reason;  // for empty, not_mail, unreadable (may be mail: a failure, not a skip)
};

bool token_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && std::strchr("!#$%&'*+-.^_`|~", c));
}

// "Name:" or "Name :" at the start: an RFC 5322 header field.
bool starts_with_header_field(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && token_char(s[i])) ++i;
    if (i == 0 || i > 200) return false;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i < s.size() && s[i] == ':';
}

// Classifies the (decompressed) start of a file.
Sniffed classify(std::string_view head) {
    if (head.empty()) return {Content::empty, "empty file"};
    if (head.starts_with("From ")) return {Content::mbox, {}};
    if (auto text = head.find_first_not_of("\r\n"); text == std::string_view::npos) {
        return {Content::empty, "only blank lines"};
    } else if (head.substr(text).starts_with("From ")) {
        return {Content::mbox, {}};  // blank lines before the first From_ line: still an mbox
    }
    if (head.starts_with("\x01\x01\x01\x01")) return {Content::unreadable, "MMDF mailbox, which import does not read"};
    if (head.starts_with("// <!-- <mdb:mork")) return {Content::not_mail, "Thunderbird index (Mork .msf), not mail"};
    if (head.starts_with("SQLite format 3")) return {Content::not_mail, "SQLite database, not mail"};
    if (std::memchr(head.data(), '\0', head.size())) return {Content::not_mail, "binary data, not mail"};
    if (starts_with_header_field(head)) return {Content::message, {}};
    return {Content::not_mail, "no mail header at its start, not mail"};
}

// Reads the start of a file (decompressed) and classifies it.
Sniffed sniff_file(const fs::path& p) {
    auto in = open_input(p);
    if (!in) {
        std::string reason = in.error().message, prefix = p.string() + ": ";
        if (reason.starts_with(prefix)) reason.erase(0, prefix.size());
        return {Content::unreadable, reason};
    }
    std::string head;
    if (!read_into(**in, head, k_sniff_bytes) && head.empty())
        return {Content::unreadable, "truncated or corrupt compressed data before the first message; nothing in it was archived"};
    return classify(head);
}

// ---- mbox splitting.

bool is_blank(std::string_view line) { return line == "\n" || line == "\r\n"; }

// ">From ", ">>From " ...: a '>' run then "From ".
bool quoted_from(std::string_view line, std::size_t min_quotes) {
    std::size_t q = 0;
    while (q < line.size() && line[q] == '>') ++q;
    return q >= min_quotes && line.substr(q).starts_with("From ");
}

// Content-Length header value, if this header line is one.
std::optional<std::uint64_t> content_length(std::string_view line) {
    constexpr std::string_view k = "content-length:";
    if (line.size() < k.size()) return std::nullopt;
    for (std::size_t i = 0; i < k.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(line[i])) != k[i]) return std::nullopt;
    std::size_t i = k.size();
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::uint64_t v = 0;
    std::size_t digits = 0;
    for (; i < line.size() && line[i] >= '0' && line[i] <= '9' && digits < 18; ++i, ++digits) v = v * 10 + (line[i] - '0');
    if (digits == 0) return std::nullopt;
    return v;
}

// Splits an mbox stream into messages. From_ lines start a message at the start of the
// file or after a blank line; mboxrd takes one '>' off ">*From " lines; mboxo keeps every
// byte; mboxcl2 reads Content-Length bytes of body (a message without it is split as mboxo).
// A message the stream breaks off in (truncated or corrupt data) is never returned.
class MboxReader {
  public:
    MboxReader(std::unique_ptr<ByteInput> in, MboxFormat format)
        : in_(std::move(in)), format_(format), buf_(1 << 20) {}

    // Next complete message; nullopt at the end or on an error (then `error` says what).
    std::optional<std::string> next(std::string& error) {
        if (done_) return std::nullopt;
        std::string msg, line;
        bool have = started_;
        bool in_headers = true;
        bool after_body = false;    // mboxcl2: the Content-Length body is read
        std::string held;           // mboxcl2: blank lines after it, appended if text follows
        std::optional<std::uint64_t> length;
        bool failed = false;
        while (next_line(line, failed)) {
            bool from_line = line.starts_with("From ") && (prev_blank_ || first_line_ || after_body);
            first_line_ = false;
            if (from_line) {
                prev_blank_ = false;
                if (have) {
                    ++returned_;
                    if (!after_body) trim_separator(msg);
                    return msg;
                }
                have = true;
                started_ = true;
                continue;
            }
            prev_blank_ = is_blank(line);
            if (!have) continue;  // junk before the first From_ line
            if (after_body) {
                if (prev_blank_) {
                    held += line;
                    continue;
                }
                msg += held;  // the length was short: keep what follows, lose nothing
                held.clear();
                after_body = false;
            }
            if (format_ == MboxFormat::mboxcl2 && in_headers) {
                msg += line;
                if (prev_blank_) {
                    in_headers = false;
                    if (length) {
                        std::size_t before = msg.size();
                        if (!read_exact(msg, *length, failed)) {
                            if (!failed)
                                error = "message " + std::to_string(returned_ + 1) + " is shorter than its Content-Length (" +
                                        std::to_string(*length) + " bytes, " + std::to_string(msg.size() - before) +
                                        " present): truncated file; that message was not archived";
                            break;
                        }
                        after_body = true;
                        prev_blank_ = false;
                    }
                } else if (auto v = content_length(line)) {
                    length = v;
                }
                continue;
            }
            if (prev_blank_ && in_headers) in_headers = false;
            if (format_ == MboxFormat::mboxrd && quoted_from(line, 1)) msg.append(line, 1, std::string::npos);
            else msg += line;
        }
        done_ = true;
        if (failed || !error.empty()) {
            if (error.empty()) {
                error = "truncated or corrupt data after message " + std::to_string(returned_);
                if (have) error += "; message " + std::to_string(returned_ + 1) + ", cut off there, was not archived";
            }
            return std::nullopt;
        }
        if (!have || msg.empty()) return std::nullopt;
        ++returned_;
        if (!after_body) trim_separator(msg);
        return msg;
    }

  private:
    static void trim_separator(std::string& msg) {
        if (msg.size() >= 2 && msg.back() == '\n' && msg[msg.size() - 2] == '\n') msg.pop_back();
    }

    bool fill(bool& failed) {
        long n = in_->read(buf_.data(), buf_.size());
        if (n < 0) failed = true;
        if (n <= 0) return false;
        pos_ = 0;
        len_ = static_cast<std::size_t>(n);
        delivered_ += len_;
        return true;
    }

    // Next line with its '\n'; the last line may lack it. False at the end or on an error.
    bool next_line(std::string& line, bool& failed) {
        line.clear();
        for (;;) {
            if (pos_ == len_ && !fill(failed)) return !failed && !line.empty();
            const char* start = buf_.data() + pos_;
            const void* nl = std::memchr(start, '\n', len_ - pos_);
            if (nl) {
                std::size_t take = static_cast<const char*>(nl) - start + 1;
                line.append(start, take);
                pos_ += take;
                return true;
            }
            line.append(start, len_ - pos_);
            pos_ = len_;
        }
    }

    // Appends exactly n bytes; false when the stream ends first or fails.
    bool read_exact(std::string& out, std::uint64_t n, bool& failed) {
        while (n > 0) {
            if (pos_ == len_ && !fill(failed)) return false;
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, len_ - pos_));
            out.append(buf_.data() + pos_, take);
            pos_ += take;
            n -= take;
        }
        return true;
    }

  public:
    // Bytes of the file read so far: what the input took in, less the share of it still in
    // this reader's buffer (in file bytes, so scaled for a compressed file).
    std::uint64_t consumed() const {
        std::uint64_t in = in_->consumed();
        if (delivered_ == 0) return 0;
        double used = static_cast<double>(delivered_ - (len_ - pos_)) / static_cast<double>(delivered_);
        return static_cast<std::uint64_t>(static_cast<double>(in) * used);
    }

  private:
    std::unique_ptr<ByteInput> in_;
    MboxFormat format_;
    std::vector<char> buf_;
    std::size_t pos_ = 0, len_ = 0;
    std::uint64_t delivered_ = 0;  // bytes the input has given (decompressed)
    bool prev_blank_ = false;
    bool first_line_ = true;
    bool started_ = false;
    bool done_ = false;
    std::uint64_t returned_ = 0;
};

// ---- Planning: what to read, with labels.

enum class JobKind { maildir, message_file, mbox_file };

// A unit of work: one Maildir folder, one mbox file or one message file.
struct Job {
    JobKind kind = JobKind::message_file;
    fs::path path;
    std::string mailbox;
    std::string folder;
    fs::path tree;  // canonical root of the tree given (symlink policy inside Maildir folders)
};

std::string stem_of(const fs::path& p) {
    std::string n = p.filename().string();
    for (const char* ext : {".zst", ".gz", ".mbox", ".mbx", ".eml"})
        if (ends_with(n, ext) && n.size() > std::strlen(ext)) n.resize(n.size() - std::strlen(ext));
    return n;
}

// A directory's part of a folder label: Maildir++ ".A.B" is A/B, Thunderbird "A.sbd" is A.
std::string dir_label(std::string s) {
    if (s.size() > 1 && s[0] == '.') {
        s = s.substr(1);
        std::replace(s.begin(), s.end(), '.', '/');
    } else if (ends_with(s, ".sbd") && s.size() > 4) {
        s.resize(s.size() - 4);
    }
    return s;
}

std::string join_label(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    return a + "/" + b;
}

bool inside(const fs::path& tree, const fs::path& target) {
    auto t = tree.native();
    auto p = target.native();
    if (p == t) return true;
    if (!t.empty() && t.back() != '/') t += '/';
    return p.starts_with(t);
}

struct Plan {
    std::vector<Job> jobs;
    std::uint64_t skipped = 0;
    std::vector<std::string> skips;
    std::uint64_t failed = 0;
    std::vector<std::string> errors;

    void skip(const fs::path& p, const std::string& why) {
        ++skipped;
        if (skips.size() < k_max_listed) skips.push_back(p.string() + ": " + why);
    }
    void failure(const std::string& line) {
        ++failed;
        if (errors.size() < k_max_listed) errors.push_back(line);
    }
};

class Planner {
  public:
    explicit Planner(const LocalImportOptions& o) : o_(o) {}

    Result<void> add(const fs::path& raw_path) {
        std::error_code ec;
        if (!fs::exists(raw_path, ec)) return fail(Error::Kind::usage, raw_path.string() + ": no such file or directory");
        fs::path path = fs::absolute(raw_path, ec).lexically_normal();
        if (!path.has_filename()) path = path.parent_path();
        if (fs::is_directory(path, ec)) {
            walk_root(path);
            return ok();
        }
        if (!fs::is_regular_file(path, ec))
            return fail(Error::Kind::usage, path.string() + ": not a Maildir, mbox or message file");
        auto s = sniff_file(path);
        switch (s.content) {
            case Content::mbox:
                plan_.jobs.push_back({JobKind::mbox_file, path, o_.mailbox.empty() ? stem_of(path) : o_.mailbox,
                                      o_.folder.empty() ? stem_of(path) : o_.folder, {}});
                break;
            case Content::message:
                plan_.jobs.push_back({JobKind::message_file, path,
                                      o_.mailbox.empty() ? stem_of(path.parent_path()) : o_.mailbox,
                                      o_.folder.empty() ? "Inbox" : o_.folder, {}});
                break;
            default:  // named on the command line: not archiving it is a failure
                plan_.failure(path.string() + ": " + s.reason);
        }
        return ok();
    }

    Plan take() { return std::move(plan_); }

  private:
    void walk_root(const fs::path& root) {
        std::error_code ec;
        fs::path tree = fs::canonical(root, ec);
        if (ec) tree = root;
        struct stat st{};
        if (::stat(root.c_str(), &st) == 0 && !visited_.insert({st.st_dev, st.st_ino}).second) {
            plan_.skip(root, "directory already read");
            return;
        }
        std::string mailbox = o_.mailbox.empty() ? stem_of(root) : o_.mailbox;
        walk(tree, root, "", mailbox, 0);
    }

    std::string with_option_folder(const std::string& label) const {
        if (o_.folder.empty()) return label.empty() ? "Inbox" : label;
        return label.empty() || label == "Inbox" ? o_.folder : o_.folder + "/" + label;
    }

    void walk(const fs::path& tree, const fs::path& dir, const std::string& label, const std::string& mailbox, int depth) {
        bool maildir = is_maildir(dir);
        if (maildir) plan_.jobs.push_back({JobKind::maildir, dir, mailbox, with_option_folder(label), tree});
        std::error_code ec;
        std::vector<fs::path> entries;
        for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
        if (ec) plan_.failure(dir.string() + ": " + ec.message());
        std::sort(entries.begin(), entries.end());
        for (const auto& p : entries) {
            std::string name = p.filename().string();
            if (maildir && (name == "cur" || name == "new" || name == "tmp")) continue;
            struct stat st{};
            if (::lstat(p.c_str(), &st) != 0) continue;  // gone meanwhile
            if (S_ISLNK(st.st_mode)) {
                std::error_code lec;
                fs::path target = fs::canonical(p, lec);
                if (lec || ::stat(p.c_str(), &st) != 0) {
                    plan_.skip(p, "broken symlink");
                    continue;
                }
                if (o_.symlinks == SymlinkPolicy::inside_tree && !inside(tree, target)) {
                    plan_.skip(p, "symlink to " + target.string() + ", outside the tree given (--follow-symlinks follows it)");
                    continue;
                }
            }
            if (S_ISDIR(st.st_mode)) {
                if (!visited_.insert({st.st_dev, st.st_ino}).second) {
                    plan_.skip(p, "directory already read (a symlink loop or a second link to it)");
                    continue;
                }
                if (depth >= k_max_depth) {
                    plan_.skip(p, "nested deeper than " + std::to_string(k_max_depth) + " directories");
                    continue;
                }
                walk(tree, p, join_label(label, dir_label(name)), mailbox, depth + 1);
            } else if (S_ISREG(st.st_mode)) {
                auto s = sniff_file(p);
                switch (s.content) {
                    case Content::mbox:
                        plan_.jobs.push_back({JobKind::mbox_file, p, mailbox,
                                              with_option_folder(join_label(label, stem_of(p))), tree});
                        break;
                    case Content::message:
                        plan_.jobs.push_back({JobKind::message_file, p, mailbox, with_option_folder(label), tree});
                        break;
                    case Content::unreadable:  // may well be mail: a failure, not a skip
                        plan_.failure(p.string() + ": " + s.reason);
                        break;
                    default:
                        plan_.skip(p, s.reason);
                }
            } else {
                plan_.skip(p, "not a regular file");
            }
        }
    }

    const LocalImportOptions& o_;
    Plan plan_;
    std::set<std::pair<dev_t, ino_t>> visited_;
};

// ---- The source.

class LocalSource : public Source {
  public:
    LocalSource(Plan plan, const LocalImportOptions& o)
        : jobs_(plan.jobs.begin(), plan.jobs.end()), source_(o.source), format_(o.mbox_format), symlinks_(o.symlinks) {
        report_.skipped = plan.skipped;
        report_.skips = std::move(plan.skips);
        report_.failed = plan.failed;
        report_.errors = std::move(plan.errors);
    }
    std::string name() const override { return source_; }
    // Maildir and message files are counted up front; mbox files are estimated from the
    // messages per byte read so far, over the bytes of all mbox files of the run (an mbox
    // holds no count, and reading it twice would cost as much as the import).
    std::uint64_t expected_total() const override {
        std::uint64_t counted = counted_.load(), bytes = mbox_bytes_.load();
        if (bytes == 0) return counted;
        std::uint64_t read = mbox_bytes_read_.load(), messages = mbox_messages_.load();
        if (read == 0 || messages == 0) return 0;
        if (read >= bytes) return counted + messages;
        return counted + static_cast<std::uint64_t>(static_cast<double>(messages) * static_cast<double>(bytes) /
                                                   static_cast<double>(read) + 0.5);
    }
    bool expected_is_estimate() const override { return mbox_bytes_.load() > 0 && mbox_bytes_read_.load() < mbox_bytes_.load(); }
    void set_expected(std::uint64_t counted, std::uint64_t mbox_bytes) {
        counted_ = counted;
        mbox_bytes_ = mbox_bytes;
    }

    std::optional<RawMessage> next() override {
        for (;;) {
            if (!files_.empty()) {
                auto [path, job] = std::move(files_.front());
                files_.pop_front();
                if (auto m = read_file(path, job)) return m;
                continue;
            }
            if (mbox_) {
                std::string error;
                auto msg = mbox_->next(error);
                if (!error.empty()) fail_one(mbox_job_.path.string() + ": " + error);
                mbox_bytes_read_ = mbox_bytes_done_ + std::min(mbox_->consumed(), mbox_size_);
                if (msg) {
                    ++mbox_messages_;
                    RawMessage m;
                    m.bytes = std::move(*msg);
                    m.where = {source_, mbox_job_.mailbox, mbox_job_.folder, std::to_string(++mbox_index_)};
                    m.fallback_date = mbox_mtime_;
                    return m;
                }
                mbox_.reset();
                mbox_finished();
                continue;
            }
            if (jobs_.empty()) return std::nullopt;
            Job job = std::move(jobs_.front());
            jobs_.pop_front();
            start(job);
        }
    }

  private:
    void mbox_finished() {
        mbox_bytes_done_ += mbox_size_;
        mbox_bytes_read_ = mbox_bytes_done_;
    }
    void fail_one(const std::string& line) {
        ++report_.failed;
        if (report_.errors.size() < k_max_listed) report_.errors.push_back(line);
    }
    void skip_one(const fs::path& p, const std::string& why) {
        ++report_.skipped;
        if (report_.skips.size() < k_max_listed) report_.skips.push_back(p.string() + ": " + why);
    }

    // Why the symlink `p` is not followed (broken, or out of `tree` under inside_tree);
    // nullopt when `p` is no symlink or is followed.
    std::optional<std::string> refuse_link(const fs::path& p, const fs::path& tree) const {
        std::error_code ec;
        if (!fs::is_symlink(p, ec)) return std::nullopt;
        auto target = fs::canonical(p, ec);
        if (ec) return "broken symlink";
        if (symlinks_ == SymlinkPolicy::inside_tree && !inside(tree, target))
            return "symlink to " + target.string() + ", outside the tree given (--follow-symlinks follows it)";
        return std::nullopt;
    }

    std::optional<RawMessage> read_file(const fs::path& path, const Job& job) {
        auto bytes = read_message_file(path);
        if (!bytes) {
            fail_one(bytes.error().message);
            return std::nullopt;
        }
        // A Maildir file is one message whatever it starts with; what is not mail is skipped.
        auto s = classify(std::string_view(*bytes).substr(0, k_sniff_bytes));
        if (s.content == Content::empty || s.content == Content::not_mail) {
            if (job.kind == JobKind::maildir) skip_one(path, s.reason);
            else fail_one(path.string() + ": " + s.reason);
            return std::nullopt;
        }
        if (s.content == Content::unreadable) {
            fail_one(path.string() + ": " + s.reason);
            return std::nullopt;
        }
        RawMessage m;
        m.bytes = std::move(*bytes);
        m.where = {source_, job.mailbox, job.folder, path.filename().string()};
        m.fallback_date = mtime_of(path);
        if (job.kind == JobKind::maildir) {
            std::string n = path.filename().string();
            if (auto info = n.find(":2,"); info != std::string::npos)
                for (char c : n.substr(info + 3)) m.flags.emplace_back(1, c);
        }
        return m;
    }

    void start(const Job& job) {
        std::error_code ec;
        if (job.kind == JobKind::maildir) {
            std::vector<fs::path> names;
            for (const char* sub : {"cur", "new"}) {
                if (auto why = refuse_link(job.path / sub, job.tree)) {
                    skip_one(job.path / sub, *why);
                    continue;
                }
                for (const auto& e : fs::directory_iterator(job.path / sub, ec)) {
                    if (auto why = refuse_link(e.path(), job.tree)) {
                        skip_one(e.path(), *why);
                        continue;
                    }
                    if (e.is_regular_file(ec)) names.push_back(e.path());
                }
            }
            std::sort(names.begin(), names.end());
            for (auto& n : names) files_.emplace_back(std::move(n), job);
        } else if (job.kind == JobKind::message_file) {
            files_.emplace_back(job.path, job);
        } else {
            mbox_size_ = file_size_of(job.path);
            MboxFormat format = format_;
            if (format == MboxFormat::auto_detect) {
                auto f = detect_mbox_format(job.path);
                if (!f) {
                    fail_one(f.error().message);
                    mbox_finished();
                    return;
                }
                format = *f;
            }
            auto in = open_input(job.path);
            if (!in) {
                fail_one(in.error().message);
                mbox_finished();
                return;
            }
            mbox_ = std::make_unique<MboxReader>(std::move(*in), format);
            mbox_job_ = job;
            mbox_index_ = 0;
            mbox_mtime_ = mtime_of(job.path);
        }
    }

    std::deque<Job> jobs_;
    std::string source_;
    MboxFormat format_;
    SymlinkPolicy symlinks_;
    std::deque<std::pair<fs::path, Job>> files_;
    std::unique_ptr<MboxReader> mbox_;
    Job mbox_job_;
    std::uint64_t mbox_index_ = 0;
    std::int64_t mbox_mtime_ = 0;
    std::uint64_t mbox_size_ = 0;        // bytes of the mbox file being read
    std::uint64_t mbox_bytes_done_ = 0;  // bytes of the mbox files finished (or failed)
    // Read by the progress line on another thread.
    std::atomic<std::uint64_t> counted_{0}, mbox_bytes_{0}, mbox_bytes_read_{0}, mbox_messages_{0};
};

}  // namespace

LocalKind detect_local_kind(const fs::path& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) return contains_maildir(path, 3) ? LocalKind::maildir : LocalKind::eml_dir;
    if (!fs::is_regular_file(path, ec)) return LocalKind::unknown;
    switch (sniff_file(path).content) {
        case Content::mbox: return LocalKind::mbox;
        case Content::message: return LocalKind::eml;
        default: return LocalKind::not_mail;
    }
}

Result<MboxFormat> parse_mbox_format(std::string_view name) {
    if (name == "auto") return MboxFormat::auto_detect;
    if (name == "mboxo") return MboxFormat::mboxo;
    if (name == "mboxrd") return MboxFormat::mboxrd;
    if (name == "mboxcl2") return MboxFormat::mboxcl2;
    return fail(Error::Kind::usage, "unknown mbox format '" + std::string(name) + "' (auto, mboxo, mboxrd, mboxcl2)");
}

Result<MboxFormat> detect_mbox_format(const fs::path& path) {
    auto in = open_input(path);
    if (!in) return fail(in.error());
    // A line starting with two or more '>' then "From ": only an mboxrd writer makes those
    // from a message's ">From " line. A pass over the file, stopping at the first one.
    std::vector<char> buf(1 << 20);
    enum { line_start, quotes, match, rest } state = line_start;
    std::size_t quote_count = 0, matched = 0;
    constexpr std::string_view from = "From ";
    for (;;) {
        long n = (*in)->read(buf.data(), buf.size());
        if (n <= 0) break;  // a damaged file: the reader reports it
        const char* p = buf.data();
        const char* end = p + n;
        while (p < end) {
            if (state == rest) {
                const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
                if (!nl) break;
                p = static_cast<const char*>(nl) + 1;
                state = line_start;
                continue;
            }
            char c = *p++;
            if (c == '\n') {
                state = line_start;
                continue;
            }
            if (state == line_start) {
                if (c == '>') {
                    state = quotes;
                    quote_count = 1;
                } else {
                    state = rest;
                }
            } else if (state == quotes) {
                if (c == '>') ++quote_count;
                else if (quote_count >= 2 && c == 'F') state = match, matched = 1;
                else state = rest;
            } else if (state == match) {
                if (c != from[matched]) state = rest;
                else if (++matched == from.size()) return MboxFormat::mboxrd;
            }
        }
    }
    return MboxFormat::mboxo;
}

Result<std::unique_ptr<Source>> make_local_import(const std::vector<fs::path>& paths, const LocalImportOptions& options) {
    Planner planner(options);
    for (const auto& p : paths)
        if (auto r = planner.add(p); !r) return fail(r.error());
    Plan plan = planner.take();
    // Count messages up front for the ETA (cheap: directory listings only); mbox files are
    // estimated as they are read, from their sizes.
    std::uint64_t total = 0, mbox_bytes = 0;
    for (const auto& j : plan.jobs) {
        std::error_code ec;
        if (j.kind == JobKind::maildir) {
            for (const char* sub : {"cur", "new"})
                for (auto it = fs::directory_iterator(j.path / sub, ec); !ec && it != fs::directory_iterator(); ++it) ++total;
        } else if (j.kind == JobKind::message_file) {
            ++total;
        } else {
            mbox_bytes += file_size_of(j.path);
        }
    }
    auto src = std::make_unique<LocalSource>(std::move(plan), options);
    src->set_expected(total, mbox_bytes);
    return std::unique_ptr<Source>(std::move(src));
}

Result<std::unique_ptr<Source>> make_local_source(const SourceConfig& config, const index::Archive&) {
    std::string path = config.get("path");
    if (path.empty()) return fail(Error::Kind::usage, "source '" + config.name + "': path is not set");
    LocalImportOptions o;
    o.source = config.name;
    o.mailbox = config.get("mailbox");
    o.folder = config.get("folder");
    auto format = parse_mbox_format(config.get("mbox_format", "auto"));
    if (!format) return fail(Error::Kind::usage, "source '" + config.name + "': " + format.error().message);
    o.mbox_format = *format;
    auto follow = config.get_bool("follow_symlinks", false);
    if (!follow) return fail(Error::Kind::usage, "source '" + config.name + "': " + follow.error().message);
    o.symlinks = *follow ? SymlinkPolicy::follow : SymlinkPolicy::inside_tree;
    return make_local_import({fs::path(path)}, o);
}

Result<std::vector<std::string>> check_local_source(const SourceConfig& config) {
    std::string path = config.get("path");
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec))
        return fail(Error::Kind::unreachable, "source '" + config.name + "': path '" + path + "' does not exist");
    return std::vector<std::string>{"source " + config.name + ": " + path + " is readable"};
}

}  // namespace mv::ingest
