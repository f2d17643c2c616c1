#pragma once
// One fixture, two real servers: every test of this directory runs against Courier and Dovecot.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/courier.hpp"
#include "support/dovecot.hpp"
#include "support/testutil.hpp"
#include "tests_driver.hpp"

namespace mv::test {

// What the shared assertions need from a server.
class MailServer {
  public:
    virtual ~MailServer() = default;
    virtual std::filesystem::path deliver(const std::string& user, const std::string& folder, const std::string& bytes) = 0;
    virtual bool fill_from_corpus(const std::string& user, const std::string& folder, const std::string& mbox, int count) = 0;
    virtual std::filesystem::path maildir(const std::string& user, const std::string& folder) const = 0;
    // Gives the messages with these Maildir base names the UIDs 1, 2, ... in this order, keeping
    // the folder's UIDVALIDITY: a server that hands out numbers again.
    virtual void renumber(const std::string& user, const std::string& folder, const std::vector<std::string>& basenames) = 0;
    virtual SourceConfig source(const std::string& name, const std::string& type, const std::string& user,
                                const std::string& security = "tls") const = 0;
    virtual std::string log() const = 0;
};

class CourierServer : public MailServer {
  public:
    explicit CourierServer(std::unique_ptr<Courier> c) : c_(std::move(c)) {}
    std::filesystem::path deliver(const std::string& u, const std::string& f, const std::string& b) override {
        return c_->deliver(u, f, b);
    }
    bool fill_from_corpus(const std::string& u, const std::string& f, const std::string& m, int n) override {
        return c_->fill_from_corpus(u, f, m, n);
    }
    std::filesystem::path maildir(const std::string& u, const std::string& f) const override { return c_->maildir(u, f); }
    void renumber(const std::string& u, const std::string& f, const std::vector<std::string>& b) override {
        c_->renumber(u, f, b);
    }
    SourceConfig source(const std::string& n, const std::string& t, const std::string& u, const std::string& s) const override {
        return c_->source(n, t, u, s);
    }
    std::string log() const override { return c_->log(); }
    Courier& courier() { return *c_; }

  private:
    std::unique_ptr<Courier> c_;
};

class DovecotServer : public MailServer {
  public:
    explicit DovecotServer(std::unique_ptr<Dovecot> d) : d_(std::move(d)) {}
    std::filesystem::path deliver(const std::string& u, const std::string& f, const std::string& b) override {
        return d_->deliver(u, f, b);
    }
    bool fill_from_corpus(const std::string& u, const std::string& f, const std::string& m, int n) override {
        return d_->fill_from_corpus(u, f, m, n);
    }
    std::filesystem::path maildir(const std::string& u, const std::string& f) const override { return d_->maildir(u, f); }
    void renumber(const std::string& u, const std::string& f, const std::vector<std::string>& basenames) override {
        // dovecot-uidlist v3: "3 V<validity> N<next>", then "<uid> :<basename>"; the index files
        // go, so that Dovecot reads the list again.
        auto dir = d_->maildir(u, f);
        std::string validity = "1000";
        {
            std::ifstream in(dir / "dovecot-uidlist");
            std::string version, v;
            if (in >> version >> v && v.size() > 1 && v[0] == 'V') validity = v.substr(1);
        }
        for (auto& e : std::filesystem::directory_iterator(dir))
            if (e.path().filename().string().rfind("dovecot.index", 0) == 0) std::filesystem::remove(e.path());
        std::string list = "3 V" + validity + " N" + std::to_string(basenames.size() + 1) + "\n";
        unsigned uid = 0;
        for (auto& b : basenames) list += std::to_string(++uid) + " :" + b + "\n";
        write_file(dir / "dovecot-uidlist", list);
        d_->fix_owner();
    }
    SourceConfig source(const std::string& n, const std::string& t, const std::string& u, const std::string& s) const override {
        return d_->source(n, t, u, s);
    }
    std::string log() const override { return d_->log(); }

  private:
    std::unique_ptr<Dovecot> d_;
};

// TEST_P(…) with INSTANTIATE_TEST_SUITE_P(Servers, X, ::testing::Values("courier", "dovecot"), server_name).
class TwoServerTest : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        std::string why;
        if (GetParam() == "courier") {
            auto c = Courier::start(&why);
            if (c) server = std::make_unique<CourierServer>(std::move(c));
        } else {
            auto d = Dovecot::start(&why);
            if (d) server = std::make_unique<DovecotServer>(std::move(d));
        }
        if (!server) {
            if (servers_required()) FAIL() << why;
            GTEST_SKIP() << why;
        }
    }
    bool courier() const { return GetParam() == "courier"; }

    // A message with CRLF line ends; `subject` may hold raw UTF-8 (8-bit headers).
    static std::string message(const std::string& subject, const std::string& body = "hello",
                               const std::string& from = "Alice <alice@example.com>") {
        std::string mid;
        for (unsigned char c : subject) mid += std::isalnum(c) ? static_cast<char>(c) : '.';
        return "From: " + from + "\r\nTo: bob@example.com\r\nSubject: " + subject +
               "\r\nDate: Mon, 20 Nov 2023 10:00:00 +0000\r\nMessage-ID: <" + mid + "@test>\r\n\r\n" + body + "\r\n";
    }
    // Line ends as LF only: Courier may deliver CRLF files as CR CR LF, which the archive's dedupe
    // normalises; these tests compare contents the same way.
    static std::string lf(const std::string& s) {
        std::string out;
        for (char c : s)
            if (c != '\r') out += c;
        return out;
    }

    std::unique_ptr<MailServer> server;
};

inline std::string server_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

inline std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (auto& l : lines) s += l + "\n";
    return s;
}

}  // namespace mv::test
