#include "index/store/pack_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <sys/uio.h>

#include <nlohmann/json.hpp>

namespace mv::index {
namespace {

constexpr char k_magic[4] = {'M', 'V', 'R', '1'};

template <typename T>
void put(std::string& out, T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));  // little-endian hosts only (x86_64, arm64)
    out.append(buf, sizeof(T));
}

template <typename T>
T get(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

std::string encode_header(const RecordHeader& h) {
    std::string out;
    out.reserve(k_record_header_size);
    out.append(k_magic, 4);
    out.push_back(static_cast<char>(h.type));
    out.append(3, '\0');
    put<std::uint64_t>(out, h.docno);
    out.append(reinterpret_cast<const char*>(h.sha.data()), h.sha.size());
    put<std::uint64_t>(out, h.raw_size);
    put<std::uint32_t>(out, h.meta_size);
    put<std::uint32_t>(out, h.payload_size);
    return out;  // 4+4+8+32+8+4+4 = 64
}

std::optional<RecordHeader> decode_header(const char* p) {
    if (std::memcmp(p, k_magic, 4) != 0) return std::nullopt;
    RecordHeader h;
    h.type = static_cast<RecordType>(p[4]);
    h.docno = get<std::uint64_t>(p + 8);
    std::memcpy(h.sha.data(), p + 16, 32);
    h.raw_size = get<std::uint64_t>(p + 48);
    h.meta_size = get<std::uint32_t>(p + 56);
    h.payload_size = get<std::uint32_t>(p + 60);
    return h;
}

std::string errno_text() { return std::strerror(errno); }

Result<void> pread_all(int fd, char* buf, std::size_t n, std::uint64_t off, const std::string& what) {
    std::size_t done = 0;
    while (done < n) {
        ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fail(Error::Kind::corrupt, what + ": short read at offset " + std::to_string(off + done));
        done += static_cast<std::size_t>(r);
    }
    return ok();
}

struct FdCloser {
    int fd;
    ~FdCloser() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::string StoredRef::encode() const {
    std::string out;
    put<std::uint32_t>(out, segment);
    put<std::uint64_t>(out, offset);
    put<std::uint32_t>(out, payload_size);
    put<std::uint64_t>(out, raw_size);
    return out;
}

std::optional<StoredRef> StoredRef::decode(std::string_view s) {
    if (s.size() != 24) return std::nullopt;
    StoredRef r;
    r.segment = get<std::uint32_t>(s.data());
    r.offset = get<std::uint64_t>(s.data() + 4);
    r.payload_size = get<std::uint32_t>(s.data() + 12);
    r.raw_size = get<std::uint64_t>(s.data() + 16);
    return r;
}

std::filesystem::path PackStore::segment_path(std::uint32_t n) const {
    char name[32];
    std::snprintf(name, sizeof name, "pack-%06u.mvp", n);
    return dir_ / name;
}

Result<std::unique_ptr<PackStore>> PackStore::open(const std::filesystem::path& dir, bool writable) {
    std::unique_ptr<PackStore> s(new PackStore());
    s->dir_ = dir;
    s->writable_ = writable;
    std::error_code ec;
    if (writable) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return fail(Error::Kind::io, "cannot create " + dir.string() + ": " + ec.message());
    }
    // The open segment is the highest numbered one.
    std::uint32_t last = 1;
    if (std::filesystem::exists(dir)) {
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            unsigned n = 0;
            if (std::sscanf(e.path().filename().c_str(), "pack-%06u.mvp", &n) == 1 && n > last) last = n;
        }
    }
    s->segment_ = last;
    if (writable) {
        if (auto r = s->open_segment(last); !r) return fail(r.error());
    } else {
        struct stat st{};
        if (::stat(s->segment_path(last).c_str(), &st) == 0) s->size_ = static_cast<std::uint64_t>(st.st_size);
    }
    return s;
}

PackStore::~PackStore() {
    if (fd_ >= 0) ::close(fd_);
}

Result<void> PackStore::open_segment(std::uint32_t n) {
    if (fd_ >= 0) ::close(fd_);
    auto p = segment_path(n);
    bool existed = std::filesystem::exists(p);
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) return fail(Error::Kind::io, "cannot open " + p.string() + ": " + errno_text());
    struct stat st{};
    ::fstat(fd_, &st);
    segment_ = n;
    size_ = static_cast<std::uint64_t>(st.st_size);
    if (!existed) dir_dirty_ = true;
    return ok();
}

Result<StoredRef> PackStore::append(const RecordHeader& header, std::string_view meta, std::string_view payload) {
    if (!writable_) return fail(Error::Kind::io, "originals store is read-only");
    RecordHeader h = header;
    h.meta_size = static_cast<std::uint32_t>(meta.size());
    h.payload_size = static_cast<std::uint32_t>(payload.size());
    std::uint64_t total = k_record_header_size + meta.size() + payload.size();
    if (size_ > 0 && size_ + total > k_segment_limit) {
        if (auto r = sync(); !r) return fail(r.error());
        if (auto r = open_segment(segment_ + 1); !r) return fail(r.error());
    }
    std::string head = encode_header(h);
    struct iovec iov[3] = {{head.data(), head.size()},
                           {const_cast<char*>(meta.data()), meta.size()},
                           {const_cast<char*>(payload.data()), payload.size()}};
    std::uint64_t off = size_;
    std::size_t written = 0;
    int idx = 0;
    while (idx < 3) {
        ssize_t n = ::pwritev(fd_, iov + idx, 3 - idx, static_cast<off_t>(off + written));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            std::string why = errno_text();
            (void)::ftruncate(fd_, static_cast<off_t>(size_));  // drop the partial record
            return fail(Error::Kind::io, "writing originals to " + segment_path(segment_).string() + ": " + why);
        }
        written += static_cast<std::size_t>(n);
        std::size_t left = static_cast<std::size_t>(n);
        while (idx < 3 && left >= iov[idx].iov_len) {
            left -= iov[idx].iov_len;
            ++idx;
        }
        if (idx < 3) {
            iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + left;
            iov[idx].iov_len -= left;
        }
    }
    size_ += total;
    StoredRef ref;
    ref.segment = segment_;
    ref.offset = off;
    ref.payload_size = h.payload_size;
    ref.raw_size = h.raw_size;
    ref.end = size_;
    return ref;
}

Result<void> PackStore::sync() {
    if (fd_ >= 0 && ::fdatasync(fd_) != 0)
        return fail(Error::Kind::io, "fsync " + segment_path(segment_).string() + ": " + errno_text());
    if (dir_dirty_) {
        int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
        dir_dirty_ = false;
    }
    return ok();
}

namespace {

// The whole record at `off` is there and is what its header says: a known type, an original's
// payload decompressing to its SHA-256, meta that is a JSON object.
bool record_intact(int fd, const RecordHeader& h, std::uint64_t off) {
    std::string meta(h.meta_size, '\0'), payload(h.payload_size, '\0');
    if (!pread_all(fd, meta.data(), meta.size(), off + k_record_header_size, "")) return false;
    if (!pread_all(fd, payload.data(), payload.size(), off + k_record_header_size + h.meta_size, "")) return false;
    if (!meta.empty()) {
        auto j = nlohmann::json::parse(meta, nullptr, false);
        if (!j.is_object()) return false;
    }
    switch (h.type) {
        case RecordType::original: {
            auto raw = zstd_decompress(payload, h.raw_size);
            return raw && sha256(*raw) == h.sha;
        }
        case RecordType::location:
        case RecordType::removal: return payload.empty();
    }
    return false;
}

bool known_type(const RecordHeader& h) {
    return h.type == RecordType::original || h.type == RecordType::location || h.type == RecordType::removal;
}

// Copies bytes [from, size) of `fd` into a new file `to`, durably.
Result<void> copy_out(int fd, std::uint64_t from, std::uint64_t size, const std::filesystem::path& to) {
    int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (out < 0) return fail(Error::Kind::io, "cannot create " + to.string() + ": " + errno_text());
    FdCloser closer{out};
    std::string buf;
    for (std::uint64_t off = from; off < size;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - off, 1 << 20));
        buf.resize(n);
        if (auto r = pread_all(fd, buf.data(), n, off, to.filename().string()); !r) return r;
        for (std::size_t done = 0; done < n;) {
            ssize_t w = ::write(out, buf.data() + done, n - done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fail(Error::Kind::io, "writing " + to.string() + ": " + errno_text());
            done += static_cast<std::size_t>(w);
        }
        off += n;
    }
    if (::fsync(out) != 0) return fail(Error::Kind::io, "fsync " + to.string() + ": " + errno_text());
    return ok();
}

}  // namespace

Result<TailRecovery> PackStore::recover_tail(StorePos durable) {
    if (!writable_) return fail(Error::Kind::io, "originals store is read-only");
    TailRecovery out;
    for (std::uint32_t seg = std::max<std::uint32_t>(durable.first, 1); seg <= segment_; ++seg) {
        const auto p = segment_path(seg);
        int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        FdCloser closer{fd};
        struct stat st{};
        if (::fstat(fd, &st) != 0) return fail(Error::Kind::io, "cannot stat " + p.string() + ": " + errno_text());
        const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        // Appends end every commit's place on a record boundary: start verifying there.
        std::uint64_t off = seg == durable.first ? durable.second : 0;
        while (off < size) {
            char head[k_record_header_size];
            std::optional<RecordHeader> h;
            if (off + k_record_header_size <= size && pread_all(fd, head, sizeof head, off, "")) h = decode_header(head);
            const bool whole = h && known_type(*h) &&
                               off + k_record_header_size + h->meta_size + h->payload_size <= size;
            if (!whole || !record_intact(fd, *h, off)) break;
            ++out.records_checked;
            off += k_record_header_size + h->meta_size + h->payload_size;
        }
        if (off >= size) continue;
        // A torn tail: keep its bytes aside, then shorten the segment to its last whole record.
        std::error_code ec;
        const auto torn_dir = dir_ / "torn";
        std::filesystem::create_directories(torn_dir, ec);
        auto to = torn_dir / (p.filename().string() + ".at-" + std::to_string(off));
        for (int i = 1; std::filesystem::exists(to, ec); ++i)
            to = torn_dir / (p.filename().string() + ".at-" + std::to_string(off) + "." + std::to_string(i));
        if (auto r = copy_out(fd, off, size, to); !r) return fail(r.error());
        for (const auto& d : {torn_dir, dir_}) {
            int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                ::fsync(dfd);
                ::close(dfd);
            }
        }
        if (::ftruncate(fd, static_cast<off_t>(off)) != 0 || ::fdatasync(fd) != 0)
            return fail(Error::Kind::io, "shortening " + p.string() + " to its last whole record: " + errno_text());
        out.bytes_moved += size - off;
        out.notes.push_back(p.filename().string() + ": a torn record at offset " + std::to_string(off) + " (" +
                            std::to_string(size - off) + " bytes, from a run that was stopped) moved to " +
                            "originals/torn/" + to.filename().string());
        if (seg == segment_) size_ = off;
    }
    return out;
}

Result<std::string> PackStore::read_payload(const StoredRef& ref) const {
    auto p = segment_path(ref.segment);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == EACCES)
        return fail(Error::Kind::io, "permission denied reading original " + p.filename().string() + " (run as the archive's owner)");
    if (fd < 0) return fail(Error::Kind::corrupt, "original missing: " + p.filename().string() + ": " + errno_text());
    FdCloser closer{fd};
    char head[k_record_header_size];
    if (auto r = pread_all(fd, head, sizeof head, ref.offset, p.filename().string()); !r) return fail(r.error());
    auto h = decode_header(head);
    if (!h || h->payload_size != ref.payload_size)
        return fail(Error::Kind::corrupt, "bad record header at " + p.filename().string() + ":" + std::to_string(ref.offset));
    std::string out(ref.payload_size, '\0');
    if (auto r = pread_all(fd, out.data(), out.size(), ref.offset + k_record_header_size + h->meta_size, p.filename().string()); !r)
        return fail(r.error());
    return out;
}

namespace {

// The first offset after `bad` where an intact record starts (magic, known type, whole, its
// payload what its header says), or `size`.
std::uint64_t next_intact_record(int fd, std::uint64_t bad, std::uint64_t size) {
    std::string buf;
    constexpr std::size_t k_chunk = 1 << 20;
    for (std::uint64_t pos = bad + 1; pos + k_record_header_size <= size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - pos, k_chunk + sizeof k_magic));
        buf.resize(n);
        if (!pread_all(fd, buf.data(), n, pos, "")) return size;
        std::size_t i = 0;
        for (;;) {
            i = buf.find(std::string_view(k_magic, sizeof k_magic), i);
            if (i == std::string::npos || i >= k_chunk) break;
            const std::uint64_t cand = pos + i;
            char head[k_record_header_size];
            if (cand + k_record_header_size <= size && pread_all(fd, head, sizeof head, cand, "")) {
                auto h = decode_header(head);
                if (h && known_type(*h) && cand + k_record_header_size + h->meta_size + h->payload_size <= size &&
                    record_intact(fd, *h, cand))
                    return cand;
            }
            ++i;
        }
        pos += k_chunk;
    }
    return size;
}

}  // namespace

Result<void> PackStore::scan(const std::function<bool(const RecordHeader&, const StoredRef&, std::string_view)>& fn,
                             StorePos from, const DamageFn& on_damage) const {
    for (std::uint32_t seg = std::max<std::uint32_t>(from.first, 1); seg <= segment_; ++seg) {
        auto p = segment_path(seg);
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        FdCloser closer{fd};
        struct stat st{};
        ::fstat(fd, &st);
        std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        std::uint64_t off = seg == from.first ? from.second : 0;
        std::string meta;
        auto skip_damage = [&] {
            const std::uint64_t next = next_intact_record(fd, off, size);
            on_damage(seg, off, next);
            off = next;
        };
        while (off + k_record_header_size <= size) {
            char head[k_record_header_size];
            if (auto r = pread_all(fd, head, sizeof head, off, p.filename().string()); !r) return r;
            auto h = decode_header(head);
            if (!h || (on_damage && !known_type(*h))) {
                if (!on_damage) return fail(Error::Kind::corrupt, p.filename().string() + ": bad record at offset " + std::to_string(off));
                skip_damage();
                continue;
            }
            const std::uint64_t end = off + k_record_header_size + h->meta_size + h->payload_size;
            if (end > size) {
                if (!on_damage) break;  // torn tail: recover_tail() moves it aside on the next write
                skip_damage();
                continue;
            }
            meta.resize(h->meta_size);
            if (auto r = pread_all(fd, meta.data(), meta.size(), off + k_record_header_size, p.filename().string()); !r) return r;
            StoredRef ref{seg, off, h->payload_size, h->raw_size, end};
            if (!fn(*h, ref, meta)) return ok();
            off = end;
        }
        if (on_damage && off < size && size - off < k_record_header_size) on_damage(seg, off, size);  // a stub of a header
    }
    return ok();
}

std::string PackStore::segment_name(std::uint32_t segment) const { return segment_path(segment).filename().string(); }

std::uint64_t PackStore::total_bytes() const {
    std::uint64_t total = 0;
    std::error_code ec;
    for (std::uint32_t seg = 1; seg <= segment_; ++seg) {
        auto n = std::filesystem::file_size(segment_path(seg), ec);
        if (!ec) total += n;
    }
    return total;
}

std::string zstd_compress(std::string_view raw, int level) {
    thread_local std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
    thread_local std::unique_ptr<char[]> buf;  // reused: a fresh zeroed buffer per message costs more than zstd
    thread_local std::size_t buf_size = 0;
    std::size_t bound = ZSTD_compressBound(raw.size());
    if (bound > buf_size) {
        buf_size = std::max<std::size_t>(bound, 1 << 20);
        buf.reset(new char[buf_size]);
    }
    std::size_t n = ZSTD_compressCCtx(cctx.get(), buf.get(), buf_size, raw.data(), raw.size(), level);
    if (ZSTD_isError(n)) throw std::runtime_error("zstd compression failed");  // only on a bug
    std::string out(buf.get(), n);
    if (buf_size > (64u << 20)) {  // do not keep a huge message's buffer around
        buf.reset();
        buf_size = 0;
    }
    return out;
}

Result<std::string> zstd_decompress(std::string_view compressed, std::uint64_t raw_size) {
    thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
    std::string out(raw_size, '\0');
    std::size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), compressed.data(), compressed.size());
    if (ZSTD_isError(n) || n != raw_size)
        return fail(Error::Kind::corrupt, std::string("original does not decompress: ") +
                                              (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
    return out;
}

}  // namespace mv::index
