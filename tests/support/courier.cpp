#include "support/courier.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>


namespace mv::test {

std::filesystem::path courier_script() { return source_dir() / "tools" / "testservers" / "courier" / "courier-test-server"; }

std::unique_ptr<Courier> Courier::start(const Options& options, std::string* why) {
    std::unique_ptr<Courier> c(new Courier());
    c->script_ = courier_script();
    std::string users;
    for (auto& u : options.users) users += (users.empty() ? "" : ",") + u;
    auto r = run_program({"/usr/bin/python3", c->script_.string(), "start", (c->dir_.path() / "srv").string(),
                          "--users", users});
    if (r.exit_code != 0) {
        if (why)
            *why = r.exit_code == 3 ? "Courier is not available: " + r.err + "(tools/install-deps unpacks it)"
                                    : "Courier did not start: " + r.err + r.out;
        return nullptr;
    }
    c->running_ = true;
    std::map<std::string, std::string> kv;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    c->imap = std::stoi(kv["imap"]);
    c->imaps = std::stoi(kv["imaps"]);
    c->pop3 = std::stoi(kv["pop3"]);
    c->pop3s = std::stoi(kv["pop3s"]);
    c->uid_ = static_cast<unsigned>(std::stoul(kv["uid"]));
    c->gid_ = static_cast<unsigned>(std::stoul(kv["gid"]));
    return c;
}

Courier::~Courier() { stop(); }

void Courier::stop() {
    if (!running_) return;
    run_program({"/usr/bin/python3", script_.string(), "stop", (dir_.path() / "srv").string()});
    running_ = false;
}

void Courier::kill() { run_program({"/usr/bin/python3", script_.string(), "kill", (dir_.path() / "srv").string()}); }

bool Courier::restart() {
    auto r = run_program({"/usr/bin/python3", script_.string(), "restart", (dir_.path() / "srv").string()});
    running_ = r.exit_code == 0;
    return running_;
}

std::filesystem::path Courier::maildir(const std::string& user, const std::string& folder) const {
    auto base = dir_.path() / "srv" / "home" / user / "Maildir";
    if (folder.empty() || folder == "INBOX") return base;
    // Courier 5 keeps folder names in UTF-8 on disk (not modified UTF-7 as Dovecot does).
    std::string name = "." + folder;
    std::replace(name.begin(), name.end(), '/', '.');
    return base / name;
}

void Courier::fix_owner() {
    auto home = dir_.path() / "srv" / "home";
    for (auto& e : std::filesystem::recursive_directory_iterator(home))
        if (::chown(e.path().c_str(), uid_, gid_) != 0) {
        }
}

std::filesystem::path Courier::deliver(const std::string& user, const std::string& folder, const std::string& bytes) {
    static unsigned counter = 0;
    auto dir = maildir(user, folder);
    for (auto sub : {"cur", "new", "tmp"}) std::filesystem::create_directories(dir / sub);
    if (folder != "INBOX" && !folder.empty()) write_file(dir / "maildirfolder", "");
    // Zero-padded: Courier numbers new mail in file name order, which is then delivery order.
    char seq[16];
    std::snprintf(seq, sizeof seq, "%06u", ++counter);
    auto file = dir / "new" / ("1700000000." + std::string(seq) + "_" + std::to_string(::getpid()) + ".test");
    write_file(file, bytes);
    fix_owner();
    return file;
}

bool Courier::fill_from_corpus(const std::string& user, const std::string& folder, const std::string& mbox, int count) {
    auto dir = maildir(user, folder);
    if (!unpack_corpus(mbox, dir, count)) return false;
    if (folder != "INBOX" && !folder.empty()) write_file(dir / "maildirfolder", "");
    fix_owner();
    return true;
}

unsigned Courier::stored_uidvalidity(const std::string& user, const std::string& folder) const {
    std::ifstream in(maildir(user, folder) / "courierimapuiddb");
    unsigned version = 0, validity = 0;
    if (!(in >> version >> validity)) return 0;
    return validity;
}

void Courier::renumber(const std::string& user, const std::string& folder, const std::vector<std::string>& basenames) {
    auto dir = maildir(user, folder);
    // Courier numbers whatever is in new/ as new mail: the listed messages go to cur/ first.
    for (auto& b : basenames)
        if (std::filesystem::exists(dir / "new" / b)) std::filesystem::rename(dir / "new" / b, dir / "cur" / (b + ":2,"));
    unsigned validity = stored_uidvalidity(user, folder);
    if (validity == 0) validity = 1000;
    // courierimapuiddb: "1 UIDVALIDITY NEXTUID", then "UID basename" per message.
    std::string db = "1 " + std::to_string(validity) + " " + std::to_string(basenames.size() + 1) + "\n";
    unsigned uid = 0;
    for (auto& b : basenames) db += std::to_string(++uid) + " " + b + "\n";
    write_file(dir / "courierimapuiddb", db);
    fix_owner();
}

std::string Courier::log() const { return read_file(dir_.path() / "srv" / "courier.log"); }

SourceConfig Courier::source(const std::string& name, const std::string& type, const std::string& user,
                             const std::string& security) const {
    SourceConfig c;
    c.name = name;
    c.type = type;
    c.strings["host"] = "localhost";
    bool implicit = security == "tls";
    int port = type == "imap" ? (implicit ? imaps : imap) : (implicit ? pop3s : pop3);
    c.strings["port"] = std::to_string(port);
    c.strings["security"] = security;
    c.strings["ca_file"] = cert().string();
    c.strings["username"] = user;
    c.strings["password"] = "pw-" + user;
    c.strings["timeout"] = "20";
    return c;
}

}  // namespace mv::test
