// `mailvault reindex`, `passwd`, `mail-test`, `serve`.
#include <iostream>

#include "index/reindex.hpp"
#include "tools/mailvault/cli.hpp"

namespace mv::cli {

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
    for (const char* name : {"serve", "mail-test", "passwd"}) {
        auto* cmd = app.add_subcommand(name, std::string(name) + " (not available in this version)");
        cmd->allow_extras();
        std::string n = name;
        cmd->callback([&ctx, n] {
            ctx.run = [n]() -> int { return report(make_error(Error::Kind::usage, n + " is not available in this version")); };
        });
    }
}

}  // namespace mv::cli
