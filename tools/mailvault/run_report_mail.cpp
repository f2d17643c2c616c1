// The run report mailed after `sync` and `import --report` (see mail.hpp).
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "ingest/net/account.hpp"
#include "ingest/oauth/delegated.hpp"
#include "ingest/smtp/smtp_client.hpp"
#include "tools/mailvault/mail.hpp"

namespace mv::cli {

namespace {

using ingest::smtp::html_escape;

std::string fmt_seconds(double s) {
    char buf[32];
    if (s < 120) std::snprintf(buf, sizeof buf, "%.1f s", s);
    else std::snprintf(buf, sizeof buf, "%ld min %02ld s", static_cast<long>(s) / 60, static_cast<long>(s) % 60);
    return buf;
}

std::string fmt_time(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

std::string host_name() {
    char h[256] = {};
    return ::gethostname(h, sizeof h - 1) == 0 && h[0] ? h : "localhost";
}

const char* result_color(const std::string& r) {
    return r == "ok" ? "#1a7f37" : r == "partial" ? "#9a6700" : "#cf222e";
}

}  // namespace

std::optional<ingest::RawMessage> TallyingSource::next() {
    auto m = inner_.next();
    if (!m) return m;
    const std::string prefix = "cp:" + inner_.name() + ":";
    std::string mailbox = m->where.mailbox.empty() ? "(none)" : m->where.mailbox;
    auto& t = tally_[mailbox];
    if (!m->checkpoint_only) {
        ++t.fetched;
        if (!m->where.folder.empty()) t.folders.insert(m->where.folder);
    }
    for (const auto& [k, v] : m->checkpoint) {
        ++t.checkpoints;
        t.last_checkpoint = k.rfind(prefix, 0) == 0 ? k.substr(prefix.size()) : k;
    }
    return m;
}

std::string report_verdict(const RunReport& r) {
    if (r.sources.empty()) return "FAILED";
    std::size_t ok = 0, failed = 0;
    for (const auto& s : r.sources) {
        ok += s.result == "ok";
        failed += s.result == "failed";
    }
    if (ok == r.sources.size()) return "OK";
    if (failed == r.sources.size()) return "FAILED";
    return "PARTIAL";
}

ingest::smtp::MailMessage build_report(const RunReport& r, const std::string& sender, const std::vector<std::string>& to) {
    ingest::smtp::MailMessage m;
    m.from = sender;
    m.to = to;
    const std::string verdict = report_verdict(r);
    std::uint64_t added = 0, dups = 0, failed = 0;
    double seconds = 0;
    for (const auto& s : r.sources) {
        added += s.summary.added;
        dups += s.summary.duplicates;
        failed += s.summary.failed;
        seconds += s.summary.seconds;
    }
    m.subject = "[mailvault] " + verdict + ": " + r.command + " on " + host_name() + ", " + std::to_string(added) + " new, " +
                std::to_string(failed) + " failed";

    // ---- text/plain
    std::string t;
    t += "mailvault " + r.command + ": " + verdict + "\n";
    t += "Started " + fmt_time(r.started) + " on " + host_name() + ", archive " + r.archive + "\n";
    t += "Total: " + std::to_string(added) + " new, " + std::to_string(dups) + " duplicates, " + std::to_string(failed) +
         " failed, " + fmt_seconds(seconds) + "; archive holds " + std::to_string(r.archive_documents) + " messages.\n";
    for (const auto& s : r.sources) {
        t += "\n" + s.source + ": " + s.result + " - " + std::to_string(s.summary.added) + " new, " +
             std::to_string(s.summary.duplicates) + " duplicates, " + std::to_string(s.summary.failed) + " failed, " +
             fmt_seconds(s.summary.seconds) + "\n";
        for (const auto& [mb, tally] : s.mailboxes) {
            t += "  " + mb + ": " + std::to_string(tally.fetched) + " fetched in " + std::to_string(tally.folders.size()) +
                 " folders, " + std::to_string(tally.checkpoints) + " checkpoints";
            if (!tally.last_checkpoint.empty()) t += " (last " + tally.last_checkpoint + ")";
            t += "\n";
        }
        for (std::size_t i = 0; i < s.summary.errors.size() && i < 20; ++i) t += "  ! " + s.summary.errors[i] + "\n";
        if (s.summary.errors.size() > 20)
            t += "  ... and " + std::to_string(s.summary.errors.size() - 20) + " more (see the log)\n";
    }
    t += "\nExit code " + std::to_string(r.exit_code) + ".\n";
    m.text = t;

    // ---- text/html: one narrow table, inline styles (mail clients drop <style>)
    const std::string td = "style=\"padding:4px 6px;border-bottom:1px solid #ddd;text-align:right\"";
    const std::string tdl = "style=\"padding:4px 6px;border-bottom:1px solid #ddd;text-align:left\"";
    std::string h;
    h += "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"></head>";
    h += "<body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;margin:8px;color:#222\">";
    h += "<p style=\"font-size:20px;font-weight:bold;margin:0 0 4px;color:" + std::string(result_color(verdict == "OK" ? "ok" : verdict == "PARTIAL" ? "partial" : "failed")) +
         "\">" + verdict + "</p>";
    h += "<p style=\"margin:0 0 8px\">mailvault " + html_escape(r.command) + " on " + html_escape(host_name()) + ", started " +
         html_escape(fmt_time(r.started)) + "<br>" + std::to_string(added) + " new, " + std::to_string(dups) + " duplicates, " +
         std::to_string(failed) + " failed in " + html_escape(fmt_seconds(seconds)) + "<br>archive: " +
         std::to_string(r.archive_documents) + " messages</p>";
    h += "<table style=\"border-collapse:collapse;width:100%;max-width:600px\">";
    h += "<tr style=\"background:#f0f0f0\"><th " + tdl + ">source / mailbox</th><th " + td + ">new</th><th " + td +
         ">dupl.</th><th " + td + ">failed</th><th " + td + ">time</th></tr>";
    for (const auto& s : r.sources) {
        h += "<tr><td " + tdl + "><b>" + html_escape(s.source) + "</b> <span style=\"color:" + result_color(s.result) + "\">" +
             html_escape(s.result) + "</span></td><td " + td + ">" + std::to_string(s.summary.added) + "</td><td " + td + ">" +
             std::to_string(s.summary.duplicates) + "</td><td " + td + ">" + std::to_string(s.summary.failed) + "</td><td " + td +
             ">" + html_escape(fmt_seconds(s.summary.seconds)) + "</td></tr>";
        for (const auto& [mb, tally] : s.mailboxes) {
            h += "<tr><td colspan=\"5\" " + tdl + ">&nbsp;&nbsp;" + html_escape(mb) + ": " + std::to_string(tally.fetched) +
                 " fetched, " + std::to_string(tally.folders.size()) + " folders, " + std::to_string(tally.checkpoints) +
                 " checkpoints</td></tr>";
        }
        for (std::size_t i = 0; i < s.summary.errors.size() && i < 20; ++i)
            h += "<tr><td colspan=\"5\" style=\"padding:2px 6px;color:#cf222e;font-size:13px;word-break:break-word\">" +
                 html_escape(s.summary.errors[i]) + "</td></tr>";
    }
    h += "</table><p style=\"color:#666;font-size:12px\">exit code " + std::to_string(r.exit_code) + "</p></body></html>";
    m.html = h;
    return m;
}

void send_run_report(const Context& ctx, const RunReport& r) {
    if (!ctx.config.smtp) return;
    const SourceConfig& raw = *ctx.config.smtp;
    if (raw.get_list("report_recipients", {}).empty()) return;
    auto cfg = ingest::oauth::with_access_token(raw, "smtp", ctx.archive_dir);
    if (!cfg) {
        std::cerr << "mailvault: run report not sent: " << cfg.error().message << "\n";
        return;
    }
    auto settings = ingest::smtp::read_settings(*cfg);
    if (!settings) {
        std::cerr << "mailvault: run report not sent: " << settings.error().message << "\n";
        return;
    }
    auto mail = build_report(r, settings->sender, settings->report_recipients);
    auto out = ingest::smtp::send(*settings, settings->report_recipients, ingest::smtp::build_message(mail));
    if (!out) {
        std::cerr << "mailvault: run report not sent: " << out.error().message << "\n";
        return;
    }
    for (const auto& [rcpt, why] : out->refused)
        std::cerr << "mailvault: run report: recipient <" << rcpt << "> refused: " << why << "\n";
    log_line(ctx, "run report (" + report_verdict(r) + ") sent to " + std::to_string(out->accepted.size()) + " recipient(s): " +
                      out->final_reply);
}

}  // namespace mv::cli
