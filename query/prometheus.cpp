#include "query/prometheus.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <sstream>

#include "query/stats.hpp"

namespace mv::query {

std::string prometheus_escape(const std::string& value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

namespace {

struct LastRun {
    std::string source;
    std::string result;
    double time = 0, seconds = 0;
    double seen = 0, added = 0, failed = 0, bytes = 0;
};

double number(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

class Writer {
  public:
    void family(const std::string& name, const std::string& type, const std::string& help) {
        out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    }
    void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double value) {
        out_ << name;
        if (!labels.empty()) {
            out_ << "{";
            for (std::size_t i = 0; i < labels.size(); ++i)
                out_ << (i ? "," : "") << labels[i].first << "=\"" << prometheus_escape(labels[i].second) << "\"";
            out_ << "}";
        }
        std::ostringstream v;
        v.precision(15);
        v << value;
        out_ << " " << v.str() << "\n";
    }
    std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

}  // namespace

Result<std::string> prometheus_text(const index::Archive& archive) {
    auto s = compute_stats(archive);
    if (!s) return fail(s.error());
    std::vector<LastRun> runs;
    for (const auto& [key, value] : archive.metadata_with_prefix("lastsync:")) {
        LastRun r;
        r.source = key.substr(std::strlen("lastsync:"));
        auto j = nlohmann::json::parse(value, nullptr, false);
        if (!j.is_object()) continue;
        r.result = j.value("result", "");
        r.time = number(j, "time");
        r.seconds = number(j, "seconds");
        r.seen = number(j, "seen");
        r.added = number(j, "added");
        r.failed = number(j, "failed");
        r.bytes = number(j, "bytes");
        runs.push_back(std::move(r));
    }
    Writer w;
    w.family("mailvault_messages_total", "gauge", "Messages in the archive.");
    w.sample("mailvault_messages_total", {}, static_cast<double>(s->messages));
    w.family("mailvault_archive_bytes", "gauge", "Raw size of all originals in the archive.");
    w.sample("mailvault_archive_bytes", {}, static_cast<double>(s->bytes));
    w.family("mailvault_disk_bytes", "gauge", "Disk space the archive directory uses.");
    w.sample("mailvault_disk_bytes", {}, static_cast<double>(s->disk_bytes));
    w.family("mailvault_source_messages", "gauge", "Messages archived per source.");
    for (const auto& g : s->sources) w.sample("mailvault_source_messages", {{"source", g.name}}, static_cast<double>(g.messages));
    w.family("mailvault_source_bytes", "gauge", "Raw size of the originals per source.");
    for (const auto& g : s->sources) w.sample("mailvault_source_bytes", {{"source", g.name}}, static_cast<double>(g.bytes));
    w.family("mailvault_messages", "gauge", "Messages archived per mailbox.");
    for (const auto& g : s->mailboxes) w.sample("mailvault_messages", {{"mailbox", g.name}}, static_cast<double>(g.messages));
    w.family("mailvault_bytes", "gauge", "Raw size of the originals per mailbox.");
    for (const auto& g : s->mailboxes) w.sample("mailvault_bytes", {{"mailbox", g.name}}, static_cast<double>(g.bytes));
    w.family("mailvault_last_run_timestamp_seconds", "gauge", "When the last sync or import of the source ended (Unix time).");
    for (const auto& r : runs) w.sample("mailvault_last_run_timestamp_seconds", {{"source", r.source}}, r.time);
    w.family("mailvault_last_run_success", "gauge", "1 when the last run of the source archived everything, else 0.");
    for (const auto& r : runs) w.sample("mailvault_last_run_success", {{"source", r.source}}, r.result == "ok" ? 1 : 0);
    w.family("mailvault_last_run_result", "gauge", "The last run's result as a label (ok, partial, failed, interrupted, deadline).");
    for (const auto& r : runs) w.sample("mailvault_last_run_result", {{"source", r.source}, {"result", r.result}}, 1);
    w.family("mailvault_last_run_duration_seconds", "gauge", "How long the last run of the source took.");
    for (const auto& r : runs) w.sample("mailvault_last_run_duration_seconds", {{"source", r.source}}, r.seconds);
    w.family("mailvault_last_run_messages_added", "gauge", "Messages the last run of the source added.");
    for (const auto& r : runs) w.sample("mailvault_last_run_messages_added", {{"source", r.source}}, r.added);
    w.family("mailvault_failures_total", "gauge", "Messages the last run of the source could not archive.");
    for (const auto& r : runs) w.sample("mailvault_failures_total", {{"source", r.source}}, r.failed);
    // Completeness per folder, as the last sync of each source recorded it.
    struct Gauge {
        const char* name;
        const char* help;
        std::uint64_t FolderCompleteness::*field;
    };
    const Gauge gauges[] = {
        {"mailvault_folder_listed", "Messages the server listed in the folder at the last sync.", &FolderCompleteness::on_server},
        {"mailvault_folder_archived", "Of the listed messages, those archived (earlier or at the last sync).", &FolderCompleteness::archived},
        {"mailvault_folder_failed", "Messages of the folder the last sync could not archive.", &FolderCompleteness::failed},
        {"mailvault_folder_pending", "Messages of the folder still to fetch after the last sync (deadline, interrupted).", &FolderCompleteness::pending},
    };
    for (const auto& g : gauges) {
        w.family(g.name, "gauge", g.help);
        for (const auto& r : s->syncs)
            for (const auto& f : r.folders) {
                if (g.field == &FolderCompleteness::on_server && !f.listed) continue;  // unknown, not 0
                w.sample(g.name, {{"source", r.source}, {"mailbox", f.mailbox}, {"folder", f.folder}}, static_cast<double>(f.*g.field));
            }
    }
    w.family("mailvault_folder_complete", "gauge", "1 when the last sync archived every message the server listed in the folder.");
    for (const auto& r : s->syncs)
        for (const auto& f : r.folders)
            w.sample("mailvault_folder_complete", {{"source", r.source}, {"mailbox", f.mailbox}, {"folder", f.folder}}, f.complete() ? 1 : 0);
    return w.str();
}

}  // namespace mv::query
