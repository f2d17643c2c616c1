// `mailvault sync [SOURCE...]`, `check SOURCE`, `connect SOURCE`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <iostream>
#include <mutex>
#include <thread>

#include "ingest/completeness.hpp"
#include "ingest/oauth/delegated.hpp"
#include "ingest/pipeline.hpp"
#include "ingest/source.hpp"
#include "tools/mailvault/cli.hpp"
#include "tools/mailvault/interrupt.hpp"
#include "tools/mailvault/mail.hpp"
#include "tools/mailvault/run_report.hpp"

namespace mv::cli {

namespace {

// `sync --deadline`: `flag` becomes true when Ctrl-C/SIGTERM arrives or the deadline passes; the
// pipeline stops at its next commit point either way.
class DeadlineWatch {
  public:
    DeadlineWatch(const std::atomic<bool>* interrupt, long seconds) : interrupt_(interrupt) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds > 0 ? seconds : 0);
        thread_ = std::thread([this, end, seconds] {
            std::unique_lock lk(mu_);
            while (!done_) {
                if (interrupt_ && interrupt_->load()) flag_ = true;
                if (seconds > 0 && std::chrono::steady_clock::now() >= end) flag_ = passed_ = true;
                cv_.wait_for(lk, std::chrono::milliseconds(50));
            }
        });
    }
    ~DeadlineWatch() {
        {
            std::lock_guard lk(mu_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    const std::atomic<bool>* flag() const { return &flag_; }
    bool passed() const { return passed_.load(); }

  private:
    const std::atomic<bool>* interrupt_;
    std::atomic<bool> flag_{false}, passed_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

int run_sync(Context& ctx, const std::vector<std::string>& names, const std::string& deadline_flag) {
    std::vector<const SourceConfig*> chosen;
    if (names.empty()) {
        for (const auto& s : ctx.config.sources) chosen.push_back(&s);
        if (chosen.empty())
            return report(make_error(Error::Kind::usage, "no [[source]] in the configuration" +
                                                             (ctx.config.file.empty() ? std::string(" (no config file; use --config)")
                                                                                      : " " + ctx.config.file.string())));
    } else {
        for (const auto& n : names) {
            const SourceConfig* s = ctx.config.source(n);
            if (!s) return report(make_error(Error::Kind::usage, "no source named '" + n + "' in the configuration"));
            chosen.push_back(s);
        }
    }
    // Everything that can be checked without a server is checked before the archive is created.
    const std::string deadline_text = deadline_flag.empty() ? ctx.config.sync_deadline : deadline_flag;
    long deadline_s = 0;
    if (!deadline_text.empty()) {
        auto d = parse_duration_seconds(deadline_text);
        if (!d) return report(make_error(Error::Kind::usage, "--deadline: " + d.error().message));
        deadline_s = *d;
    }
    for (const SourceConfig* sc : chosen)
        if (auto ok = sc->check_secrets(); !ok)
            return report(make_error(Error::Kind::usage, (ctx.config.file.empty() ? std::string() : ctx.config.file.string() + ": ") +
                                                             ok.error().message));
    int code = 0;
    auto archive = ctx.open_archive(index::OpenMode::write, code);
    if (!archive) return code;
    int ok_sources = 0, failed_sources = 0, partial_sources = 0;
    std::uint64_t added_total = 0;
    InterruptGuard interrupt(ctx.quiet);
    DeadlineWatch deadline(interrupt.flag(), deadline_s);
    std::vector<std::string> left;  // what the deadline left for the next sync
    RunReport run{"sync", ctx.archive_dir.string(), static_cast<std::int64_t>(std::time(nullptr)), {}, 0, 0};
    for (const SourceConfig* sc_raw : chosen) {
        if (interrupt.interrupted()) break;  // sources not started are left for the next sync
        if (deadline.passed()) {
            left.push_back(sc_raw->name + " (not started)");
            continue;
        }
        // auth = "xoauth2" with a stored sign-in or app credentials: a fresh access token first.
        auto with_token = ingest::oauth::with_access_token(*sc_raw, sc_raw->type, ctx.archive_dir);
        const SourceConfig* sc = with_token ? &*with_token : sc_raw;
        auto source = with_token ? ingest::make_source(*sc, *archive) : fail(with_token.error());
        run.sources.push_back({sc->name, "failed", {}, {}});
        if (!source) {
            std::cerr << "mailvault: " << source.error().message << "\n";
            ingest::ImportSummary empty;
            empty.errors.push_back(source.error().message);
            record_last_sync(*archive, sc->name, "failed", empty);
            run.sources.back().summary = empty;
            ++failed_sources;
            if (source.error().kind == Error::Kind::usage && chosen.size() == 1) return k_usage;
            continue;
        }
        ingest::PipelineOptions po;
        po.stop = deadline.flag();  // Ctrl-C, SIGTERM or the deadline
        po.limits.attachment_text = ctx.config.attachment_text;  // [index] attachment_text
        ingest::CompletenessTally completeness;
        po.on_message = [&completeness](const index::Location& where, ingest::MessageFate fate, const std::string& why) {
            completeness.on_message(where, fate, why);
        };
        TallyingSource tallied(**source, run.sources.back().mailboxes);
        auto summary = ingest::run_pipeline(*archive, tallied, po, make_progress(ctx, sc->name));
        const auto folders = completeness.records((*source)->folder_tallies());
        if (!summary) {
            std::cerr << "mailvault: " << sc->name << ": " << summary.error().message << "\n";
            ingest::ImportSummary empty;
            empty.errors.push_back(summary.error().message);
            record_last_sync(*archive, sc->name, "failed", empty, &folders);
            run.sources.back().summary = empty;
            ++failed_sources;
            continue;
        }
        for (const auto& e : summary->errors) std::cerr << "mailvault: " << e << "\n";
        if (const auto& rep = (*source)->report(); rep.skipped && !ctx.quiet) {  // local files that are not mail
            for (std::size_t i = 0; i < rep.skips.size() && i < 20; ++i) std::cerr << "mailvault: skipped " << rep.skips[i] << "\n";
            std::cerr << sc->name << ": " << rep.skipped << " skipped (not mail, or already read)\n";
        }
        const bool unreachable = (*source)->report().unreachable;
        std::string result = unreachable && summary->seen == 0 ? "failed" : (summary->failed || unreachable) ? "partial" : "ok";
        if (summary->interrupted) result = deadline.passed() && !interrupt.interrupted() ? "deadline" : "interrupted";
        if (result == "deadline") left.push_back(sc->name + " (stopped after " + std::to_string(summary->seen) + " messages)");
        // Completeness: a run that left out any listed message (failed, still to fetch, a folder
        // never listed) is not a success, whatever the counts above say; the summary names them.
        const auto skipped = ingest::skipped_lines(folders);
        if (result == "ok" && !skipped.empty()) result = "partial";
        for (std::size_t i = 0; i < skipped.size() && i < 20; ++i)
            std::cerr << "mailvault: " << sc->name << ": skipped " << skipped[i] << "\n";
        if (skipped.size() > 20) std::cerr << "mailvault: " << sc->name << ": skipped in " << skipped.size() - 20 << " more folders (see stats)\n";
        record_last_sync(*archive, sc->name, result, *summary, &folders);
        run.sources.back().result = result;
        run.sources.back().summary = *summary;
        added_total += summary->added;
        if (!ctx.quiet) std::cerr << summary_line(sc->name, *summary) << "\n";
        if (result == "interrupted" || result == "deadline") ++partial_sources;
        else if (result == "failed") ++failed_sources;
        else if (result == "partial") ++partial_sources;
        else ++ok_sources;
    }
    if (interrupt.interrupted()) {
        std::cerr << "mailvault: sync interrupted; what was read is archived, the next sync continues\n";
        return k_interrupted;
    }
    if (!left.empty()) {
        std::string what;
        for (const auto& l : left) what += (what.empty() ? "" : ", ") + l;
        std::cerr << "mailvault: deadline " << deadline_text << " reached; stopped at a commit point; left for the next sync: "
                  << what << "\n";
        partial_sources += static_cast<int>(left.size()) - static_cast<int>(std::count_if(left.begin(), left.end(), [](const std::string& l) {
                               return l.find("(stopped after") != std::string::npos;
                           }));
    }
    if (deadline.passed()) {  // the remaining time belongs to office hours: no compaction
        run.archive_documents = archive->document_count();
        run.exit_code = k_partial;
        send_run_report(ctx, run);
        return k_partial;
    }
    maybe_compact(ctx, *archive, added_total);
    int exit = failed_sources == static_cast<int>(chosen.size()) ? k_nothing : failed_sources + partial_sources > 0 ? k_partial : k_ok;
    run.archive_documents = archive->document_count();
    run.exit_code = exit;
    send_run_report(ctx, run);  // logged on failure; never changes `exit`
    return exit;
}

}  // namespace

void register_sync(CLI::App& app, Context& ctx) {
    auto names = std::make_shared<std::vector<std::string>>();
    auto* sync = app.add_subcommand("sync", "incremental fetch from configured sources (all if none named)");
    auto deadline = std::make_shared<std::string>();
    sync->add_option("sources", *names, "source names");
    sync->add_option("--deadline", *deadline,
                     "stop at the next commit point after DURATION (e.g. 2h, 90m, 3600s; default [sync] deadline); exit 1, "
                     "the next sync continues");
    sync->callback([&ctx, names, deadline] { ctx.run = [&ctx, names, deadline] { return run_sync(ctx, *names, *deadline); }; });

    auto check_name = std::make_shared<std::string>();
    auto* check = app.add_subcommand("check", "connection and credential test of one source");
    check->add_option("source", *check_name, "source name")->required();
    check->callback([&ctx, check_name] {
        ctx.run = [&ctx, check_name]() -> int {
            const SourceConfig* sc = ctx.config.source(*check_name);
            if (!sc) return report(make_error(Error::Kind::usage, "no source named '" + *check_name + "' in the configuration"));
            auto with_token = ingest::oauth::with_access_token(*sc, sc->type, ctx.archive_dir);
            auto lines = with_token ? ingest::check_source(*with_token) : fail(with_token.error());
            if (!lines) {
                std::cerr << "mailvault: " << lines.error().message << "\n";
                return lines.error().kind == Error::Kind::usage ? k_usage : k_nothing;
            }
            for (const auto& l : *lines) std::cout << l << "\n";
            return k_ok;
        };
    });

    register_connect(app, ctx);  // cmd_connect.cpp
}

}  // namespace mv::cli
