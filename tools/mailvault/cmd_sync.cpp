// `mailvault sync [SOURCE...]`, `check SOURCE`, `connect SOURCE`.
#include <iostream>

#include <ctime>

#include "ingest/oauth/delegated.hpp"
#include "ingest/pipeline.hpp"
#include "ingest/source.hpp"
#include "tools/mailvault/cli.hpp"
#include "tools/mailvault/interrupt.hpp"
#include "tools/mailvault/mail.hpp"
#include "tools/mailvault/run_report.hpp"

namespace mv::cli {

namespace {

int run_sync(Context& ctx, const std::vector<std::string>& names) {
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
    int code = 0;
    auto archive = ctx.open_archive(index::OpenMode::write, code);
    if (!archive) return code;
    int ok_sources = 0, failed_sources = 0, partial_sources = 0;
    std::uint64_t added_total = 0;
    InterruptGuard interrupt(ctx.quiet);
    RunReport run{"sync", ctx.archive_dir.string(), static_cast<std::int64_t>(std::time(nullptr)), {}, 0, 0};
    for (const SourceConfig* sc_raw : chosen) {
        if (interrupt.interrupted()) break;  // sources not started are left for the next sync
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
        po.stop = interrupt.flag();
        TallyingSource tallied(**source, run.sources.back().mailboxes);
        auto summary = ingest::run_pipeline(*archive, tallied, po, make_progress(ctx, sc->name));
        if (!summary) {
            std::cerr << "mailvault: " << sc->name << ": " << summary.error().message << "\n";
            ingest::ImportSummary empty;
            empty.errors.push_back(summary.error().message);
            record_last_sync(*archive, sc->name, "failed", empty);
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
        if (summary->interrupted) result = "interrupted";
        record_last_sync(*archive, sc->name, result, *summary);
        run.sources.back().result = result;
        run.sources.back().summary = *summary;
        added_total += summary->added;
        if (!ctx.quiet) std::cerr << summary_line(sc->name, *summary) << "\n";
        if (result == "interrupted") ++partial_sources;
        else if (result == "failed") ++failed_sources;
        else if (result == "partial") ++partial_sources;
        else ++ok_sources;
    }
    if (interrupt.interrupted()) {
        std::cerr << "mailvault: sync interrupted; what was read is archived, the next sync continues\n";
        return k_interrupted;
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
    sync->add_option("sources", *names, "source names");
    sync->callback([&ctx, names] { ctx.run = [&ctx, names] { return run_sync(ctx, *names); }; });

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
