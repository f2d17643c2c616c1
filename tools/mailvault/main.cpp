// mailvault: the command line. Thin: parsing, context, exit codes; the work is in the layers.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "index/mime/parser.hpp"
#include "ingest/net/account.hpp"
#include "tools/mailvault/cli.hpp"

namespace mv::cli {

index::ArchiveOptions Context::archive_options() const {
    index::ArchiveOptions o;
    o.stemmer = config.stemmer;
    return o;
}

std::unique_ptr<index::Archive> Context::open_archive(index::OpenMode mode, int& code) const {
    auto a = index::Archive::open(archive_dir, mode, archive_options());
    if (!a) {
        code = report(a.error());
        return nullptr;
    }
    code = k_ok;
    return std::move(*a);
}

int exit_code(const Error& e) {
    switch (e.kind) {
        case Error::Kind::usage: return k_usage;
        case Error::Kind::unreachable:
        case Error::Kind::auth:
        case Error::Kind::locked:
        case Error::Kind::not_found: return k_nothing;
        default: return k_partial;
    }
}

int report(const Error& e) {
    std::cerr << "mailvault: " << e.message << "\n";
    return exit_code(e);
}

void log_line(const Context& ctx, const std::string& line) {
    if (!ctx.quiet) std::cerr << line << "\n";
}

}  // namespace mv::cli

int main(int argc, char** argv) {
    using namespace mv::cli;
    ::umask(077);  // the archive, its index and originals are the owner's alone, whatever the caller's umask
    Context ctx;
    CLI::App app{"mailvault: a batch mail archive with full-text search"};
    app.require_subcommand(1);
    app.add_option("--archive", ctx.archive_flag, "archive directory");
    app.add_option("--config", ctx.config_flag, "configuration file (TOML)");
    app.add_flag("--quiet,-q", ctx.quiet, "no progress or log lines");
    register_import(app, ctx);
    register_sync(app, ctx);
    register_search(app, ctx);
    register_admin(app, ctx);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : k_usage;
    }
    ctx.tty = isatty(STDERR_FILENO) && !ctx.quiet;
    mv::ingest::net::set_log_sink([&ctx](const std::string& line) { log_line(ctx, line); });

    // Archive: --archive, $MAILVAULT_ARCHIVE, config archive.path, ./archive.
    std::filesystem::path archive;
    if (!ctx.archive_flag.empty()) archive = ctx.archive_flag;
    else if (const char* env = std::getenv("MAILVAULT_ARCHIVE"); env && *env) archive = env;
    std::filesystem::path config_file = ctx.config_flag;
    std::error_code no_access;  // an archive of another user: Archive::open says "permission denied"
    if (config_file.empty() && !archive.empty() && std::filesystem::exists(archive / "mailvault.toml", no_access))
        config_file = archive / "mailvault.toml";
    if (!config_file.empty()) {
        auto c = mv::load_config(config_file);
        if (!c) return report(c.error());
        ctx.config = std::move(*c);
    }
    if (archive.empty() && !ctx.config.archive_path.empty()) {
        archive = ctx.config.archive_path;
        if (archive.is_relative() && !config_file.empty()) archive = config_file.parent_path() / archive;
    }
    if (archive.empty()) archive = "archive";
    ctx.archive_dir = archive;
    if (ctx.config.file.empty() && std::filesystem::exists(archive / "mailvault.toml", no_access)) {
        auto c = mv::load_config(archive / "mailvault.toml");
        if (!c) return report(c.error());
        ctx.config = std::move(*c);
    }
    mv::index::init_mime();
    return ctx.run ? ctx.run() : k_usage;
}
