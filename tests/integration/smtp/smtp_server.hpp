#pragma once
// tools/testservers/smtp/smtp-test-server (python3-aiosmtpd) for one test, and what it received.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_graph_fixture.hpp"
#include "support/testutil.hpp"

namespace mv::test {

namespace fs = std::filesystem;

class SmtpServer {
  public:
    // nullptr (and `why`) when python3-aiosmtpd is missing or the server does not start.
    static std::unique_ptr<SmtpServer> start(const fs::path& dir, const std::vector<std::string>& args, std::string* why) {
        std::unique_ptr<SmtpServer> s(new SmtpServer(dir));
        auto probe = run_program({"/usr/bin/python3", "-c", "import aiosmtpd"});
        if (probe.exit_code != 0) {
            *why = "python3-aiosmtpd is not installed (tools/install-deps)";
            return nullptr;
        }
        fs::create_directories(dir);
        std::vector<std::string> argv = {"/usr/bin/python3", (source_dir() / "tools/testservers/smtp/smtp-test-server").string(),
                                         "--dir", dir.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        s->pid_ = graph::spawn(argv, dir / "server.log");
        for (int i = 0; i < 600 && s->pid_ > 0; ++i) {
            if (fs::exists(dir / "port")) {
                std::ifstream(dir / "port") >> s->port;
                return s;
            }
            int status;
            if (waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
                s->pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        *why = "smtp-test-server did not start: " + read_file(dir / "server.log");
        return nullptr;
    }
    ~SmtpServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status;
            waitpid(pid_, &status, 0);
        }
    }
    int port = 0;
    fs::path cert() const { return dir_ / "cert.pem"; }
    std::string log() const { return read_file(dir_ / "server.log"); }

    struct Received {
        std::string bytes;
        nlohmann::json envelope;  // mail_from, rcpt_tos, auth_user, tls
    };
    std::vector<Received> received() const {
        std::vector<Received> out;
        for (int n = 1;; ++n) {
            char name[16];
            std::snprintf(name, sizeof name, "%04d", n);
            fs::path eml = dir_ / "messages" / (std::string(name) + ".eml");
            if (!fs::exists(eml)) break;
            out.push_back({read_file(eml), nlohmann::json::parse(read_file(dir_ / "messages" / (std::string(name) + ".json")))});
        }
        return out;
    }
    std::vector<nlohmann::json> sasl() const {
        std::vector<nlohmann::json> out;
        std::ifstream in(dir_ / "sasl.log");
        for (std::string l; std::getline(in, l);)
            if (!l.empty()) out.push_back(nlohmann::json::parse(l));
        return out;
    }

  private:
    explicit SmtpServer(fs::path dir) : dir_(std::move(dir)) {}
    fs::path dir_;
    pid_t pid_ = -1;
};

}  // namespace mv::test
