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
            return r->damaged ? k_partial : k_ok;
        };
    });
    register_serve(app, ctx);
    register_web_admin(app, ctx);
    register_mail_test(app, ctx);  // cmd_mailtest.cpp
}

}  // namespace mv::cli
