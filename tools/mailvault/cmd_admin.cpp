// `mailvault reindex`, `passwd`, `mail-test`, `serve`.
#include <iostream>

#include "tools/mailvault/cli.hpp"

namespace mv::cli {

void register_admin(CLI::App& app, Context& ctx) {
    for (const char* name : {"serve", "mail-test", "passwd", "reindex"}) {
        auto* cmd = app.add_subcommand(name, std::string(name) + " (not available in this version)");
        cmd->allow_extras();
        std::string n = name;
        cmd->callback([&ctx, n] {
            ctx.run = [n]() -> int { return report(make_error(Error::Kind::usage, n + " is not available in this version")); };
        });
    }
}

}  // namespace mv::cli
