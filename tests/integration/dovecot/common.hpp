#pragma once
// Shared fixture: one private Dovecot per test.
#include <gtest/gtest.h>

#include "support/dovecot.hpp"
#include "support/testutil.hpp"
#include "tests_driver.hpp"

namespace mv::test {

class DovecotTest : public ::testing::Test {
  protected:
    void start(const Dovecot::Options& o = {}) {
        std::string why;
        server = Dovecot::start(o, &why);
        if (!server) {
            if (servers_required()) FAIL() << why;
            GTEST_SKIP() << why;
        }
    }
    void SetUp() override { start(); }

    // A small message with CRLF line ends (what IMAP delivers, so sizes compare exactly).
    static std::string message(const std::string& subject, const std::string& body = "hello",
                               const std::string& id = "") {
        std::string mid = id.empty() ? subject : id;
        for (auto& c : mid)
            if (c == ' ') c = '.';
        return "From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: " + subject +
               "\r\nDate: Mon, 20 Nov 2023 10:00:00 +0000\r\nMessage-ID: <" + mid + "@test>\r\n\r\n" + body + "\r\n";
    }

    std::unique_ptr<Dovecot> server;
};

}  // namespace mv::test
