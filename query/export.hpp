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

struct ExportProgress {
    std::uint64_t done = 0, total = 0, bytes = 0;
    std::vector<std::string> errors;  // one line per message that could not be exported
};

// Appends `msg` as one mboxrd entry (From_ line, ">*From " lines quoted, blank separator).
void append_mboxrd(std::string& out, std::string_view msg);

// Writes the originals of `docnos` in order; `dest` is the mbox file ("-": stdout) or the
// directory for DOCNO.eml files. One message in memory at a time. `progress` is called
// after every message. Fails only when the destination cannot be written.
Result<ExportProgress> export_messages(const index::Archive& archive, const std::vector<std::uint64_t>& docnos,
                                       ExportFormat format, const std::filesystem::path& dest,
                                       const std::function<void(const ExportProgress&)>& progress);

}  // namespace mv::query
