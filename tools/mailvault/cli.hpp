#pragma once
// Shared state of the mailvault command line; each command registers itself from its own file.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "index/archive.hpp"
#include "index/config/config.hpp"
#include "index/util/result.hpp"

namespace mv::cli {

enum Exit : int { k_ok = 0, k_partial = 1, k_usage = 2, k_nothing = 3 };

struct Context {
    std::string archive_flag;   // --archive
    std::string config_flag;    // --config
    bool quiet = false;
    bool tty = false;           // stderr is a terminal: progress lines
    Config config;              // defaults when no file
    std::filesystem::path archive_dir;
    std::function<int()> run;   // set by the chosen subcommand

    index::ArchiveOptions archive_options() const;
    // Opens the archive; prints the error and returns nullptr on failure (exit code in `code`).
    std::unique_ptr<index::Archive> open_archive(index::OpenMode mode, int& code) const;
};

// Prints "mailvault: <message>" to stderr and maps the error kind to an exit code.
int report(const Error& e);
int exit_code(const Error& e);
void log_line(const Context& ctx, const std::string& line);  // stderr unless --quiet

// Each lives in cmd_<name>.cpp.
void register_import(CLI::App& app, Context& ctx);
void register_sync(CLI::App& app, Context& ctx);       // sync, check, connect
void register_search(CLI::App& app, Context& ctx);     // search, show, link, export, stats, verify
void register_admin(CLI::App& app, Context& ctx);      // passwd, reindex, mail-test, serve

}  // namespace mv::cli
