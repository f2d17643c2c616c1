#include "index/mime/dedupe.hpp"

#include <gtest/gtest.h>

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

TEST(DedupeKey, HeaderOnlyMessage) {
    EXPECT_NE(dedupe_key("Subject: a\n"), dedupe_key("Subject: b\n"));
    EXPECT_EQ(dedupe_key("Subject: a\n"), dedupe_key("Subject: a\n"));
}

}  // namespace
}  // namespace mv::index
