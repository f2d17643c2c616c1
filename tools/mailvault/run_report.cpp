#include "tools/mailvault/run_report.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

namespace mv::cli {

namespace {
// Binary units everywhere mailvault prints sizes (KiB, MiB, GiB = 1024-based).
std::string human_bytes(std::uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
    return buf;
}
std::string clock_text(double seconds) {
    long s = static_cast<long>(seconds);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    return buf;
}
}  // namespace

ingest::ProgressFn make_progress(const Context& ctx, const std::string& label) {
    if (ctx.quiet) return {};
    bool tty = ctx.tty;
    auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    return [tty, label, last](const ingest::ImportSummary& s, ingest::ExpectedTotal total, bool done) {
        // A count is shown as it is; an estimate only while it is ahead of what was read.
        std::uint64_t expected = !total.estimate || (total.count > s.seen && !done) ? total.count : 0;
        auto now = std::chrono::steady_clock::now();
        auto interval = tty ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000);
        if (!done && now - *last < interval) return;
        *last = now;
        double rate = s.seconds > 0 ? s.seen / s.seconds : 0;
        std::string line = label + ": " + std::to_string(s.seen);
        if (expected) line += (total.estimate ? "/~" : "/") + std::to_string(expected);
        char buf[64];
        std::snprintf(buf, sizeof buf, " messages, %.0f/s", rate);
        line += buf;
        if (expected && rate > 0 && s.seen < expected) line += ", ETA " + clock_text((expected - s.seen) / rate);
        if (tty) {
            std::cerr << "\r\033[K" << line << (done ? "\n" : "") << std::flush;
        } else if (!done) {
            std::cerr << line << "\n";
        }
    };
}

std::string summary_line(const std::string& label, const ingest::ImportSummary& s) {
    char counts[200], rest[120];
    double rate = s.seconds > 0 ? s.seen / s.seconds : 0;
    std::snprintf(counts, sizeof counts, "%s: %llu new, %llu duplicates, %llu broken, %llu failed", label.c_str(),
                  static_cast<unsigned long long>(s.added), static_cast<unsigned long long>(s.duplicates),
                  static_cast<unsigned long long>(s.broken), static_cast<unsigned long long>(s.failed));
    std::string head = counts;
    if (s.rejected) head += ", " + std::to_string(s.rejected) + " rejected (not mail)";
    if (s.interrupted) head += ", interrupted";
    std::snprintf(rest, sizeof rest, "%s in %.1f s (%.0f msgs/s)", human_bytes(s.bytes).c_str(), s.seconds, rate);
    std::string line = head + ", " + rest;
    if (line.size() <= k_summary_width) return line;
    return head + ",\n  " + rest;  // two lines rather than one wider than a terminal
}

void record_last_sync(index::Archive& archive, const std::string& source, const std::string& result,
                      const ingest::ImportSummary& s, const std::vector<ingest::FolderRecord>* folders) {
    nlohmann::json j{{"time", static_cast<std::int64_t>(std::time(nullptr))},
                     {"result", result},
                     {"seen", s.seen},
                     {"added", s.added},
                     {"duplicates", s.duplicates},
                     {"broken", s.broken},
                     {"failed", s.failed},
                     {"rejected", s.rejected},
                     {"bytes", s.bytes},
                     {"seconds", s.seconds}};
    nlohmann::json errs = nlohmann::json::array();
    for (std::size_t i = 0; i < s.errors.size() && i < 20; ++i) errs.push_back(s.errors[i]);
    j["errors"] = std::move(errs);
    if (folders) j["folders"] = nlohmann::json::parse(ingest::records_json(*folders));
    archive.set_metadata("lastsync:" + source, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    (void)archive.commit();
}

void maybe_compact(const Context& ctx, index::Archive& archive, std::uint64_t added) {
    if (added < 1000 || added * 2 < archive.document_count()) return;
    log_line(ctx, "compacting the index");
    if (auto r = archive.compact(); !r) std::cerr << "mailvault: " << r.error().message << " (the index is intact)\n";
}

}  // namespace mv::cli
