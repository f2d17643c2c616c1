#pragma once
// `export`: originals of matches to an mboxrd file or a directory of .eml files, or their
// decoded attachments to a directory with a manifest; streamed.
#include <atomic>
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

// ---- attachments: `export QUERY --attachments DIR [--type GLOB] [--name GLOB]` ----

// Bytes of a safe file name (before the "{docno}-{n}-" prefix): 255 (NAME_MAX) minus room for
// the prefix and the temporary name's suffix.
inline constexpr std::size_t k_max_safe_name = 200;

// A file name from a mail made safe to create inside a directory: its last path component
// ('/' and '\\' both separate), no drive letter ("C:"), control, bidi-override or Windows-reserved
// characters (<>:"|?*) replaced by '_', no leading dots or spaces, no trailing dots or
// spaces, a device name (CON, NUL, COM1, ...) prefixed with '_', at most `max_bytes` bytes
// cut on a UTF-8 boundary keeping a short extension; empty: "attachment" plus an extension
// from `content_type` ("application/pdf" -> ".pdf"). Never empty, never "." or "..".
std::string safe_file_name(std::string_view name, std::string_view content_type,
                           std::size_t max_bytes = k_max_safe_name);

// "{docno}-{n}-{safe_file_name(name, content_type)}": the name export --attachments and the
// web's attachments.zip give attachment `n` (numbered as `show --attachment N`) of `docno`.
std::string attachment_file_name(std::uint64_t docno, std::size_t n, std::string_view name,
                                 std::string_view content_type);

// --type and --name. Globs (fnmatch: * ? [...]) compared after text::fold (case and
// accents ignored). A --type glob with '/' matches the MIME type ("application/pdf",
// "*/pdf", "image/*"); without '/' it matches the file name's extension or the MIME subtype
// ("pdf" finds report.PDF sent as application/octet-stream and "scan" sent as
// application/pdf). A --name glob matches the whole decoded file name. Several globs of
// one kind: any may match; --type and --name together: both must.
struct AttachmentFilter {
    std::vector<std::string> types;
    std::vector<std::string> names;
    bool matches(std::string_view filename, std::string_view content_type) const;
};

// One attachment of a message, transfer-decoded.
struct AttachmentFile {
    std::size_t n = 0;          // 1-based, as `show --attachment N`
    std::string filename;       // decoded (RFC 2231, encoded words), may be empty
    std::string content_type;   // lowercase "type/subtype"
    std::string bytes;
};

// Calls `each` for every attachment of the raw message in `show`'s order, decoding one at a
// time (only the current one is held besides the message).
void for_each_attachment(std::string_view raw, const std::function<void(AttachmentFile&)>& each);

// A manifest line: the file as written and where it came from.
struct ManifestRow {
    std::uint64_t docno = 0;
    std::size_t n = 0;
    std::int64_t date = 0;      // UTC seconds; written ISO 8601 ("2023-04-25T10:02:11Z")
    std::string from, subject;
    std::string name;           // the attachment's own (decoded) file name, may be empty
    std::string file;           // as written in the directory
    std::string type;
    std::uint64_t size = 0;
    std::string sha256;         // hex, of the written bytes
};

// manifest.csv (RFC 4180: CRLF line ends, fields with , " CR LF quoted, " doubled; UTF-8).
std::string manifest_csv_header();  // "docno,n,date,from,subject,name,file,type,size,sha256\r\n"
std::string manifest_csv_line(const ManifestRow& r);
// manifest.jsonl: one JSON object per line, keys as the CSV columns.
std::string manifest_json_line(const ManifestRow& r);

struct AttachmentExportProgress {
    std::uint64_t messages_done = 0, messages_total = 0;
    std::uint64_t written = 0;   // files written by this run
    std::uint64_t kept = 0;      // already in DIR with the same SHA-256 (an earlier run): not rewritten
    std::uint64_t bytes = 0;     // bytes of the files written
    std::uint64_t failed = 0;    // files or messages that failed (see errors)
    std::vector<std::string> errors;  // one line each, the first 1000
    bool interrupted = false;    // `stop` was set: the manifest covers what was done
    bool aborted = false;        // the directory could no longer be written (last error says why);
                                 // the manifest lists what was written, if it could be
};

// Writes the attachments of `docnos` that pass `filter` into `dir` (created if missing) as
// attachment_file_name(), each to a temporary file (O_EXCL, fsynced) renamed into place
// (never through a symlink: a planted link is an error, or replaced itself with `replace`),
// and manifest.csv + manifest.jsonl for every attachment exported, written to temporary
// files fsynced every 256 files or 64 MiB and renamed into place at the end. Resumable: a
// file already in `dir` with the same SHA-256 is kept (counted, listed, not rewritten);
// one with other content is an error unless `replace`; temporary files of a killed run are
// removed. One message and one attachment in memory at a time. Fails (nothing written)
// only when `dir` cannot be created or written at all; `progress` is called per message.
Result<AttachmentExportProgress> export_attachments(const index::Archive& archive,
                                                    const std::vector<std::uint64_t>& docnos,
                                                    const std::filesystem::path& dir, const AttachmentFilter& filter,
                                                    const std::function<void(const AttachmentExportProgress&)>& progress,
                                                    ExistingFiles existing = ExistingFiles::refuse,
                                                    const std::atomic<bool>* stop = nullptr);

}  // namespace mv::query
