#pragma once
// Shared fixture: one private Dovecot per test.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "support/dovecot.hpp"
#include "support/testutil.hpp"
#include "tests_driver.hpp"

namespace mv::test {

// tools/tcp-delay-proxy in front of a port: added RTT, and optionally one connection cut.
class DelayProxy {
  public:
    DelayProxy(int target_port, int rtt_ms, long drop_after = -1) {
        std::string cmd = "echo $$; exec /usr/bin/python3 " + (source_dir() / "tools" / "tcp-delay-proxy").string() +
                          " --target 127.0.0.1:" + std::to_string(target_port) + " --rtt-ms " + std::to_string(rtt_ms);
        if (drop_after >= 0) cmd += " --drop-after " + std::to_string(drop_after);
        out_ = ::popen(cmd.c_str(), "r");
        if (!out_) return;
        char line[64];
        if (std::fgets(line, sizeof line, out_)) pid_ = std::atoi(line);
        if (std::fgets(line, sizeof line, out_) && std::string(line).rfind("port=", 0) == 0) port = std::atoi(line + 5);
    }
    ~DelayProxy() {
        if (pid_ > 0) ::kill(pid_, SIGTERM);
        if (out_) ::pclose(out_);
    }
    int port = 0;

  private:
    FILE* out_ = nullptr;
    int pid_ = 0;
};

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
