#include "index/mime/dedupe.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace mv::index {
namespace {

const std::string k_base =
    "Received: from a by b; Tue, 25 Apr 2023 10:02:15 +0000\n"
    "Message-ID: <x@y>\n"
    "Date: Tue, 25 Apr 2023 10:02:11 +0000\n"
    "From: Alice <alice@example.com>\n"
    "To: bob@example.com\n"
    "Subject: Hello\n"
    "\n"
    "Body line\n";

struct Case {
    const char* name;
    std::string other;
    bool same;
};

TEST(DedupeKey, SameMessageDefinition) {
    auto replace = [](std::string s, const std::string& from, const std::string& to) {
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    const std::vector<Case> cases{
        {"identical", k_base, true},
        {"extra transport header", "Received: from c by d; Tue, 25 Apr 2023 10:03:00 +0000\n" + k_base, true},
        {"other header differs", replace(k_base, "Received: from a by b", "Received: from zzz by b"), true},
        {"folded subject", replace(k_base, "Subject: Hello\n", "Subject:\n Hello\n"), true},
        {"trailing white space", replace(k_base, "Subject: Hello\n", "Subject: Hello  \n"), true},
        {"CRLF line ends", [] {
             std::string s;
             for (char c : k_base) {
                 if (c == '\n') s += "\r\n";
                 else s += c;
             }
             return s;
         }(), true},
        {"header name case", replace(k_base, "Message-ID:", "message-id:"), true},
        {"body differs", k_base + "more\n", false},
        {"subject differs", replace(k_base, "Hello", "Hello!"), false},
        {"date differs", replace(k_base, "10:02:11", "10:02:12"), false},
        {"cc added", replace(k_base, "Subject:", "Cc: carol@example.com\nSubject:"), false},
        {"message-id differs", replace(k_base, "<x@y>", "<z@y>"), false},
        {"message-id missing", replace(k_base, "Message-ID: <x@y>\n", ""), false},
    };
    const Digest base = dedupe_key(k_base);
    for (const auto& c : cases) EXPECT_EQ(dedupe_key(c.other) == base, c.same) << c.name;
}

TEST(DedupeKey, EmptyMessageIdIsNotAbsentMessageId) {
    EXPECT_NE(dedupe_key("Message-ID:\nSubject: a\n\nb\n"), dedupe_key("Subject: a\n\nb\n"));
}

// Courier delivers CRLF files as CR CR LF: any run of CRs before LF is one line end, in the
// body and at the end of the header block.
TEST(DedupeKey, AnyRunOfCrsBeforeLfIsOneLineEnd) {
    auto with_line_end = [](const std::string& eol) {
        std::string s;
        for (char c : k_base) {
            if (c == '\n') s += eol;
            else s += c;
        }
        return s;
    };
    const Digest base = dedupe_key(k_base);
    EXPECT_EQ(dedupe_key(with_line_end("\r\n")), base);
    EXPECT_EQ(dedupe_key(with_line_end("\r\r\n")), base);
    EXPECT_EQ(dedupe_key(with_line_end("\r\r\r\n")), base);
    // A CR that does not end a line is content.
    EXPECT_NE(dedupe_key(k_base + "a\rb\n"), dedupe_key(k_base + "ab\n"));
    EXPECT_NE(dedupe_key(k_base + "a\r"), dedupe_key(k_base + "a"));
}

// DESIGN.md: "A message with none of Message-ID, From and Subject is the same only as a
// byte-identical copy." Before, all of these got one key ("1 new, 2 duplicates").
TEST(DedupeKey, WithoutMessageIdFromAndSubjectOnlyByteIdenticalCopiesAreTheSame) {
    const std::string received_only =
        "Received: from a.example by b.example; Tue, 25 Apr 2023 10:02:15 +0000\n"
        "Received: from c.example by a.example; Tue, 25 Apr 2023 10:02:14 +0000\n";
    const std::string return_path_only = "Return-Path: <bounce@example.com>\n";
    const std::string other_received = "Received: from z.example by b.example; Tue, 25 Apr 2023 10:02:15 +0000\n";
    const std::string with_date_to = "Date: Tue, 25 Apr 2023 10:02:11 +0000\nTo: bob@example.com\n\nsame body\n";
    const std::vector<std::string> all{received_only, return_path_only, other_received, received_only + "\n",
                                       with_date_to, "X-Other: 1\n" + with_date_to,
                                       "Message-ID:\nFrom: \nSubject:  \n", "Message-ID:\nFrom:\nSubject:\n"};
    std::set<Digest> keys;
    for (const auto& m : all) keys.insert(dedupe_key(m));
    EXPECT_EQ(keys.size(), all.size()) << "every different byte string is a different message";
    EXPECT_EQ(dedupe_key(received_only), dedupe_key(std::string(received_only)));
    // Any one of the three is enough identity for the usual definition again.
    EXPECT_EQ(dedupe_key("Received: x\nFrom: a@x\n\nb\n"), dedupe_key("Received: y\nFrom: a@x\n\nb\n"));
    EXPECT_EQ(dedupe_key("Received: x\nSubject: s\n\nb\n"), dedupe_key("Received: y\nSubject: s\n\nb\n"));
    EXPECT_EQ(dedupe_key("Received: x\nMessage-ID: <m@x>\n\nb\n"), dedupe_key("Received: y\nMessage-ID: <m@x>\n\nb\n"));
    // The byte form never meets the header form: a message whose bytes spell out the hashed
    // text of another message's identity still gets its own key.
    const std::string spelled = "message-id-\ndate-\nfrom=1:a\nto-\ncc-\nsubject-\nbody\n";
    EXPECT_NE(dedupe_key(spelled), dedupe_key("From: a\n\n"));
    EXPECT_NE(dedupe_key(spelled), sha256(spelled));
}

TEST(DedupeKey, HugeHeaderValueIsHashedWithoutCopies) {
    std::string subject(8 << 20, 'x');
    std::string a = "Subject: " + subject + "\n\nbody\n";
    std::string b = "Subject:\n " + subject + "  \r\n\nbody\n";
    EXPECT_EQ(dedupe_key(a), dedupe_key(b));
    b[20] = 'y';
    EXPECT_NE(dedupe_key(a), dedupe_key(b));
}

struct MailCase {
    const char* name;
    std::string raw;
};

TEST(NotMail, DamagedAndHeaderOnlyMessagesAreMail) {
    const std::vector<MailCase> mail{
        {"whole message", k_base},
        {"only Received headers", "Received: from a by b; Tue, 25 Apr 2023 10:02:15 +0000\n"},
        {"only Return-Path, CRLF", "Return-Path: <x@y>\r\n"},
        {"CR CR LF", "Subject: a\r\r\nFrom: b\r\r\n\r\r\nbody\r\r\n"},
        {"truncated in a header", "Received: from a by b;\n\tTue, 25 Apr 2023\nFro"},
        {"folded headers", "Received: from a\n by b\n\tvia c\nSubject: x\n\n"},
        {"leading empty line", "\nSubject: a\n\nbody\n"},
        {"mbox envelope line", "From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: a\n\nb\n"},
        {"blank before the colon", "Subject : a\n\nb\n"},
        {"a flipped byte in the first name", "Rec\x01ived: x\nDate: y\nFrom: z\n\nbody\n"},
        {"a NUL in a header", std::string("Subject: a\0b\nFrom: c\n\nd\n", 24)},
        {"8-bit body", "Subject: a\n\n\xff\xfe\x00\x01binary body"},
    };
    for (const auto& c : mail) EXPECT_EQ(not_mail_reason(c.raw), "") << c.name;
}

TEST(NotMail, BinaryTextAndEmptyFilesAreNot) {
    std::mt19937 rng(7);
    std::string random(100000, '\0');
    for (auto& c : random) c = static_cast<char>(rng());
    const std::vector<MailCase> not_mail{
        {"empty", ""},
        {"only empty lines", "\n\r\n\n"},
        {"random bytes", random},
        {"JPEG", std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\n", 21) + random},
        {"PDF", "%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n"},
        {"gzip", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + random},
        {"Thunderbird .msf", "// <!-- <mdb:mork:z v=\"1.4\"/> -->\n< <(a=c)> // (f=iso-8859-1)\n  (B8=Custom1)(B9=Custom2)\n"},
        {"plain text", "Dear John,\nthis is a letter.\n\nRegards\n"},
        {"body without headers", "\nJust a body: nothing before it\n"},
        {"log lines", "2024-01-01 12:00:00 INFO: started\n2024-01-01 12:00:01 WARN: x\nweird: line\n"},
        {"only an envelope line", "From someone@example.com Mon Jan  1 00:00:00 2024\n\nbody\n"},
    };
    for (const auto& c : not_mail) EXPECT_NE(not_mail_reason(c.raw), "") << c.name;
    EXPECT_NE(not_mail_reason(random).find("no header block"), std::string::npos) << not_mail_reason(random);
}

TEST(DedupeKey, HeaderOnlyMessage) {
    EXPECT_NE(dedupe_key("Subject: a\n"), dedupe_key("Subject: b\n"));
    EXPECT_EQ(dedupe_key("Subject: a\n"), dedupe_key("Subject: a\n"));
}

}  // namespace
}  // namespace mv::index
