#include "web/attachments_zip.hpp"

#include <zlib.h>

#include <algorithm>
#include <ctime>
#include <limits>

#include "query/export.hpp"

namespace mv::web {
namespace {

constexpr std::uint64_t k_zip_max = std::numeric_limits<std::uint32_t>::max() - 1;

void put16(std::string& s, std::uint32_t v) {
    s += static_cast<char>(v & 0xff);
    s += static_cast<char>((v >> 8) & 0xff);
}
void put32(std::string& s, std::uint32_t v) {
    put16(s, v & 0xffff);
    put16(s, v >> 16);
}

// Raw deflate (no zlib header), as zip method 8 wants; empty on failure.
std::string deflate_raw(std::string_view in) {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
    std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return rc == Z_STREAM_END ? out : std::string();
}

}  // namespace

Result<void> ZipWriter::add(std::string_view name, std::string_view bytes, std::int64_t mtime) {
    if (entries_.size() >= 0xffff) return fail(Error::Kind::failed, "zip: more than 65,535 entries");
    if (bytes.size() > k_zip_max || name.size() > 0xffff) return fail(Error::Kind::failed, "zip: an entry is too large");
    Entry e;
    e.name = std::string(name);
    e.usize = static_cast<std::uint32_t>(bytes.size());
    e.crc = static_cast<std::uint32_t>(crc32_z(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
    std::string packed = bytes.empty() ? std::string() : deflate_raw(bytes);
    std::string_view data = bytes;
    if (!packed.empty() && packed.size() < bytes.size()) {
        e.method = 8;
        data = packed;
    }
    e.csize = static_cast<std::uint32_t>(data.size());
    std::time_t t = static_cast<std::time_t>(std::max<std::int64_t>(mtime, 315532800));  // 1980-01-01
    std::tm tm{};
    gmtime_r(&t, &tm);
    if (tm.tm_year + 1900 > 2107) tm = std::tm{0, 0, 0, 31, 11, 2107 - 1900};
    e.dos_time = static_cast<std::uint16_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    e.dos_date = static_cast<std::uint16_t>(((tm.tm_year + 1900 - 1980) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
    if (out_.size() + 30 + e.name.size() + data.size() > k_zip_max) return fail(Error::Kind::failed, "zip: larger than 4 GiB");
    e.offset = static_cast<std::uint32_t>(out_.size());
    put32(out_, 0x04034b50);
    put16(out_, 20);      // version needed: 2.0 (deflate)
    put16(out_, 0x0800);  // UTF-8 names
    put16(out_, e.method);
    put16(out_, e.dos_time);
    put16(out_, e.dos_date);
    put32(out_, e.crc);
    put32(out_, e.csize);
    put32(out_, e.usize);
    put16(out_, static_cast<std::uint32_t>(e.name.size()));
    put16(out_, 0);  // extra field
    out_ += e.name;
    out_.append(data);
    entries_.push_back(std::move(e));
    return ok();
}

Result<std::string> ZipWriter::finish() {
    const std::size_t cd_offset = out_.size();
    for (const auto& e : entries_) {
        put32(out_, 0x02014b50);
        put16(out_, (3 << 8) | 20);  // made by: Unix, 2.0
        put16(out_, 20);
        put16(out_, 0x0800);
        put16(out_, e.method);
        put16(out_, e.dos_time);
        put16(out_, e.dos_date);
        put32(out_, e.crc);
        put32(out_, e.csize);
        put32(out_, e.usize);
        put16(out_, static_cast<std::uint32_t>(e.name.size()));
        put16(out_, 0);  // extra
        put16(out_, 0);  // comment
        put16(out_, 0);  // disk
        put16(out_, 0);  // internal attributes
        put32(out_, 0100644u << 16);  // external: a regular file, rw-r--r--
        put32(out_, e.offset);
        out_ += e.name;
    }
    const std::size_t cd_size = out_.size() - cd_offset;
    if (out_.size() > k_zip_max) return fail(Error::Kind::failed, "zip: larger than 4 GiB");
    put32(out_, 0x06054b50);
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, static_cast<std::uint32_t>(entries_.size()));
    put16(out_, static_cast<std::uint32_t>(entries_.size()));
    put32(out_, static_cast<std::uint32_t>(cd_size));
    put32(out_, static_cast<std::uint32_t>(cd_offset));
    put16(out_, 0);  // comment
    std::string done = std::move(out_);
    out_.clear();
    entries_.clear();
    return done;
}

Result<AttachmentsZip> attachments_zip(std::string_view raw, std::uint64_t docno, std::int64_t date) {
    ZipWriter zip;
    AttachmentsZip out;
    Result<void> status = ok();
    query::for_each_attachment(raw, [&](query::AttachmentFile& a) {
        if (!status) return;
        status = zip.add(query::attachment_file_name(docno, a.n, a.filename, a.content_type), a.bytes, date);
        if (status) ++out.files;
    });
    if (!status) return fail(status.error());
    if (out.files == 0) return fail(Error::Kind::not_found, "message " + std::to_string(docno) + " has no attachments");
    auto bytes = zip.finish();
    if (!bytes) return fail(bytes.error());
    out.bytes = std::move(*bytes);
    return out;
}

}  // namespace mv::web
