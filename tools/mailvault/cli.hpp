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
    std::string archive_origin;  // how archive_dir was chosen ("from --archive", ...), for errors
    std::function<int()> run;   // set by the chosen subcommand

    index::ArchiveOptions archive_options() const;
    // Opens the archive; prints the error and returns nullptr on failure (exit code in `code`).
    std::unique_ptr<index::Archive> open_archive(index::OpenMode mode, int& code) const;
};

// The query language, for `search --help` and the man page.
inline constexpr const char* k_query_help =
    "Query language: words and \"phrases\" search subject, body, addresses and attachment names;\n"
    "AND OR NOT XOR in any case (\"a or b\"; quote \"or\" to search the word), -word, word*,\n"
    "( ). Fields: from: to: cc: bcc: subject: body: attachment: mailbox: folder: source:\n"
    "msgid: has:attachment size:1M.. date:2023-05-01 date:2023-04..2023-06 date:7d.\n"
    "Address patterns: from:*@example.org, from:alice@*. State: is:unread is:read\n"
    "is:flagged is:answered is:draft is:deleted is:broken is:removed flag:NAME.\n"
    "Threads: thread:DOCNO, thread:<message-id>. Dates are in the local time zone (TZ,\n"
    "else archive.timezone); add Z for UTC: date:2023-05-01Z. A word: that is no field\n"
    "is searched as text; * alone matches every message; a leading * is an error.";

// Prints "mailvault: <message>" to stderr and maps the error kind to an exit code.
int report(const Error& e);
int exit_code(const Error& e);
// An output that cannot be written (file, directory, stdout): "mailvault: <message>", exit 3.
int report_output(const std::string& message);
void log_line(const Context& ctx, const std::string& line);  // stderr unless --quiet

// Each lives in cmd_<name>.cpp.
void register_import(CLI::App& app, Context& ctx);
void register_sync(CLI::App& app, Context& ctx);       // sync, check, connect
void register_search(CLI::App& app, Context& ctx);     // search, show, link, export, stats, verify
void register_admin(CLI::App& app, Context& ctx);      // passwd, reindex, mail-test, serve
void register_docs(CLI::App& app, Context& ctx);       // man, completion (from the CLI11 definitions)

}  // namespace mv::cli
