// Zip archives with libzip: member names, and the text of members of the supported kinds, with
// limits against zip bombs (members, unpacked bytes, compression ratio, nesting).
#include <zip.h>

#include <algorithm>

#include "index/extract/formats.hpp"

namespace mv::index::extract {

ZipReader::ZipReader(std::string_view bytes) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
    if (src) {
        zip_t* za = zip_open_from_source(src, ZIP_RDONLY, &err);
        if (za) archive_ = za;
        else zip_source_free(src);
    }
    zip_error_fini(&err);
}

ZipReader::~ZipReader() {
    if (archive_) zip_discard(static_cast<zip_t*>(archive_));  // frees the source too
}

std::size_t ZipReader::count() const {
    if (!archive_) return 0;
    zip_int64_t n = zip_get_num_entries(static_cast<zip_t*>(archive_), 0);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

ZipReader::Member ZipReader::member(std::size_t i) const {
    Member m;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(static_cast<zip_t*>(archive_), i, 0, &st) != 0) return m;
    if (st.valid & ZIP_STAT_NAME) m.name = st.name;
    if (st.valid & ZIP_STAT_SIZE) m.size = st.size;
    if (st.valid & ZIP_STAT_COMP_SIZE) m.packed = st.comp_size;
    if (st.valid & ZIP_STAT_ENCRYPTION_METHOD) m.encrypted = st.encryption_method != ZIP_EM_NONE;
    return m;
}

std::size_t ZipReader::find(std::string_view name) const {
    if (!archive_) return 0;
    zip_int64_t i = zip_name_locate(static_cast<zip_t*>(archive_), std::string(name).c_str(), 0);
    return i < 0 ? count() : static_cast<std::size_t>(i);
}

bool ZipReader::read(std::size_t i, std::uint64_t cap, std::string& out) const {
    out.clear();
    zip_file_t* f = zip_fopen_index(static_cast<zip_t*>(archive_), i, 0);
    if (!f) return false;
    char buf[64 << 10];
    bool ok = true;
    while (out.size() < cap) {
        zip_int64_t n = zip_fread(f, buf, std::min<std::uint64_t>(sizeof buf, cap - out.size()));
        if (n < 0) {
            ok = false;
            break;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    zip_fclose(f);
    return ok;
}

Extracted zip(std::string_view bytes, const Limits& limits, const Hooks& hooks, int depth, Clock::time_point deadline) {
    ZipReader z(bytes);
    if (!z.ok()) return {Status::failed, "not a readable zip archive", {}};
    Extracted r{Status::indexed, {}, {}};
    const std::size_t n = z.count();
    std::uint64_t unpacked = 0;
    std::size_t encrypted = 0, skipped = 0, files = 0;
    std::string names, texts, data;
    for (std::size_t i = 0; i < n; ++i) {
        if (i >= limits.max_members) {
            skipped += n - i;
            break;
        }
        if (Clock::now() > deadline) return {Status::timed_out, "over " + std::to_string(limits.timeout.count()) + " ms", {}};
        const ZipReader::Member m = z.member(i);
        if (m.name.empty() || m.name.back() == '/') continue;
        ++files;
        append_text(names, m.name, limits.max_text);  // names only: nothing is ever written out
        if (m.encrypted) {
            ++encrypted;
            continue;
        }
        const std::string kind = kind_of({}, m.name);
        if (kind.empty()) continue;
        const std::uint64_t budget = limits.max_unpacked - std::min(unpacked, limits.max_unpacked);
        if (m.size > budget || m.size > limits.max_bytes ||
            (m.packed > 0 && m.size / m.packed > limits.max_ratio && m.size > (1u << 20)) || (m.packed == 0 && m.size > 0)) {
            ++skipped;
            continue;
        }
        // What is read is capped whatever the header claims: the declared size may lie.
        if (!z.read(i, std::min<std::uint64_t>(budget, limits.max_bytes) + 1, data)) {
            ++skipped;
            continue;
        }
        unpacked += data.size();
        if (data.size() > m.size || data.size() > budget) {  // more than declared: a lying header
            ++skipped;
            continue;
        }
        Limits inner = limits;
        inner.max_text = limits.max_text - std::min(limits.max_text, texts.size());
        Extracted e = extract(data, {}, m.name, {}, inner, hooks, depth + 1);
        if (e.status == Status::indexed) append_text(texts, e.text, limits.max_text);
        else ++skipped;
    }
    if (files > 0 && encrypted == files) return {Status::encrypted, {}, {}};
    append_text(r.text, names, limits.max_text);
    append_text(r.text, texts, limits.max_text);
    if (skipped || encrypted)
        r.reason = std::to_string(skipped + encrypted) + " member(s) not extracted (limits, encrypted or unreadable)";
    return r;
}

}  // namespace mv::index::extract
