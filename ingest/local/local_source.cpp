#include "ingest/local/local_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>

namespace mv::ingest {
namespace fs = std::filesystem;
namespace {

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
        if (e.is_directory(ec) && contains_maildir(e.path(), depth - 1)) return true;
    return false;
}

std::int64_t mtime_of(const fs::path& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<std::int64_t>(st.st_mtime) : 0;
}

Result<std::string> read_whole(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, p.string() + ": " + std::strerror(errno));
    struct stat st{};
    ::fstat(fd, &st);
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    out.resize(done);
    return out;
}

// Sequential byte input: plain, gzip or zstd.
class ByteInput {
  public:
    virtual ~ByteInput() = default;
    // Fills up to n bytes; 0 at end; -1 on error.
    virtual long read(char* buf, std::size_t n) = 0;
};

class PlainInput : public ByteInput {
  public:
    explicit PlainInput(int fd) : fd_(fd) {}
    ~PlainInput() override { ::close(fd_); }
    long read(char* buf, std::size_t n) override {
        for (;;) {
            ssize_t r = ::read(fd_, buf, n);
            if (r < 0 && errno == EINTR) continue;
            return static_cast<long>(r);
        }
    }

  private:
    int fd_;
};

class GzInput : public ByteInput {
  public:
    explicit GzInput(gzFile f) : f_(f) {}
    ~GzInput() override { gzclose(f_); }
    long read(char* buf, std::size_t n) override {
        int got = gzread(f_, buf, static_cast<unsigned>(std::min<std::size_t>(n, 1u << 30)));
        if (got == 0) {
            int err = Z_OK;
            gzerror(f_, &err);
            if (err != Z_OK) return -1;  // truncated or corrupt
        }
        return got;
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

  private:
    PlainInput raw_;
    ZSTD_DStream* dctx_;
    std::vector<char> in_buf_;
    ZSTD_inBuffer in_{nullptr, 0, 0};
    bool frame_open_ = false;
};

Result<std::unique_ptr<ByteInput>> open_input(const fs::path& p) {
    std::string name = p.filename().string();
    if (ends_with(name, ".gz")) {
        gzFile f = gzopen(p.c_str(), "rb");
        if (!f) return fail(Error::Kind::io, p.string() + ": cannot open");
        gzbuffer(f, 1 << 20);
        return std::unique_ptr<ByteInput>(new GzInput(f));
    }
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, p.string() + ": " + std::strerror(errno));
    if (ends_with(name, ".zst")) return std::unique_ptr<ByteInput>(new ZstdInput(fd));
    return std::unique_ptr<ByteInput>(new PlainInput(fd));
}

// Splits an mbox stream into messages (mboxo/mboxrd From_ lines, mboxrd unquoting).
class MboxReader {
  public:
    explicit MboxReader(std::unique_ptr<ByteInput> in) : in_(std::move(in)), buf_(1 << 20) {}
    // Next message's bytes; nullopt at end. `error` set when the stream failed.
    std::optional<std::string> next(std::string& error) {
        std::string msg;
        bool have = started_;
        std::string line;
        while (next_line(line, error)) {
            bool from_line = line.rfind("From ", 0) == 0 && (prev_blank_ || first_line_);
            first_line_ = false;
            if (from_line) {
                prev_blank_ = false;
                if (have) {
                    started_ = true;
                    trim_separator(msg);
                    return msg;
                }
                have = true;
                started_ = true;
                continue;
            }
            prev_blank_ = line == "\n" || line == "\r\n";
            if (!have) continue;  // junk before the first From_ line
            // mboxrd: ">From ", ">>From " ... lose one '>'.
            std::size_t q = 0;
            while (q < line.size() && line[q] == '>') ++q;
            if (q > 0 && line.compare(q, 5, "From ") == 0) msg.append(line, 1, std::string::npos);
            else msg += line;
        }
        started_ = false;
        if (!have || msg.empty()) return std::nullopt;
        trim_separator(msg);
        return msg;
    }

  private:
    static void trim_separator(std::string& msg) {
        if (msg.size() >= 2 && msg.back() == '\n' && msg[msg.size() - 2] == '\n') msg.pop_back();
    }
    bool next_line(std::string& line, std::string& error) {
        line.clear();
        for (;;) {
            if (pos_ == len_) {
                long n = in_->read(buf_.data(), buf_.size());
                if (n < 0) {
                    error = "read error (truncated or corrupt compressed file?)";
                    return !line.empty();
                }
                if (n == 0) return !line.empty();
                pos_ = 0;
                len_ = static_cast<std::size_t>(n);
            }
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

    std::unique_ptr<ByteInput> in_;
    std::vector<char> buf_;
    std::size_t pos_ = 0, len_ = 0;
    bool prev_blank_ = false;
    bool first_line_ = true;
    bool started_ = false;
};

// A unit of work: one Maildir folder, one mbox file or one message file.
struct Job {
    LocalKind kind;
    fs::path path;
    std::string mailbox;
    std::string folder;
};

std::string maildir_folder_label(const fs::path& root, const fs::path& dir) {
    std::error_code ec;
    fs::path rel = fs::relative(dir, root, ec);
    std::string out;
    for (const auto& part : rel) {
        std::string s = part.string();
        if (s == ".") continue;
        if (!s.empty() && s[0] == '.') {  // Maildir++ ".A.B" is A/B
            s = s.substr(1);
            std::replace(s.begin(), s.end(), '.', '/');
        }
        if (!out.empty()) out += '/';
        out += s;
    }
    return out.empty() ? "Inbox" : out;
}

void collect_maildirs(const fs::path& root, const fs::path& dir, const std::string& mailbox, std::vector<Job>& jobs,
                      int depth) {
    if (is_maildir(dir)) jobs.push_back({LocalKind::maildir, dir, mailbox, maildir_folder_label(root, dir)});
    if (depth > 16) return;
    std::error_code ec;
    std::vector<fs::path> subs;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        auto n = e.path().filename().string();
        if (n == "cur" || n == "new" || n == "tmp") continue;
        if (e.is_directory(ec)) subs.push_back(e.path());
    }
    std::sort(subs.begin(), subs.end());
    for (const auto& s : subs) collect_maildirs(root, s, mailbox, jobs, depth + 1);
}

std::string stem_of(const fs::path& p) {
    std::string n = p.filename().string();
    for (const char* ext : {".zst", ".gz", ".mbox", ".mbx", ".eml"})
        if (ends_with(n, ext)) n.resize(n.size() - std::strlen(ext));
    return n;
}

class LocalSource : public Source {
  public:
    LocalSource(std::vector<Job> jobs, std::string source) : jobs_(jobs.begin(), jobs.end()), source_(std::move(source)) {}
    std::string name() const override { return source_; }
    std::uint64_t expected_total() const override { return expected_; }
    void set_expected(std::uint64_t n) { expected_ = n; }

    std::optional<RawMessage> next() override {
        for (;;) {
            if (!files_.empty()) {
                auto [path, folder_job] = std::move(files_.front());
                files_.pop_front();
                auto bytes = read_whole(path);
                if (!bytes) {
                    fail_one(bytes.error().message);
                    continue;
                }
                RawMessage m;
                m.bytes = std::move(*bytes);
                m.where = {source_, folder_job.mailbox, folder_job.folder, path.filename().string()};
                m.fallback_date = mtime_of(path);
                if (folder_job.kind == LocalKind::maildir) {
                    std::string n = path.filename().string();
                    if (auto info = n.find(":2,"); info != std::string::npos)
                        for (char c : n.substr(info + 3)) m.flags.emplace_back(1, c);
                }
                if (m.bytes.empty()) {
                    fail_one(path.string() + ": empty file");
                    continue;
                }
                return m;
            }
            if (mbox_) {
                std::string error;
                auto msg = mbox_->next(error);
                if (!error.empty()) {
                    fail_one(mbox_job_.path.string() + ": " + error);
                    mbox_.reset();
                    if (!msg) continue;
                }
                if (msg) {
                    RawMessage m;
                    m.bytes = std::move(*msg);
                    m.where = {source_, mbox_job_.mailbox, mbox_job_.folder, std::to_string(++mbox_index_)};
                    m.fallback_date = mbox_mtime_;
                    return m;
                }
                mbox_.reset();
                continue;
            }
            if (jobs_.empty()) return std::nullopt;
            Job job = std::move(jobs_.front());
            jobs_.pop_front();
            start(job);
        }
    }

  private:
    void fail_one(const std::string& line) {
        ++report_.failed;
        if (report_.errors.size() < 100) report_.errors.push_back(line);
    }

    void start(const Job& job) {
        std::error_code ec;
        if (job.kind == LocalKind::maildir) {
            std::vector<fs::path> names;
            for (const char* sub : {"cur", "new"})
                for (const auto& e : fs::directory_iterator(job.path / sub, ec))
                    if (e.is_regular_file(ec)) names.push_back(e.path());
            std::sort(names.begin(), names.end());
            for (auto& n : names) files_.emplace_back(std::move(n), job);
        } else if (job.kind == LocalKind::eml_dir) {
            std::vector<fs::path> names;
            for (const auto& e : fs::recursive_directory_iterator(job.path, ec))
                if (e.is_regular_file(ec)) names.push_back(e.path());
            std::sort(names.begin(), names.end());
            for (auto& n : names) {
                Job sub = job;
                if (!job.folder.empty() && job.folder != "Inbox") {
                } else {
                    std::string rel = fs::relative(n.parent_path(), job.path, ec).string();
                    sub.folder = rel.empty() || rel == "." ? job.folder : rel;
                }
                files_.emplace_back(std::move(n), std::move(sub));
            }
        } else if (job.kind == LocalKind::eml) {
            files_.emplace_back(job.path, job);
        } else if (job.kind == LocalKind::mbox) {
            auto in = open_input(job.path);
            if (!in) {
                fail_one(in.error().message);
                return;
            }
            mbox_ = std::make_unique<MboxReader>(std::move(*in));
            mbox_job_ = job;
            mbox_index_ = 0;
            mbox_mtime_ = mtime_of(job.path);
        }
    }

    std::deque<Job> jobs_;
    std::string source_;
    std::deque<std::pair<fs::path, Job>> files_;
    std::unique_ptr<MboxReader> mbox_;
    Job mbox_job_;
    std::uint64_t mbox_index_ = 0;
    std::int64_t mbox_mtime_ = 0;
    std::uint64_t expected_ = 0;
};

Result<std::vector<Job>> plan(const std::vector<fs::path>& paths, const LocalImportOptions& options) {
    std::vector<Job> jobs;
    for (const auto& raw_path : paths) {
        std::error_code ec;
        if (!fs::exists(raw_path, ec))
            return fail(Error::Kind::usage, raw_path.string() + ": no such file or directory");
        fs::path path = fs::absolute(raw_path, ec).lexically_normal();
        if (path.has_filename() == false) path = path.parent_path();
        std::string mailbox = options.mailbox.empty() ? stem_of(path) : options.mailbox;
        switch (detect_local_kind(path)) {
            case LocalKind::maildir: {
                std::size_t first = jobs.size();
                collect_maildirs(path, path, mailbox, jobs, 0);
                if (!options.folder.empty())
                    for (std::size_t i = first; i < jobs.size(); ++i)
                        jobs[i].folder = jobs[i].folder == "Inbox" ? options.folder : options.folder + "/" + jobs[i].folder;
                break;
            }
            case LocalKind::mbox:
                jobs.push_back({LocalKind::mbox, path, mailbox, options.folder.empty() ? stem_of(path) : options.folder});
                break;
            case LocalKind::eml:
                jobs.push_back({LocalKind::eml, path,
                                options.mailbox.empty() ? stem_of(path.parent_path()) : options.mailbox,
                                options.folder.empty() ? "Inbox" : options.folder});
                break;
            case LocalKind::eml_dir:
                jobs.push_back({LocalKind::eml_dir, path, mailbox, options.folder.empty() ? "Inbox" : options.folder});
                break;
            case LocalKind::unknown:
                return fail(Error::Kind::usage, path.string() + ": not a Maildir, mbox or message file");
        }
    }
    return jobs;
}

}  // namespace

LocalKind detect_local_kind(const fs::path& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) return contains_maildir(path, 3) ? LocalKind::maildir : LocalKind::eml_dir;
    if (!fs::is_regular_file(path, ec)) return LocalKind::unknown;
    std::string name = path.filename().string();
    if (ends_with(name, ".eml")) return LocalKind::eml;
    if (ends_with(name, ".mbox") || ends_with(name, ".mbx") || ends_with(name, ".zst") || ends_with(name, ".gz"))
        return LocalKind::mbox;
    std::ifstream in(path, std::ios::binary);
    char head[5] = {};
    in.read(head, 5);
    return std::string_view(head, 5) == "From " ? LocalKind::mbox : LocalKind::eml;
}

Result<std::unique_ptr<Source>> make_local_import(const std::vector<fs::path>& paths, const LocalImportOptions& options) {
    auto jobs = plan(paths, options);
    if (!jobs) return fail(jobs.error());
    // Count files up front for the ETA (cheap: directory listings only).
    std::uint64_t total = 0;
    bool countable = true;
    for (const auto& j : *jobs) {
        std::error_code ec;
        if (j.kind == LocalKind::maildir) {
            for (const char* sub : {"cur", "new"})
                for (auto it = fs::directory_iterator(j.path / sub, ec); !ec && it != fs::directory_iterator(); ++it) ++total;
        } else if (j.kind == LocalKind::eml) {
            ++total;
        } else {
            countable = false;
        }
    }
    auto src = std::make_unique<LocalSource>(std::move(*jobs), options.source);
    if (countable) src->set_expected(total);
    return std::unique_ptr<Source>(std::move(src));
}

Result<std::unique_ptr<Source>> make_local_source(const SourceConfig& config, const index::Archive&) {
    std::string path = config.get("path");
    if (path.empty()) return fail(Error::Kind::usage, "source '" + config.name + "': path is not set");
    LocalImportOptions o;
    o.source = config.name;
    o.mailbox = config.get("mailbox");
    o.folder = config.get("folder");
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
