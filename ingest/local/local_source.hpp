#pragma once
// Local files: Maildir trees, mbox files (.gz, .zst), .eml files and directories of them.
#include <filesystem>
#include <string>
#include <vector>

#include "ingest/source.hpp"

namespace mv::ingest {

enum class LocalKind { maildir, mbox, eml, eml_dir, unknown };

// Detects what a path holds (Maildir: cur/ or new/ inside, or Maildir++ sub-folders).
LocalKind detect_local_kind(const std::filesystem::path& path);

struct LocalImportOptions {
    std::string source = "import";
    std::string mailbox;  // empty: derived from the path
    std::string folder;   // empty: derived from the path
};

// One source over several paths, streamed (an mbox of any size is never loaded whole).
Result<std::unique_ptr<Source>> make_local_import(const std::vector<std::filesystem::path>& paths,
                                                  const LocalImportOptions& options);

Result<std::unique_ptr<Source>> make_local_source(const SourceConfig& config, const index::Archive& archive);
Result<std::vector<std::string>> check_local_source(const SourceConfig& config);

}  // namespace mv::ingest
