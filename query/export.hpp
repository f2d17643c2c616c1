#pragma once
// `export`: originals of matches to an mboxrd file or a directory of .eml files, streamed.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "index/archive.hpp"

namespace mv::query {

enum class ExportFormat { mbox, eml };

// An export never overwrites a file unless told to (`export --force`).
enum class ExistingFiles { refuse, replace };

struct ExportProgress {
    std::uint64_t done = 0, total = 0, bytes = 0;
    std::vector<std::string> errors;  // one line per message that could not be exported
};

// The envelope sender of a From_ line: the Return-Path address ("<>": MAILER-DAEMON), else
// the From address, else MAILER-DAEMON; never holds white space.
std::string envelope_sender(std::string_view msg);

// "From sender Thu Jan  1 00:00:00 1970" (asctime, UTC), without the line end.
std::string from_line(std::string_view msg, std::int64_t date);

// Appends `msg` as one mboxrd entry (From_ line of from_line(msg, date), ">*From " lines
// quoted, blank separator).
void append_mboxrd(std::string& out, std::string_view msg, std::int64_t date);

// Writes the originals of `docnos` in order; `dest` is the mbox file ("-": stdout) or the
// directory for DOCNO.eml files. One message in memory at a time. `progress` is called
// after every message. Fails only when the destination cannot be written, or (refuse) when
// the mbox file or one of the .eml files exists already — checked before anything is written.
// The mbox appears whole or not at all (written to a temporary file, then linked in place).
Result<ExportProgress> export_messages(const index::Archive& archive, const std::vector<std::uint64_t>& docnos,
                                       ExportFormat format, const std::filesystem::path& dest,
                                       const std::function<void(const ExportProgress&)>& progress,
                                       ExistingFiles existing = ExistingFiles::refuse);

}  // namespace mv::query
