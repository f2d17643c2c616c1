#pragma once
// A private Dovecot (tools/testservers/dovecot/dovecot-test-server) for one test: random ports,
// self-signed certificate, passwd-file users "alice"/"bob" with password "pw-USER" and OAuth2
// token "token-USER", Maildir storage.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "index/config/config.hpp"
#include "support/testutil.hpp"

namespace mv::test {

class Dovecot {
  public:
    struct Options {
        std::vector<std::string> users{"alice", "bob"};  // "name" (password pw-name) or "name=password"
        bool uidplus = true;
    };
    // nullptr (and `why`) when Dovecot is not installed or does not start.
    static std::unique_ptr<Dovecot> start(const Options& options, std::string* why);
    static std::unique_ptr<Dovecot> start(std::string* why) { return start(Options{}, why); }
    ~Dovecot();

    int imap = 0, imaps = 0, pop3 = 0, pop3s = 0;
    std::filesystem::path cert() const { return dir_.path() / "srv" / "cert.pem"; }
    std::filesystem::path dir() const { return dir_.path(); }
    // The Maildir of `folder` (UTF-8, '/'-separated; "INBOX" or "" for the top level).
    std::filesystem::path maildir(const std::string& user, const std::string& folder = "INBOX") const;
    // Delivers a message into folder/new (creates the folder); returns the file path.
    std::filesystem::path deliver(const std::string& user, const std::string& folder, const std::string& bytes);
    // Unpacks `count` corpus messages into the folder; false when the corpus is missing.
    bool fill_from_corpus(const std::string& user, const std::string& folder, const std::string& mbox, int count);
    // Forgets the folder's UIDs so that Dovecot assigns new ones under UIDVALIDITY `validity`.
    void reset_uidvalidity(const std::string& user, const std::string& folder, unsigned validity);
    void fix_owner();  // mail files belong to the mail uid
    void stop();       // doveadm stop (sessions in progress may finish)
    void kill();       // SIGKILL to every Dovecot process of this instance: a crash
    bool restart();
    std::string log() const;
    // A [[source]] for `user` on this server.
    SourceConfig source(const std::string& name, const std::string& type, const std::string& user,
                        const std::string& security = "tls") const;

  private:
    Dovecot() = default;
    TempDir dir_;
    std::filesystem::path script_;
    unsigned uid_ = 0, gid_ = 0;
    bool running_ = false;
};

// The script that runs the server.
std::filesystem::path dovecot_script();

}  // namespace mv::test
