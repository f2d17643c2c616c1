#pragma once
// The extractors behind extract(), one file per format family (internal to index/extract).
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "index/extract/extract.hpp"

namespace mv::index::extract {

using Clock = std::chrono::steady_clock;

// Appends `text` to `out` up to `cap` bytes in all (a cut never splits a UTF-8 sequence).
void append_text(std::string& out, std::string_view text, std::size_t cap);

// text.cpp: text-like types as UTF-8 (`charset` else UTF-8 else windows-1252); EDIFACT with
// its separators made word breaks.
Extracted text_like(std::string_view bytes, std::string_view charset, const Limits& limits);
Extracted edifact(std::string_view bytes, std::string_view charset, const Limits& limits);
// XML: the text nodes (markup dropped); JSON: as text.
Extracted xml_text(std::string_view bytes, const Limits& limits);

// rtf.cpp: a bounded RTF reader (groups, destinations, \'hh, \uN).
Extracted rtf(std::string_view bytes, const Limits& limits);

// pdf.cpp: poppler, in a forked helper unless Limits::isolation says otherwise.
Extracted pdf(std::string_view bytes, const Limits& limits);
// Sets up poppler in this process (read by start_helper() before it forks the fork server).
void prepare_pdf();

// office.cpp: OOXML (docx, xlsx, pptx) and ODF (odt, ods, odp): zip + XML.
Extracted office(std::string_view bytes, std::string_view kind, const Limits& limits);

// zip.cpp: member names and the text of members of the supported kinds, within the limits.
Extracted zip(std::string_view bytes, const Limits& limits, const Hooks& hooks, int depth, Clock::time_point deadline);

// The text of the XML elements a document format keeps its words in; `kind` tunes the element
// breaks ("xlsx" skips shared-string indexes). Fails on XML libxml2 will not read.
bool xml_words(std::string_view xml, std::string_view kind, std::string& out, std::size_t cap);

// A zip archive in memory, read with libzip; members read in chunks up to a byte cap.
class ZipReader {
  public:
    explicit ZipReader(std::string_view bytes);
    ~ZipReader();
    ZipReader(const ZipReader&) = delete;
    ZipReader& operator=(const ZipReader&) = delete;
    bool ok() const { return archive_ != nullptr; }
    std::size_t count() const;
    struct Member {
        std::string name;
        std::uint64_t size = 0;     // as the archive declares it
        std::uint64_t packed = 0;
        bool encrypted = false;
    };
    Member member(std::size_t i) const;
    std::size_t find(std::string_view name) const;  // count() when absent
    // At most `cap` bytes of member i, unpacked; false when it cannot be read.
    bool read(std::size_t i, std::uint64_t cap, std::string& out) const;

  private:
    void* source_ = nullptr;
    void* archive_ = nullptr;
};

// Work for a helper process: a plain function (see isolate.cpp).
using Work = Extracted (*)(std::string_view input, const Limits& limits);
// Runs `work(input, limits)` in a helper process under setrlimit (RLIMIT_AS: what the helper
// starts with plus Limits::max_memory; RLIMIT_CPU) and a wall timeout (Limits::timeout):
// timed_out when it is stopped for time, failed when it runs out of memory or crashes. With
// Isolation::in_process, runs it here.
Extracted run_isolated(Work work, std::string_view input, const Limits& limits);

}  // namespace mv::index::extract
