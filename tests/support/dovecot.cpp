#include "support/dovecot.hpp"

#include <unistd.h>

#include <map>
#include <sstream>

#include "ingest/net/utf7.hpp"

namespace mv::test {

std::filesystem::path dovecot_script() { return source_dir() / "tools" / "testservers" / "dovecot" / "dovecot-test-server"; }

std::unique_ptr<Dovecot> Dovecot::start(const Options& options, std::string* why) {
    if (!std::filesystem::exists("/usr/sbin/dovecot") || !std::filesystem::exists("/usr/bin/doveadm")) {
        if (why) *why = "dovecot is not installed (dovecot-imapd, dovecot-pop3d)";
        return nullptr;
    }
    std::unique_ptr<Dovecot> d(new Dovecot());
    d->script_ = dovecot_script();
    std::string users;
    for (auto& u : options.users) users += (users.empty() ? "" : ",") + u;
    std::vector<std::string> argv{"/usr/bin/python3", d->script_.string(), "start", (d->dir_.path() / "srv").string(),
                                  "--users", users};
    if (!options.uidplus) argv.push_back("--no-uidplus");
    auto r = run_program(argv);
    if (r.exit_code != 0) {
        if (why) *why = "dovecot did not start: " + r.err + r.out;
        return nullptr;
    }
    d->running_ = true;
    std::map<std::string, std::string> kv;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    d->imap = std::stoi(kv["imap"]);
    d->imaps = std::stoi(kv["imaps"]);
    d->pop3 = std::stoi(kv["pop3"]);
    d->pop3s = std::stoi(kv["pop3s"]);
    d->uid_ = static_cast<unsigned>(std::stoul(kv["uid"]));
    d->gid_ = static_cast<unsigned>(std::stoul(kv["gid"]));
    return d;
}

Dovecot::~Dovecot() { stop(); }

void Dovecot::stop() {
    if (!running_) return;
    run_program({"/usr/bin/python3", script_.string(), "stop", (dir_.path() / "srv").string()});
    running_ = false;
}

void Dovecot::kill() {
    run_program({"/usr/bin/python3", script_.string(), "kill", (dir_.path() / "srv").string()});
}

bool Dovecot::restart() {
    auto r = run_program({"/usr/bin/python3", script_.string(), "restart", (dir_.path() / "srv").string()});
    running_ = r.exit_code == 0;
    return running_;
}

std::filesystem::path Dovecot::maildir(const std::string& user, const std::string& folder) const {
    auto base = dir_.path() / "srv" / "home" / user / "Maildir";
    if (folder.empty() || folder == "INBOX") return base;
    std::string name;
    std::size_t start = 0;
    for (;;) {  // Maildir++: ".A.B" with each level in modified UTF-7
        auto slash = folder.find('/', start);
        name += "." + ingest::net::mutf7_encode(folder.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return base / name;
}

void Dovecot::fix_owner() {
    auto home = dir_.path() / "srv" / "home";
    for (auto& e : std::filesystem::recursive_directory_iterator(home)) {
        if (::chown(e.path().c_str(), uid_, gid_) != 0) {
        }
    }
    if (::chown(home.c_str(), uid_, gid_) != 0) {
    }
}

std::filesystem::path Dovecot::deliver(const std::string& user, const std::string& folder, const std::string& bytes) {
    static unsigned counter = 0;
    auto dir = maildir(user, folder);
    for (auto sub : {"cur", "new", "tmp"}) std::filesystem::create_directories(dir / sub);
    if (folder != "INBOX" && !folder.empty()) write_file(dir / "maildirfolder", "");
    auto file = dir / "new" / ("t" + std::to_string(::getpid()) + "." + std::to_string(++counter) + ".test");
    write_file(file, bytes);
    fix_owner();
    return file;
}

bool Dovecot::fill_from_corpus(const std::string& user, const std::string& folder, const std::string& mbox, int count) {
    auto dir = maildir(user, folder);
    if (!unpack_corpus(mbox, dir, count)) return false;
    if (folder != "INBOX" && !folder.empty()) write_file(dir / "maildirfolder", "");
    fix_owner();
    return true;
}

void Dovecot::reset_uidvalidity(const std::string& user, const std::string& folder, unsigned validity) {
    auto dir = maildir(user, folder);
    for (auto& e : std::filesystem::directory_iterator(dir)) {
        auto n = e.path().filename().string();
        if (n.rfind("dovecot.index", 0) == 0 || n == "dovecot-uidlist") std::filesystem::remove(e.path());
    }
    write_file(dir / "dovecot-uidlist", "3 V" + std::to_string(validity) + " N1\n");
    fix_owner();
}

std::string Dovecot::log() const { return read_file(dir_.path() / "srv" / "dovecot.log"); }

SourceConfig Dovecot::source(const std::string& name, const std::string& type, const std::string& user,
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
