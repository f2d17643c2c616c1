// `mailvault reindex`, `passwd`, `mail-test`, `serve`.
#include <iostream>

#include "index/reindex.hpp"
#include "tools/mailvault/cli.hpp"
#include "tools/mailvault/mail.hpp"

namespace mv::cli {

// The web side's commands (cmd_serve.cpp, cmd_web_admin.cpp), registered with the admin ones.
void register_serve(CLI::App& app, Context& ctx);
void register_web_admin(CLI::App& app, Context& ctx);

void register_admin(CLI::App& app, Context& ctx) {
    auto* reindex = app.add_subcommand("reindex", "rebuild the index from the stored originals (docnos kept)");
    reindex->callback([&ctx] {
        ctx.run = [&ctx]() -> int {
            auto r = index::reindex(ctx.archive_dir, [&ctx](std::uint64_t n) {
                if (ctx.tty) std::cerr << "\rreindex: " << n << " messages" << std::flush;
            });
            if (ctx.tty) std::cerr << "\n";
            if (!r) return report(r.error());
            if (!ctx.quiet)
                std::cerr << "reindex: " << r->documents << " messages, " << r->locations << " further locations, "
                          << r->damaged << " damaged originals skipped"
                          << (r->merged ? ", " + std::to_string(r->merged) + " stored twice merged" : "")
                          << (r->renumbered ? ", " + std::to_string(r->renumbered) + " given a new docno" : "") << "\n";
            if (!r->compact_error.empty())
                std::cerr << "mailvault: " << r->compact_error << " (the rebuilt index is installed uncompacted)\n";
            // What could not be rebuilt, by docno, on stdout (always, also with --quiet).
            for (const auto& [docno, why] : r->damaged_docnos)
                std::cout << "not rebuilt " << docno << ": original damaged (" << why << ")\n";
            for (const auto& u : r->unreadable) std::cout << "unreadable: " << u << "\n";
            for (auto d : r->lost_docnos) std::cout << "not rebuilt " << d << ": no intact record of its original\n";
            std::cout << std::flush;
            if (!r->complete())
                std::cerr << "reindex: " << r->damaged_docnos.size() + r->lost_docnos.size()
                          << " messages could not be rebuilt from their originals (listed above; restore the originals/ "
                             "pack files from a backup and run reindex again)\n";
            return r->complete() ? k_ok : k_partial;
        };
    });
    register_serve(app, ctx);
    register_web_admin(app, ctx);
    register_mail_test(app, ctx);  // cmd_mailtest.cpp
}

}  // namespace mv::cli
