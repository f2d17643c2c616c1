// mailvault: the command line. Thin: parsing, context, exit codes; the work is in the layers.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "index/mime/parser.hpp"
#include "index/util/edit_distance.hpp"
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
        Error e = a.error();
        if (mode == index::OpenMode::read && e.kind == Error::Kind::not_found &&
            !std::filesystem::exists(archive_dir / "FORMAT"))
            e.message = "no archive at " + archive_dir.string() + " (" + archive_origin +
                        "); choose one with --archive DIR, $MAILVAULT_ARCHIVE or archive.path in mailvault.toml, "
                        "or create it with `mailvault import PATH`";
        code = report(e);
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

namespace {
// On a terminal a progress line may be standing on stderr: clear it first, so a log or error
// line never runs into it (the next progress update draws it again below).
const char* line_start() {
    static const bool tty = isatty(STDERR_FILENO);
    return tty ? "\r\033[K" : "";
}
}  // namespace

int report(const Error& e) {
    std::cerr << line_start() << "mailvault: " << e.message << "\n";
    return exit_code(e);
}

int report_output(const std::string& message) {
    std::cerr << line_start() << "mailvault: " << message << "\n";
    return k_nothing;
}

void log_line(const Context& ctx, const std::string& line) {
    if (!ctx.quiet) std::cerr << line_start() << line << "\n";
}

namespace {

bool is_global_with_value(const std::string& a) { return a == "--archive" || a == "--config"; }
bool is_global_flag(const std::string& a) {
    return a == "--quiet" || a == "-q" || a.rfind("--archive=", 0) == 0 || a.rfind("--config=", 0) == 0;
}

// `mailvault search x --archive A` == `mailvault --archive A search x`: global options after
// the command move in front of it (not after "--").
std::vector<std::string> hoist_global_options(std::vector<std::string> args, std::size_t& command) {
    std::size_t i = 0;
    while (i < args.size()) {
        if (is_global_with_value(args[i])) i += 2;
        else if (is_global_flag(args[i])) ++i;
        else break;
    }
    command = i;
    if (i >= args.size() || args[i].empty() || args[i][0] == '-') return args;
    std::vector<std::string> globals(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(i)), rest;
    rest.push_back(args[i]);
    bool after_dashes = false;
    for (std::size_t j = i + 1; j < args.size(); ++j) {
        const std::string& a = args[j];
        if (a == "--") after_dashes = true;
        if (!after_dashes && is_global_with_value(a) && j + 1 < args.size()) {
            globals.push_back(a);
            globals.push_back(args[++j]);
        } else if (!after_dashes && is_global_flag(a)) {
            globals.push_back(a);
        } else {
            rest.push_back(a);
        }
    }
    command = globals.size();
    globals.insert(globals.end(), rest.begin(), rest.end());
    return globals;
}

// The configuration file: --config, else ARCHIVE/mailvault.toml, ./mailvault.toml,
// $XDG_CONFIG_HOME/mailvault/mailvault.toml (default ~/.config); the first that exists.
std::filesystem::path find_config(const Context& ctx, const std::filesystem::path& archive) {
    namespace fs = std::filesystem;
    if (!ctx.config_flag.empty()) return ctx.config_flag;
    std::vector<fs::path> candidates;
    if (!archive.empty()) candidates.push_back(archive / "mailvault.toml");
    candidates.push_back("mailvault.toml");
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        candidates.push_back(fs::path(xdg) / "mailvault" / "mailvault.toml");
    else if (const char* home = std::getenv("HOME"); home && *home)
        candidates.push_back(fs::path(home) / ".config" / "mailvault" / "mailvault.toml");
    std::error_code ec;
    for (const auto& c : candidates)
        if (fs::is_regular_file(c, ec)) return c;
    return {};
}

// [archive] timezone applies when TZ is not set; a name the system does not know is an error
// (glibc would silently use UTC).
Result<void> apply_timezone(const Config& config) {
    if (config.timezone.empty()) return ok();
    if (const char* tz = std::getenv("TZ"); tz && *tz) return ok();
    const std::string& tz = config.timezone;
    const bool posix_rule = tz.find_first_of("0123456789") != std::string::npos;  // "CET-1CEST,M3.5.0,M10.5.0/3"
    std::error_code ec;
    if (!posix_rule && tz != "UTC" && !std::filesystem::is_regular_file(std::filesystem::path("/usr/share/zoneinfo") / tz, ec))
        return fail(Error::Kind::usage, config.file.string() + ": archive.timezone: unknown time zone \"" + tz +
                                            "\" (a name like Europe/Berlin, see /usr/share/zoneinfo)");
    setenv("TZ", tz.c_str(), 1);
    tzset();
    return ok();
}

}  // namespace

}  // namespace mv::cli

int main(int argc, char** argv) {
    using namespace mv::cli;
    ::umask(077);  // the archive, its index and originals are the owner's alone, whatever the caller's umask
    Context ctx;
    CLI::App app{"mailvault: a batch mail archive with full-text search", "mailvault"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "mailvault " MV_VERSION);
    app.add_option("--archive", ctx.archive_flag,
                   "archive directory (default: $MAILVAULT_ARCHIVE, archive.path of the config, ./archive)");
    app.add_option("--config", ctx.config_flag,
                   "configuration file (default: ARCHIVE/mailvault.toml, ./mailvault.toml, "
                   "$XDG_CONFIG_HOME/mailvault/mailvault.toml)");
    app.add_flag("--quiet,-q", ctx.quiet, "no progress or log lines");
    app.footer("Global options may also follow the command. `mailvault COMMAND --help` describes a command.");
    app.failure_message([](const CLI::App* a, const CLI::Error& e) {
        std::string where;
        for (const auto* sub : a->get_subcommands()) where = sub->get_name() + ": ";
        std::string msg = e.what();
        if (!msg.empty()) msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
        return "mailvault: " + where + msg + " (see mailvault " + (where.empty() ? "" : where.substr(0, where.size() - 2) + " ") +
               "--help)\n";
    });
    register_import(app, ctx);
    register_sync(app, ctx);
    register_search(app, ctx);
    register_admin(app, ctx);
    register_docs(app, ctx);

    std::size_t command = 0;
    std::vector<std::string> args = hoist_global_options(std::vector<std::string>(argv + 1, argv + argc), command);
    if (command < args.size() && !args[command].empty() && args[command][0] != '-') {
        const std::string& name = args[command];
        std::vector<std::string> names;
        for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
        if (std::find(names.begin(), names.end(), name) == names.end()) {
            std::string hint;
            for (const auto& n : names)
                if (mv::close_to(name, n) || (name.size() >= 3 && n.rfind(name, 0) == 0)) hint = n;
            std::string list;
            for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
            std::cerr << "mailvault: unknown command '" << name << "' "
                      << (hint.empty() ? "(commands: " + list + ")" : "(did you mean " + hint + "?)") << "\n";
            return k_usage;
        }
    }
    std::vector<char*> cargv{argv[0]};
    for (auto& a : args) cargv.push_back(a.data());
    try {
        app.parse(static_cast<int>(cargv.size()), cargv.data());
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : k_usage;
    }
    ctx.tty = isatty(STDERR_FILENO) && !ctx.quiet;
    mv::ingest::net::set_log_sink([&ctx](const std::string& line) { log_line(ctx, line); });

    // Archive: --archive, $MAILVAULT_ARCHIVE, config archive.path, ./archive.
    std::filesystem::path archive;
    if (!ctx.archive_flag.empty()) {
        archive = ctx.archive_flag;
        ctx.archive_origin = "from --archive";
    } else if (const char* env = std::getenv("MAILVAULT_ARCHIVE"); env && *env) {
        archive = env;
        ctx.archive_origin = "from $MAILVAULT_ARCHIVE";
    }
    std::filesystem::path config_file = find_config(ctx, archive);
    std::error_code no_access;  // an archive of another user: Archive::open says "permission denied"
    if (!config_file.empty()) {
        auto c = mv::load_config(config_file);
        if (!c) return report(c.error());
        ctx.config = std::move(*c);
    }
    if (archive.empty() && !ctx.config.archive_path.empty()) {
        archive = ctx.config.archive_path;
        if (archive.is_relative() && !config_file.empty()) archive = config_file.parent_path() / archive;
        ctx.archive_origin = "archive.path of " + config_file.string();
    }
    if (archive.empty()) {
        archive = "archive";
        ctx.archive_origin = "the default, ./archive";
    }
    ctx.archive_dir = archive;
    if (ctx.config.file.empty() && std::filesystem::exists(archive / "mailvault.toml", no_access)) {
        auto c = mv::load_config(archive / "mailvault.toml");
        if (!c) return report(c.error());
        ctx.config = std::move(*c);
    }
    if (auto tz = apply_timezone(ctx.config); !tz) return report(tz.error());
    mv::index::init_mime();
    return ctx.run ? ctx.run() : k_usage;
}
