#pragma once
// Shared by the network fault tests and the kill -9 rounds: the fault-injecting proxy
// (tools/tcp-delay-proxy), generated mail, and what the archive holds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "index/archive.hpp"
#include "index/util/sha256.hpp"
#include "support/testutil.hpp"

namespace mv::test::faults {

namespace fs = std::filesystem;

// tools/tcp-delay-proxy in front of a port with a fault mode ("--fault stall --after 6000").
class FaultProxy {
  public:
    FaultProxy(int target_port, const std::vector<std::string>& args) {
        std::string cmd = "echo $$; exec /usr/bin/python3 " + (source_dir() / "tools" / "tcp-delay-proxy").string() +
                          " --target 127.0.0.1:" + std::to_string(target_port) + " --rtt-ms 0";
        for (const auto& a : args) cmd += " " + a;
        out_ = ::popen(cmd.c_str(), "r");
        if (!out_) return;
        char line[64];
        if (std::fgets(line, sizeof line, out_)) pid_ = std::atoi(line);
        if (std::fgets(line, sizeof line, out_) && std::string(line).rfind("port=", 0) == 0) port = std::atoi(line + 5);
    }
    ~FaultProxy() {
        if (pid_ > 0) ::kill(pid_, SIGKILL);  // faulted connections never end by themselves
        if (out_) ::pclose(out_);
    }
    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;
    int port = 0;

  private:
    FILE* out_ = nullptr;
    int pid_ = 0;
};

// Message `i` of a test mailbox, CRLF line ends (what IMAP and POP3 deliver byte for byte).
// Every `big_every`th message carries `big_bytes` of body so that faults land mid-literal.
inline std::string make_message(const std::string& tag, int i, std::size_t body_bytes) {
    std::string m = "From: Sender " + std::to_string(i % 7) + " <s" + std::to_string(i % 7) + "@example.org>\r\n" +
                    "To: archive@example.com\r\nSubject: " + tag + " message " + std::to_string(i) + "\r\n" +
                    "Date: Mon, 20 Nov 2023 10:" + (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) + ":00 +0000\r\n" +
                    "Message-ID: <" + tag + "." + std::to_string(i) + "@faults.test>\r\n\r\n";
    std::string line = "line of " + tag + " " + std::to_string(i) + " ";
    while (line.size() < 72) line += 'x';
    while (m.size() < body_bytes) m += line + "\r\n";
    m += "end\r\n";
    return m;
}

inline std::string sha_hex(const std::string& bytes) { return to_hex(sha256(bytes)); }

struct ArchiveContents {
    std::size_t docs = 0;
    std::multiset<std::string> digests;  // SHA-256 of every stored original, one per document
    bool opened = false;
};

inline ArchiveContents archive_contents(const fs::path& archive) {
    ArchiveContents c;
    if (!fs::exists(archive / "FORMAT")) return c;
    auto a = index::Archive::open(archive, index::OpenMode::read);
    if (!a) return c;
    c.opened = true;
    c.docs = (*a)->document_count();
    auto db = (*a)->database();
    for (auto it = db.postlist_begin(""); it != db.postlist_end(""); ++it) {
        auto raw = (*a)->read_original(*it);
        c.digests.insert(raw ? sha_hex(*raw) : std::string("unreadable"));
    }
    return c;
}

// A child process running the mailvault binary, output into a file.
class Child {
  public:
    Child(const std::vector<std::string>& args, const fs::path& log, const std::vector<std::string>& env = {}) {
        pid_ = ::fork();
        if (pid_ == 0) {
            FILE* f = std::fopen(log.c_str(), "a");
            if (f) {
                ::dup2(fileno(f), 1);
                ::dup2(fileno(f), 2);
            }
            for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> argv;
            std::string bin = mailvault_binary();
            argv.push_back(bin.data());
            std::vector<std::string> copy = args;
            for (auto& a : copy) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(bin.c_str(), argv.data());
            ::_exit(127);
        }
    }
    // Waits at most `ms`; true when it exited by itself (status in `status`).
    bool wait_for(long ms, int& status) {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        for (;;) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return true;
            }
            if (std::chrono::steady_clock::now() >= until) return false;
            ::usleep(2000);
        }
    }
    void kill9() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    ~Child() { kill9(); }

  private:
    pid_t pid_ = -1;
};

}  // namespace mv::test::faults
