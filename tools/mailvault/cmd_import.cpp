// `mailvault import PATH... [--mailbox M] [--folder F]`
#include <ctime>
#include <iostream>

#include "ingest/local/local_source.hpp"
#include "ingest/pipeline.hpp"
#include "tools/mailvault/cli.hpp"
#include "tools/mailvault/interrupt.hpp"
#include "tools/mailvault/mail.hpp"
#include "tools/mailvault/run_report.hpp"

namespace mv::cli {

void register_import(CLI::App& app, Context& ctx) {
    struct Args {
        std::vector<std::string> paths;
        std::string mailbox, folder;
        std::string mbox_format = "auto";
        bool follow_symlinks = false;
        unsigned threads = 0;
        bool report = false;  // mail the run report (smtp.report_recipients)
    };
    auto args = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("import", "import Maildir trees, mbox files (.gz/.zst), .eml files or directories");
    cmd->add_option("paths", args->paths, "what to import")->required();
    cmd->add_option("--mailbox", args->mailbox, "mailbox label (default: from the path)");
    cmd->add_option("--folder", args->folder, "folder label (default: from the path)");
    cmd->add_option("--threads", args->threads, "worker threads (default: all cores)");
    cmd->add_flag("--report", args->report, "mail the run report to smtp.report_recipients");
    cmd->add_option("--mbox-format", args->mbox_format, "auto (default), mboxo, mboxrd or mboxcl2");
    cmd->add_flag("--follow-symlinks", args->follow_symlinks, "follow symlinks that lead out of the tree given");
    cmd->callback([&ctx, args] {
        ctx.run = [&ctx, args]() -> int {
            std::vector<std::filesystem::path> paths(args->paths.begin(), args->paths.end());
            ingest::LocalImportOptions o;
            o.mailbox = args->mailbox;
            o.folder = args->folder;
            auto format = ingest::parse_mbox_format(args->mbox_format);
            if (!format) return report(format.error());
            o.mbox_format = *format;
            o.symlinks = args->follow_symlinks ? ingest::SymlinkPolicy::follow : ingest::SymlinkPolicy::inside_tree;
            auto source = ingest::make_local_import(paths, o);
            if (!source) return report(source.error());
            int code = 0;
            auto archive = ctx.open_archive(index::OpenMode::write, code);
            if (!archive) return code;
            ingest::PipelineOptions po;
            po.threads = args->threads;
            po.limits.attachment_text = ctx.config.attachment_text;  // [index] attachment_text
            InterruptGuard interrupt(ctx.quiet);
            po.stop = interrupt.flag();
            auto summary = ingest::run_pipeline(*archive, **source, po, make_progress(ctx, "import"));
            if (!summary) {
                const int failed = report(summary.error());
                return interrupt.interrupted() ? k_interrupted : failed;
            }
            for (const auto& e : summary->errors) std::cerr << "mailvault: " << e << "\n";
            if (const auto& rep = (*source)->report(); rep.skipped && !ctx.quiet) {  // local files that are not mail
                for (std::size_t i = 0; i < rep.skips.size() && i < 20; ++i) std::cerr << "mailvault: skipped " << rep.skips[i] << "\n";
                std::cerr << "import: " << rep.skipped << " skipped (not mail, or already read)\n";
            }
            std::string result = summary->interrupted ? "interrupted" : summary->failed ? "partial" : "ok";
            record_last_sync(*archive, "import", result, *summary);
            if (!summary->interrupted) maybe_compact(ctx, *archive, summary->added);
            if (!ctx.quiet) std::cerr << summary_line("import", *summary) << "\n";
            if (summary->interrupted) {
                // Printed even with --quiet: the run did not do all it was asked to.
                std::cerr << "mailvault: import interrupted; what was read is archived, run it again to continue\n";
                return k_interrupted;
            }
            int exit = summary->failed && summary->added + summary->duplicates == 0 ? k_nothing : summary->failed ? k_partial : k_ok;
            if (args->report)
                send_run_report(ctx, RunReport{"import", ctx.archive_dir.string(), static_cast<std::int64_t>(std::time(nullptr) - summary->seconds),
                                               {SourceRun{"import", exit == k_nothing ? "failed" : result, *summary, {}}},
                                               archive->document_count(), exit});
            return exit;
        };
    });
}

}  // namespace mv::cli
