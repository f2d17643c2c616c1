#pragma once
// What became of one attachment's text (stored with the document, shown by `show`).
#include <string>
#include <string_view>

namespace mv::index::extract {

enum class Status {
    none,         // not recorded (documents indexed before extraction existed)
    indexed,      // text extracted and indexed
    too_large,    // over the per-attachment size limit: not read
    encrypted,    // password-protected: no text without the password
    unsupported,  // a type with no extractor (images, audio, legacy binary formats...)
    failed,       // the extractor gave up; the reason says why
    timed_out,    // over the time limit: stopped
    skipped,      // not extracted by choice ([index] attachment_text = false, message text budget spent)
};

// "indexed", "too_large", ... ("" for none): the JSON spelling.
std::string_view status_name(Status s);
// The inverse of status_name(); unknown spellings give Status::none.
Status status_from_name(std::string_view name);
// For people: "indexed", "too large", "encrypted", "unsupported type", "failed: <reason>",
// "timed out", "not extracted: <reason>".
std::string status_text(Status s, std::string_view reason);

}  // namespace mv::index::extract
