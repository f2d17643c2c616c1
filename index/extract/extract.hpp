#pragma once
// Text of attachments for indexing: PDF, OOXML/ODF, RTF, HTML, text-like types, attached
// messages and zip archives, each within size, time and memory limits (README "Attachment
// contents"). One file per format family in index/extract/; this is the one entry point.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "index/extract/status.hpp"

namespace mv::index::extract {

// Where risky extractors (PDF) run: in a forked helper process under setrlimit and a wall
// timeout (the default), or in this process (tests and the bench compare the two).
enum class Isolation { process, in_process };

struct Limits {
    std::uint64_t max_bytes = 32ull << 20;      // decoded attachment bytes; larger ones are too_large
    std::size_t max_text = 1u << 20;            // text kept per attachment
    std::chrono::milliseconds timeout{10000};   // wall time per attachment (and CPU time of the helper)
    std::uint64_t max_memory = 512ull << 20;    // address space the helper may add to what it inherits
    std::size_t max_members = 1000;             // zip members looked at (names and text)
    std::uint64_t max_unpacked = 64ull << 20;   // bytes unpacked from one archive, all members
    unsigned max_ratio = 100;                   // a member unpacking to more than this times its packed size is skipped
    int max_depth = 3;                          // containers within containers (zip in zip, message in zip)
    Isolation isolation = Isolation::process;
};

// What the format-independent parts of indexing provide: the HTML-to-text path of bodies, and
// the text (headers and body) of an attached message, parsed one level deeper.
struct Hooks {
    std::function<std::string(std::string_view html)> html_to_text;
    std::function<std::string(std::string_view raw, int depth)> message_text;
};

struct Extracted {
    Status status = Status::unsupported;
    std::string reason;  // for failed (and skipped): one line
    std::string text;    // UTF-8, at most Limits::max_text bytes
};

// The format family of an attachment by MIME type, else by file-name extension, else by its
// first bytes: "pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "html", "text",
// "edifact", "message", "zip", or "" (no extractor).
std::string kind_of(std::string_view mime_type, std::string_view filename, std::string_view head = {});

// The text of one attachment. `charset` is the part's charset parameter (text kinds); `depth`
// counts the containers around it. Never throws; every outcome is a status.
Extracted extract(std::string_view bytes, std::string_view mime_type, std::string_view filename,
                  std::string_view charset, const Limits& limits, const Hooks& hooks, int depth = 0);

// Starts the process that forks the PDF helpers, now (while this process is small: fork copies
// page tables). Otherwise it starts with the first PDF. Idempotent, thread-safe.
void start_helper();

// The lowercased extension of a file name without the dot ("report.PDF" -> "pdf"), or "".
std::string extension_of(std::string_view filename);

}  // namespace mv::index::extract
