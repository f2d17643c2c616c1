#include "index/store/generations.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "index/util/crash_point.hpp"

namespace mv::index {
namespace fs = std::filesystem;
namespace {

constexpr const char* k_current_tmp = "CURRENT.tmp";

bool present(const fs::path& p) {
    std::error_code ec;
    return fs::exists(p, ec);
}

// "gen-NNNNNN" → N; 0 for anything else.
unsigned generation_number(const std::string& name) {
    unsigned n = 0;
    char tail = 0;
    if (name.size() != 10 || std::sscanf(name.c_str(), "gen-%6u%c", &n, &tail) != 1) return 0;
    return n;
}

// The generation CURRENT names ("" when there is no CURRENT or it names no generation).
std::string read_current(const fs::path& index_dir) {
    std::ifstream in(index_dir / k_current_file);
    std::string name;
    if (!in || !(in >> name) || generation_number(name) == 0) return {};
    return name;
}

// A legacy index (shard-K and meta directly inside) is present in `dir`.
bool legacy_present(const fs::path& dir) {
    return present(dir / "meta") || present(dir / "shard-0") || present(dir / "shard-0.old") ||
           present(dir / "shard-0.compact");
}

bool glass_complete(const fs::path& db) { return present(db / "iamglass"); }

// A legacy index with every database complete.
bool legacy_complete(const fs::path& dir, unsigned shards) {
    if (!glass_complete(dir / "meta")) return false;
    for (unsigned i = 0; i < shards; ++i)
        if (!glass_complete(dir / ("shard-" + std::to_string(i)))) return false;
    return true;
}

// Legacy compaction swapped each shard with two renames (shard-K -> shard-K.old, then
// shard-K.compact -> shard-K) after every compacted copy was complete: finish it.
Result<void> finish_legacy_compaction(const fs::path& shard) {
    std::error_code ec;
    const fs::path old = shard.string() + ".old", compacted = shard.string() + ".compact";
    if (!present(shard)) {
        if (present(old)) fs::rename(old, shard, ec);
        else if (present(compacted)) fs::rename(compacted, shard, ec);
        if (ec) return fail(Error::Kind::io, "restoring " + shard.string() + ": " + ec.message());
        if (auto r = sync_dir(shard.parent_path()); !r) return r;
    }
    fs::remove_all(old, ec);
    fs::remove_all(compacted, ec);
    return ok();
}

// Removes every entry of `index_dir` but `keep` (names).
void remove_all_but(const fs::path& index_dir, const std::vector<std::string>& keep) {
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& e : fs::directory_iterator(index_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (std::find(keep.begin(), keep.end(), name) == keep.end()) doomed.push_back(e.path());
    }
    for (const auto& p : doomed) fs::remove_all(p, ec);
}

// Removes generations that CURRENT does not name and an unfinished CURRENT.tmp.
void remove_unused_generations(const fs::path& index_dir) {
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& e : fs::directory_iterator(index_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (generation_number(name) != 0 || name == k_current_tmp) doomed.push_back(e.path());
    }
    for (const auto& p : doomed) fs::remove_all(p, ec);
}

Result<void> fsync_path(const fs::path& p, int flags) {
    int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return fail(Error::Kind::io, "cannot open " + p.string() + ": " + std::strerror(errno));
    int r = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (r != 0) return fail(Error::Kind::io, "fsync " + p.string() + ": " + std::strerror(err));
    return ok();
}

}  // namespace

std::optional<fs::path> find_index_dir(const fs::path& archive_dir) {
    const fs::path index_dir = archive_dir / "index";
    if (std::string name = read_current(index_dir); !name.empty()) return index_dir / name;
    if (legacy_present(index_dir)) return index_dir;
    // A legacy reindex cut between its two renames: the old index, complete, is index.old.
    if (legacy_present(archive_dir / "index.old")) return archive_dir / "index.old";
    return std::nullopt;
}

fs::path shard_path_for_read(const fs::path& index_dir, unsigned shard) {
    const fs::path p = index_dir / ("shard-" + std::to_string(shard));
    if (present(p)) return p;
    if (fs::path old = p.string() + ".old"; present(old)) return old;
    if (fs::path compacted = p.string() + ".compact"; present(compacted)) return compacted;
    return p;
}

Result<std::optional<fs::path>> settle_index_dir(const fs::path& archive_dir, unsigned shards) {
    const fs::path index_dir = archive_dir / "index", staging = archive_dir / "reindex.tmp";
    std::error_code ec;
    if (present(index_dir / k_current_file)) {
        std::string name = read_current(index_dir);
        // CURRENT only ever names a complete generation; if it is gone, so is the index
        // (the caller refuses, or reindex rebuilds). Leave everything as it is.
        if (name.empty() || !glass_complete(index_dir / name / "meta")) return std::optional<fs::path>{};
        remove_all_but(index_dir, {k_current_file, name});
        fs::remove_all(staging, ec);
        return std::optional<fs::path>{index_dir / name};
    }
    if (!legacy_present(index_dir) && legacy_present(archive_dir / "index.old")) {
        // A legacy reindex cut between `index -> index.old` and `reindex.tmp/index -> index`:
        // install the rebuilt index if it is complete, else put the old one back.
        const bool forward = legacy_complete(staging / "index", shards);
        const fs::path from = forward ? staging / "index" : archive_dir / "index.old";
        fs::remove_all(index_dir, ec);  // holds no index: at most leftovers
        fs::rename(from, index_dir, ec);
        if (ec) return fail(Error::Kind::io, "restoring the index from " + from.string() + ": " + ec.message());
        if (auto r = sync_dir(archive_dir); !r) return fail(r.error());
        if (forward) fs::remove_all(archive_dir / "index.old", ec);
    }
    fs::remove_all(staging, ec);
    if (!legacy_present(index_dir)) {
        if (present(index_dir)) remove_unused_generations(index_dir);
        return std::optional<fs::path>{};
    }
    for (unsigned i = 0; i < shards; ++i)
        if (auto r = finish_legacy_compaction(index_dir / ("shard-" + std::to_string(i))); !r) return fail(r.error());
    remove_unused_generations(index_dir);
    return std::optional<fs::path>{index_dir};
}

Result<fs::path> create_generation(const fs::path& archive_dir) {
    const fs::path index_dir = archive_dir / "index";
    std::error_code ec;
    fs::create_directories(index_dir, ec);
    if (ec) return fail(Error::Kind::io, "cannot create " + index_dir.string() + ": " + ec.message());
    unsigned last = generation_number(read_current(index_dir));
    for (const auto& e : fs::directory_iterator(index_dir, ec))
        last = std::max(last, generation_number(e.path().filename().string()));
    char name[16];
    std::snprintf(name, sizeof name, "gen-%06u", last + 1);
    const fs::path gen = index_dir / name;
    fs::create_directory(gen, ec);
    if (ec) return fail(Error::Kind::io, "cannot create " + gen.string() + ": " + ec.message());
    return gen;
}

Result<void> switch_generation(const fs::path& archive_dir, const fs::path& generation) {
    const fs::path index_dir = archive_dir / "index";
    const std::string name = generation.filename().string();
    if (generation_number(name) == 0 || generation.parent_path() != index_dir)
        return fail(Error::Kind::io, "not an index generation: " + generation.string());
    // The generation is durable before anything names it.
    if (auto r = sync_tree(generation); !r) return r;
    if (auto r = sync_dir(index_dir); !r) return r;
    const fs::path tmp = index_dir / k_current_tmp;
    {
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return fail(Error::Kind::io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
        const std::string text = name + "\n";
        bool good = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
        int err = errno;
        ::close(fd);
        if (!good) return fail(Error::Kind::io, "cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    std::error_code ec;
    fs::rename(tmp, index_dir / k_current_file, ec);  // the switch: one atomic step
    if (ec) return fail(Error::Kind::io, "cannot switch the index to " + name + ": " + ec.message());
    if (auto r = sync_dir(index_dir); !r) return r;
    crash_point("generation-switched");
    remove_all_but(index_dir, {k_current_file, name});
    return ok();
}

Result<void> sync_tree(const fs::path& dir) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        const bool is_dir = it->is_directory(ec);
        if (auto r = fsync_path(it->path(), is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY); !r) return r;
    }
    if (ec) return fail(Error::Kind::io, "cannot list " + dir.string() + ": " + ec.message());
    return sync_dir(dir);
}

Result<void> sync_dir(const fs::path& dir) { return fsync_path(dir, O_RDONLY | O_DIRECTORY); }

}  // namespace mv::index
