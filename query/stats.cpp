#include "query/stats.hpp"

#include <map>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "index/document/builder.hpp"
#include "index/reindex.hpp"
#include "index/schema.hpp"
#include "query/search.hpp"

namespace mv::query {
namespace {

std::uint64_t dir_bytes(const std::filesystem::path& dir) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
            total += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    return total;
}

std::vector<GroupStats> groups(const Xapian::Database& db, std::string_view prefix,
                               const std::vector<std::uint64_t>& sizes) {
    std::vector<GroupStats> out;
    const std::string p(prefix);
    for (auto t = db.allterms_begin(p); t != db.allterms_end(p); ++t) {
        std::string term = *t;
        GroupStats g;
        g.name = term.substr(p.size());
        if (!g.name.empty() && g.name[0] == ':') g.name.erase(0, 1);
        for (auto d = db.postlist_begin(term); d != db.postlist_end(term); ++d) {
            ++g.messages;
            if (*d < sizes.size()) g.bytes += sizes[*d];
        }
        out.push_back(std::move(g));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.messages > b.messages; });
    return out;
}

// Folders as the sources named them (original case, only folders mail was seen in: the
// folder terms are folded and add every ancestor, so they cannot say this), from the
// document data: one pass over the archive.
std::vector<GroupStats> folder_groups(const Xapian::Database& db, const std::vector<std::uint64_t>& sizes) {
    std::map<std::string, GroupStats> by_name;
    for (auto p = db.postlist_begin(""); p != db.postlist_end(""); ++p) {
        const auto d = index::DocData::from_json(db.get_document(*p, Xapian::DOC_ASSUME_VALID).get_data());
        std::vector<const std::string*> seen;
        for (const auto& l : d.locations) {
            if (l.folder.empty()) continue;
            if (std::any_of(seen.begin(), seen.end(), [&](const std::string* f) { return *f == l.folder; })) continue;
            seen.push_back(&l.folder);
            GroupStats& g = by_name[l.folder];
            g.name = l.folder;
            ++g.messages;
            if (*p < sizes.size()) g.bytes += sizes[*p];
        }
    }
    std::vector<GroupStats> out;
    for (auto& [name, g] : by_name) out.push_back(std::move(g));
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.messages > b.messages; });
    return out;
}

std::string human(std::uint64_t b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

// `text` cut to `width` columns (bytes; UTF-8 continuation bytes not split), "..." marking a cut.
std::string clip(const std::string& text, std::size_t width = 80) {
    if (text.size() <= width) return text;
    std::size_t n = width - 3;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    return text.substr(0, n) + "...";
}

std::uint64_t count(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>()
           : it != j.end() && it->is_number_integer() ? static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()))
                                                      : 0;
}

}  // namespace

Result<ArchiveStats> compute_stats_of(const index::Archive& archive);  // compute_stats without the guard

std::vector<FolderCompleteness> folders_of_record(const std::string& lastsync_json, bool* has_folders) {
    std::vector<FolderCompleteness> out;
    auto j = nlohmann::json::parse(lastsync_json, nullptr, false);
    const bool has = j.is_object() && j.contains("folders") && j["folders"].is_array();
    if (has_folders) *has_folders = has;
    if (!has) return out;
    for (const auto& f : j["folders"]) {
        if (!f.is_object()) continue;
        FolderCompleteness c;
        c.mailbox = f.value("mailbox", "");
        c.folder = f.value("folder", "");
        c.listed = f.contains("listed") && f["listed"].is_number();
        c.on_server = count(f, "listed");
        c.archived = count(f, "archived");
        c.added = count(f, "new");
        c.failed = count(f, "failed");
        c.pending = count(f, "pending");
        c.gone = count(f, "gone");
        if (f.contains("failures") && f["failures"].is_array())
            for (const auto& x : f["failures"])
                if (x.is_object()) c.failures.emplace_back(x.value("id", ""), x.value("error", ""));
        out.push_back(std::move(c));
    }
    return out;
}

Result<ArchiveStats> compute_stats(const index::Archive& archive) {
    try {
        // A damaged shard is left out (its messages are then not counted; verify names it).
        return index::on_intact_shards(archive, [&]() -> Result<ArchiveStats> { return compute_stats_of(archive); });
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "stats: " + e.get_msg());
    }
}

Result<ArchiveStats> compute_stats_of(const index::Archive& archive) {
    {
        ArchiveStats s;
        Xapian::Database db = archive.database();
        s.messages = db.get_doccount();
        std::vector<std::uint64_t> sizes(db.get_lastdocid() + 1, 0);
        for (auto v = db.valuestream_begin(schema::k_slot_size); v != db.valuestream_end(schema::k_slot_size); ++v) {
            auto n = static_cast<std::uint64_t>(Xapian::sortable_unserialise(*v));
            sizes[v.get_docid()] = n;
            s.bytes += n;
        }
        if (s.messages) {
            s.oldest = static_cast<std::int64_t>(Xapian::sortable_unserialise(db.get_value_lower_bound(schema::k_slot_date)));
            s.newest = static_cast<std::int64_t>(Xapian::sortable_unserialise(db.get_value_upper_bound(schema::k_slot_date)));
        }
        s.sources = groups(db, schema::prefix_of("source"), sizes);
        s.mailboxes = groups(db, schema::prefix_of("mailbox"), sizes);
        s.folders = folder_groups(db, sizes);
        s.disk_bytes = dir_bytes(archive.dir());
        s.store_bytes = archive.store().total_bytes();
        s.index_bytes = dir_bytes(archive.dir() / "index");
        for (const auto& [key, value] : archive.metadata_with_prefix("lastsync:")) {
            SyncRecord r;
            r.source = key.substr(std::strlen("lastsync:"));
            auto j = nlohmann::json::parse(value, nullptr, false);
            if (j.is_object()) {
                if (j.contains("time"))
                    r.time = j["time"].is_string()            ? j["time"].get<std::string>()
                             : j["time"].is_number_integer() ? iso_date(j["time"].get<std::int64_t>())
                                                              : j["time"].dump();
                r.result = j.value("result", "");
                if (j.contains("added") && j["added"].is_number()) r.added = j["added"].get<std::uint64_t>();
                if (j.contains("errors") && j["errors"].is_array())
                    for (const auto& e : j["errors"]) r.errors.push_back(e.is_string() ? e.get<std::string>() : e.dump());
                r.folders = folders_of_record(value, &r.has_folders);
            } else {
                r.result = "unreadable record";
            }
            s.syncs.push_back(std::move(r));
        }
        return s;
    }
}

std::string stats_text(const ArchiveStats& s) {
    std::string out;
    out += "messages: " + std::to_string(s.messages) + " (" + human(s.bytes) + " of mail)\n";
    if (s.messages) out += "dates: " + iso_date(s.oldest) + " .. " + iso_date(s.newest) + "\n";
    out += "on disk: " + human(s.disk_bytes) + " (index " + human(s.index_bytes) + ", originals " +
           human(s.store_bytes) + ")\n";
    auto table = [&](const char* title, const std::vector<GroupStats>& g) {
        if (g.empty()) return;
        out += std::string(title) + ":\n";
        for (const auto& x : g)
            out += "  " + x.name + ": " + std::to_string(x.messages) + " messages, " + human(x.bytes) + "\n";
    };
    table("sources", s.sources);
    table("mailboxes", s.mailboxes);
    table("folders", s.folders);
    if (!s.syncs.empty()) {
        out += "last sync:\n";
        for (const auto& r : s.syncs) {
            std::string line = "  " + r.source + ": " + r.time + " " + r.result + ", " + std::to_string(r.added) + " added";
            if (!r.errors.empty()) line += ", " + std::to_string(r.errors.size()) + " error(s): " + r.errors.front();
            out += clip(line) + "\n";
        }
    }
    // Completeness: what the server listed against what is archived, per folder.
    bool any = std::any_of(s.syncs.begin(), s.syncs.end(), [](const SyncRecord& r) { return !r.folders.empty(); });
    if (any) {
        out += "completeness of the last sync (listed on the server / archived):\n";
        for (const auto& r : s.syncs) {
            if (r.folders.empty()) continue;
            std::string mailbox = "\x01";
            for (const auto& f : r.folders) {
                if (f.mailbox != mailbox) {
                    mailbox = f.mailbox;
                    out += clip("  " + r.source + " " + (mailbox.empty() ? std::string("(no mailbox)") : mailbox)) + "\n";
                }
                std::string line = "    " + (f.folder.empty() ? std::string("(folder list)") : f.folder) + ": ";
                if (f.listed) line += std::to_string(f.on_server) + " listed, " + std::to_string(f.archived) + " archived";
                else line += "not listed";
                if (f.failed) line += ", " + std::to_string(f.failed) + " failed";
                if (f.pending) line += ", " + std::to_string(f.pending) + " to fetch";
                line += f.complete() ? "" : " INCOMPLETE";
                out += clip(line) + "\n";
                for (std::size_t i = 0; i < f.failures.size() && i < 5; ++i) {
                    const auto& [id, why] = f.failures[i];
                    out += clip("      " + (id.empty() ? std::string("folder") : "id " + id) + ": " + why) + "\n";
                }
                if (f.failed > 5) out += "      ... " + std::to_string(f.failed - 5) + " more (stats --json)\n";
            }
        }
    }
    return out;
}

std::string stats_json(const ArchiveStats& s) {
    nlohmann::ordered_json j;
    j["messages"] = s.messages;
    j["bytes"] = s.bytes;
    j["oldest"] = s.messages ? iso_date(s.oldest) : "";
    j["newest"] = s.messages ? iso_date(s.newest) : "";
    j["disk_bytes"] = s.disk_bytes;
    j["index_bytes"] = s.index_bytes;
    j["originals_bytes"] = s.store_bytes;
    auto groups = [](const std::vector<GroupStats>& g) {
        auto a = nlohmann::ordered_json::array();
        for (const auto& x : g) a.push_back({{"name", x.name}, {"messages", x.messages}, {"bytes", x.bytes}});
        return a;
    };
    j["sources"] = groups(s.sources);
    j["mailboxes"] = groups(s.mailboxes);
    j["folders"] = groups(s.folders);
    auto syncs = nlohmann::ordered_json::array();
    for (const auto& r : s.syncs) {
        nlohmann::ordered_json x;
        x["source"] = r.source;
        x["time"] = r.time;
        x["result"] = r.result;
        x["added"] = r.added;
        x["errors"] = r.errors;
        if (r.has_folders) {
            x["complete"] = std::all_of(r.folders.begin(), r.folders.end(), [](const auto& f) { return f.complete(); });
            auto folders = nlohmann::ordered_json::array();
            for (const auto& f : r.folders) {
                nlohmann::ordered_json y;
                y["mailbox"] = f.mailbox;
                y["folder"] = f.folder;
                if (f.listed) y["listed"] = f.on_server;
                else y["listed"] = nullptr;
                y["archived"] = f.archived;
                y["new"] = f.added;
                y["failed"] = f.failed;
                y["pending"] = f.pending;
                y["gone"] = f.gone;
                y["complete"] = f.complete();
                auto fl = nlohmann::ordered_json::array();
                for (const auto& [id, why] : f.failures) fl.push_back({{"id", id}, {"error", why}});
                y["failures"] = std::move(fl);
                folders.push_back(std::move(y));
            }
            x["folders"] = std::move(folders);
        }
        syncs.push_back(std::move(x));
    }
    j["last_sync"] = std::move(syncs);
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<VerifyReport> verify_archive(const index::Archive& archive, unsigned threads,
                                    const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
    struct Item {
        std::uint64_t docno;
        std::string location, sha;
    };
    VerifyReport report;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Item> items;
    // A damaged shard is named, left out of the index pass below, and its originals are found
    // through the store's records (each names its docno; docno d lives in shard (d-1) % N).
    archive.find_damaged_shards();
    const auto damaged = archive.damaged_shards();
    std::vector<Item> from_records;
    if (!damaged.empty()) {
        std::map<unsigned, ShardIssue> by_shard;
        for (const auto& [shard, why] : damaged)
            by_shard[shard] = ShardIssue{shard, archive.shard_location(shard).filename().string(), why, {}};
        const unsigned n = std::max(1u, archive.shard_count());
        auto scanned = archive.store().scan(
            [&](const index::RecordHeader& h, const index::StoredRef& ref, std::string_view) {
                if (h.type != index::RecordType::original || h.docno == 0) return true;
                auto it = by_shard.find(static_cast<unsigned>((h.docno - 1) % n));
                if (it == by_shard.end()) return true;
                it->second.docnos.push_back(h.docno);
                from_records.push_back({h.docno, ref.encode(), std::string(reinterpret_cast<const char*>(h.sha.data()), h.sha.size())});
                return true;
            },
            {1, 0}, [](std::uint32_t, std::uint64_t, std::uint64_t) {});
        (void)scanned;
        for (auto& [shard, issue] : by_shard) {
            std::sort(issue.docnos.begin(), issue.docnos.end());
            issue.docnos.erase(std::unique(issue.docnos.begin(), issue.docnos.end()), issue.docnos.end());
            report.shards.push_back(std::move(issue));
        }
    }
    for (const auto& [key, why] : archive.metadata_with_prefix(index::k_damaged_prefix))
        report.issues.push_back({std::strtoull(key.c_str() + std::strlen(index::k_damaged_prefix), nullptr, 10),
                                 why + " (not in the index since reindex)"});
    try {
        Xapian::Database db = archive.database();
        std::uint64_t total = db.get_doccount();
        items.reserve(total);
        for (auto p = db.postlist_begin(""); p != db.postlist_end(""); ++p) items.push_back({*p, {}, {}});
        // Value streams are read in docid order, far cheaper than opening each document.
        std::size_t i = 0;
        for (auto v = db.valuestream_begin(schema::k_slot_location); v != db.valuestream_end(schema::k_slot_location); ++v) {
            while (i < items.size() && items[i].docno < v.get_docid()) ++i;
            if (i < items.size() && items[i].docno == v.get_docid()) items[i].location = *v;
        }
        i = 0;
        for (auto v = db.valuestream_begin(schema::k_slot_sha256); v != db.valuestream_end(schema::k_slot_sha256); ++v) {
            while (i < items.size() && items[i].docno < v.get_docid()) ++i;
            if (i < items.size() && items[i].docno == v.get_docid()) items[i].sha = *v;
        }
        for (auto& it : items) {
            if (it.sha.size() == 32) continue;
            // No binary digest in the value slot: take the hex one of the document data.
            auto d = index::DocData::from_json(db.get_document(static_cast<Xapian::docid>(it.docno)).get_data());
            it.sha = d.sha256;
        }
        items.insert(items.end(), from_records.begin(), from_records.end());
    } catch (const Xapian::Error& e) {
        return fail(Error::Kind::io, "verify: reading the index: " + e.get_msg());
    }

    std::mutex mu;
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> done{0}, bytes{0};
    auto worker = [&] {
        std::vector<VerifyIssue> local;
        for (;;) {
            std::size_t k = next.fetch_add(1);
            if (k >= items.size()) break;
            const Item& it = items[k];
            auto issue = [&](std::string what) { local.push_back({it.docno, std::move(what)}); };
            auto ref = index::StoredRef::decode(it.location);
            if (!ref) {
                issue("index entry has no original (no store location)");
            } else if (auto payload = archive.store().read_payload(*ref); !payload) {
                issue("original missing or unreadable: " + payload.error().message);
            } else if (auto raw = index::zstd_decompress(*payload, ref->raw_size); !raw) {
                issue("original damaged (truncated or altered): " + raw.error().message);
            } else {
                Digest d = sha256(*raw);
                bytes += raw->size();
                bool match = it.sha.size() == 32 ? std::memcmp(d.data(), it.sha.data(), 32) == 0 : to_hex(d) == it.sha;
                if (raw->size() != ref->raw_size) issue("original has " + std::to_string(raw->size()) +
                                                        " bytes, the index says " + std::to_string(ref->raw_size));
                else if (!match) issue("original altered: SHA-256 " + to_hex(d) + " does not match the index");
            }
            std::uint64_t n = ++done;
            if (progress && (n % 1000 == 0)) {
                std::lock_guard lock(mu);
                progress(n, items.size());
            }
        }
        std::lock_guard lock(mu);
        report.issues.insert(report.issues.end(), local.begin(), local.end());
    };
    threads = std::max(1u, threads);
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    std::sort(report.issues.begin(), report.issues.end(), [](const auto& a, const auto& b) { return a.docno < b.docno; });
    report.checked = items.size();
    report.bytes = bytes;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(items.size(), items.size());
    return report;
}

}  // namespace mv::query
