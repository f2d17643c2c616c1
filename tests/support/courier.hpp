#pragma once
// A private Courier-IMAP/POP3 5.0 (tools/testservers/courier/courier-test-server) for one test:
// random loopback ports, self-signed certificate, authlib userdb users "alice"/"bob" with
// password "pw-USER", Maildir storage. The second real server beside Dovecot.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "index/config/config.hpp"
#include "support/testutil.hpp"

namespace mv::test {

class Courier {
  public:
    struct Options {
        std::vector<std::string> users{"alice", "bob"};  // "name" (password pw-name) or "name=password"
    };
    // nullptr (and `why`) when Courier is not unpacked (tools/install-deps) or does not start.
    static std::unique_ptr<Courier> start(const Options& options, std::string* why);
    static std::unique_ptr<Courier> start(std::string* why) { return start(Options{}, why); }
    ~Courier();

    int imap = 0, imaps = 0, pop3 = 0, pop3s = 0;
    std::filesystem::path cert() const { return dir_.path() / "srv" / "cert.pem"; }
    std::filesystem::path dir() const { return dir_.path(); }
    // The Maildir of `folder` (UTF-8, '/'-separated; "INBOX" or "" for the inbox): Maildir++
    // ".A.B" with UTF-8 names, which Courier shows as "INBOX.A.B".
    std::filesystem::path maildir(const std::string& user, const std::string& folder = "INBOX") const;
    // Delivers a message into folder/new (creates the folder); returns the file path.
    std::filesystem::path deliver(const std::string& user, const std::string& folder, const std::string& bytes);
    // Unpacks `count` corpus messages into the folder; false when the corpus is missing.
    bool fill_from_corpus(const std::string& user, const std::string& folder, const std::string& mbox, int count);
    // Gives the messages with these Maildir base names (file names up to ':') the UIDs 1, 2, ...
    // in this order, under the folder's current UIDVALIDITY: a server that renumbers.
    void renumber(const std::string& user, const std::string& folder, const std::vector<std::string>& basenames);
    // The folder's UIDVALIDITY as stored (0: never stored, i.e. never SELECTed).
    unsigned stored_uidvalidity(const std::string& user, const std::string& folder) const;
    void fix_owner();  // mail files belong to the mail uid
    void stop();
    void kill();       // SIGKILL to every process of this instance: a crash
    bool restart();
    std::string log() const;
    // A [[source]] for `user` on this server.
    SourceConfig source(const std::string& name, const std::string& type, const std::string& user,
                        const std::string& security = "tls") const;

  private:
    Courier() = default;
    TempDir dir_;
    std::filesystem::path script_;
    unsigned uid_ = 0, gid_ = 0;
    bool running_ = false;
};

// The script that runs the server.
std::filesystem::path courier_script();

}  // namespace mv::test
