#pragma once
// Outgoing mail (test message, run reports) built with GMime: text/plain, or
// multipart/alternative with text/plain and text/html; UTF-8, quoted-printable.
#include <string>
#include <vector>

namespace mv::ingest::smtp {

struct MailMessage {
    std::string from;               // address
    std::string from_name = "mailvault";
    std::vector<std::string> to;
    std::string subject;            // UTF-8; encoded as needed
    std::string text;               // text/plain body
    std::string html;               // text/html alternative; empty: text only
};

// RFC 5322 bytes with Date, Message-ID, MIME-Version and Auto-Submitted: auto-generated.
std::string build_message(const MailMessage& m);

// &, <, >, " escaped for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace mv::ingest::smtp
