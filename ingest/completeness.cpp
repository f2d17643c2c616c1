#include "ingest/completeness.hpp"

#include <nlohmann/json.hpp>

namespace mv::ingest {

namespace {
constexpr std::size_t k_kept_failures = 100;  // per folder in the record; the count stays exact
}

void CompletenessTally::on_message(const index::Location& where, MessageFate fate, const std::string& why) {
    Count& c = by_folder_[{where.mailbox, where.folder}];
    switch (fate) {
        case MessageFate::added:
            ++c.added;
            ++c.archived;
            break;
        case MessageFate::duplicate:
            ++c.archived;
            break;
        case MessageFate::failed:
        case MessageFate::rejected:
            c.failed.emplace_back(where.server_id, why);
            break;
    }
}

std::vector<FolderRecord> CompletenessTally::records(const std::vector<FolderTally>& tallies) const {
    std::vector<FolderRecord> out;
    for (const auto& t : tallies) {
        FolderRecord r;
        r.mailbox = t.mailbox;
        r.folder = t.folder;
        r.listed = t.listed;
        r.on_server = t.on_server;
        r.gone = t.gone;
        std::vector<std::pair<std::string, std::string>> failures = t.failed;
        std::uint64_t archived_now = 0;
        if (auto it = by_folder_.find({t.mailbox, t.folder}); it != by_folder_.end()) {
            archived_now = it->second.archived;
            r.added = it->second.added;
            failures.insert(failures.end(), it->second.failed.begin(), it->second.failed.end());
        }
        r.failed = failures.size();
        if (failures.size() > k_kept_failures) failures.resize(k_kept_failures);
        r.failures = std::move(failures);
        if (t.listed) {
            // Listed but not to fetch: at or below the checkpoint, archived by an earlier run.
            const std::uint64_t already = t.on_server > t.to_fetch ? t.on_server - t.to_fetch : 0;
            std::uint64_t accounted = archived_now + t.gone;
            for (const auto& f : r.failures)
                if (!f.first.empty()) ++accounted;
            if (r.failed > r.failures.size()) accounted += r.failed - r.failures.size();
            r.pending = t.to_fetch > accounted ? t.to_fetch - accounted : 0;
            r.archived = std::min(already + archived_now, t.on_server);
        } else {
            r.archived = archived_now;
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<std::string> skipped_lines(const std::vector<FolderRecord>& records) {
    std::vector<std::string> out;
    for (const auto& r : records) {
        if (r.complete()) continue;
        std::string line = r.mailbox + "/" + (r.folder.empty() ? std::string("(folders)") : r.folder) + ": ";
        std::string parts;
        if (r.failed) {
            parts += std::to_string(r.failed) + " failed";
            if (!r.failures.empty()) {
                const auto& [id, why] = r.failures.front();
                parts += " (" + (id.empty() ? std::string("the folder") : id) + ": " + why + ")";
            }
        }
        if (r.pending) parts += (parts.empty() ? "" : ", ") + std::to_string(r.pending) + " still to fetch";
        if (!r.listed && !r.failed) parts += (parts.empty() ? "" : ", ") + std::string("not listed (not reached)");
        out.push_back(line + parts);
    }
    return out;
}

std::string records_json(const std::vector<FolderRecord>& records) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& r : records) {
        nlohmann::ordered_json j;
        j["mailbox"] = r.mailbox;
        j["folder"] = r.folder;
        if (r.listed) j["listed"] = r.on_server;
        else j["listed"] = nullptr;
        j["archived"] = r.archived;
        j["new"] = r.added;
        j["failed"] = r.failed;
        j["pending"] = r.pending;
        j["gone"] = r.gone;
        j["complete"] = r.complete();
        auto f = nlohmann::ordered_json::array();
        for (const auto& [id, why] : r.failures) f.push_back({{"id", id}, {"error", why}});
        j["failures"] = std::move(f);
        a.push_back(std::move(j));
    }
    return a.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace mv::ingest
