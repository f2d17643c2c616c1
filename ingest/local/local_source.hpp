#pragma once
// Local files: Maildir trees, mbox files (.gz, .zst), .eml files and directories of them.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/source.hpp"

namespace mv::ingest {

// eml: one message; eml_dir: a directory without Maildir folders; not_mail: a file whose
// content is no mail (empty, binary, an index, no header at its start).
enum class LocalKind { maildir, mbox, eml, eml_dir, not_mail, unknown };

// How mbox bodies quote "From " lines. auto_detect: mboxrd when the file holds a line
// starting ">>From " (two or more '>'), else mboxo (nothing unquoted: what mutt, Python's
// mailbox and Thunderbird write and read back). mboxcl2: Content-Length delimits, no quoting.
enum class MboxFormat { auto_detect, mboxo, mboxrd, mboxcl2 };

// Directory symlinks and file symlinks: followed only to a place inside the tree given
// (inside_tree), or anywhere (follow). Every directory is read once either way.
enum class SymlinkPolicy { inside_tree, follow };

// Detects what a path holds BY CONTENT (Maildir: cur/ or new/ inside, or Maildir++ sub-folders;
// files: "From " line = mbox, a header line = eml, gzip/zstd looked into).
LocalKind detect_local_kind(const std::filesystem::path& path);

// "auto", "mboxo", "mboxrd", "mboxcl2".
Result<MboxFormat> parse_mbox_format(std::string_view name);

// The format auto_detect picks for this (possibly compressed) mbox file.
Result<MboxFormat> detect_mbox_format(const std::filesystem::path& path);

struct LocalImportOptions {
    std::string source = "import";
    std::string mailbox;  // empty: derived from the path
    std::string folder;   // empty: derived from the path
    MboxFormat mbox_format = MboxFormat::auto_detect;
    SymlinkPolicy symlinks = SymlinkPolicy::inside_tree;
};

// One source over several paths, streamed (an mbox of any size is never loaded whole).
// Files that are not mail inside directories are skipped (report().skipped/skips); named
// on the command line they count as failed.
Result<std::unique_ptr<Source>> make_local_import(const std::vector<std::filesystem::path>& paths,
                                                  const LocalImportOptions& options);

Result<std::unique_ptr<Source>> make_local_source(const SourceConfig& config, const index::Archive& archive);
Result<std::vector<std::string>> check_local_source(const SourceConfig& config);

}  // namespace mv::ingest
