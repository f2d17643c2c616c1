// fake-graph: a fake of the Microsoft identity platform token endpoint and the Microsoft Graph
// mail API (v1.0) as documented in ../shared/specs/graph-mail.md, for tests and benchmarks.
//
// Wire format: client-credentials token endpoint, /users paging, mailFolders + childFolders
// (hidden and search folders), folder message lists ($top/$skip/$select/$orderby, absolute
// percent-encoded nextLinks), per-folder delta (Prefer: odata.maxpagesize, skiptoken pages,
// deltaLink, @removed, 410 SyncStateNotFound), $value, bearer tokens with expiry (401),
// per-mailbox rate window and concurrency limits (429 + Retry-After), injected faults.
// Test hooks: GET /_stats, GET /_dump, POST /_control/{add,remove,expire-deltas,revoke-tokens,deny,reset-stats}.
#include <httplib.h>
#include <openssl/sha.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

struct Options {
    int port = 0;
    std::string port_file;
    std::vector<std::string> mbox_files;
    std::vector<std::string> maildirs;
    long limit = 0;          // messages to load (0: all)
    long generate = 0;       // synthetic messages
    long big_message = 0;    // bytes of one extra big message in the first mailbox's Inbox
    int mailbox_count = 1;
    std::vector<std::string> mailbox_names;
    std::string domain = "contoso.test";
    std::vector<std::string> folders = {"Inbox", "Inbox/Projects", "Inbox/Projects/2019", "Archive",
                                        "Sent Items"};
    std::string tenant = "contoso.onmicrosoft.com";
    std::string client_id = "11111111-2222-3333-4444-555555555555";
    std::string client_secret = "s3cret-value";
    long token_lifetime = 3599;
    std::string delegated_token_prefix;  // delegated access tokens are PREFIX+user (test Dovecot: "token-")
    int latency_ms = 0;
    int concurrency = 0;       // per mailbox, 0: unlimited
    long rate_limit = 0;       // requests per window per mailbox, 0: unlimited
    double rate_window = 600;  // seconds
    int conc_retry_after = 1;
    struct Storm { long at, len, retry_after; };
    std::vector<Storm> storms;
    long fail_503_every = 0;
    long fail_504_every = 0;
    std::set<std::string> denied;
    std::set<std::string> no_mailbox;  // users without an Exchange mailbox
    long delta_max_page = 1000;
    int threads = 256;
    bool quiet = false;
};

// ---------------------------------------------------------------- data model
struct Message {
    std::string id;
    std::shared_ptr<const std::string> raw;
    std::string received;  // ISO 8601
    std::string subject;
    std::string message_id;
    int folder = 0;
    bool removed = false;
    std::uint64_t change_seq = 0;
};

struct Folder {
    std::string id;
    std::string name;  // display name
    std::string path;
    int parent = -1;   // -1: top level
    std::vector<int> children;
    bool hidden = false;
    bool search = false;  // virtual: shows Inbox
};

struct Mailbox {
    std::string upn;
    std::string id;
    bool has_mailbox = true;
    std::vector<Folder> folders;
    std::vector<Message> messages;
    std::unordered_map<std::string, std::size_t> by_id;
    std::uint64_t seq = 0;
    std::uint64_t generation = 1;
    bool denied = false;
    // limits
    int inflight = 0;
    int max_inflight = 0;
    double window_start = 0;
    long window_count = 0;
    // stats
    long requests = 0, values = 0, throttled_rate = 0, throttled_conc = 0, throttled_injected = 0;
};

struct Stats {
    std::atomic<long> requests{0}, token_requests{0}, value_requests{0}, list_requests{0}, delta_requests{0},
        folder_requests{0}, user_requests{0}, other_requests{0}, status_429{0}, status_429_limit{0},
        status_429_injected{0}, status_503{0}, status_504{0}, status_401{0}, status_403{0}, status_410{0},
        mailbox_requests{0};
    std::atomic<unsigned long long> value_bytes{0};
};

Options opt;
std::vector<std::unique_ptr<Mailbox>> mailboxes;
std::unordered_map<std::string, Mailbox*> mailbox_by_key;  // lower-case upn and id
std::shared_mutex data_mu;                                  // mailbox contents
std::mutex limit_mu;                                        // limiter counters
std::mutex token_mu;
std::unordered_map<std::string, Clock::time_point> tokens;
Stats stats;
const auto t0 = Clock::now();

double now_s() { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string b64url(const std::string& in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    int val = 0, bits = -6;
    for (unsigned char c : in) {
        val = (val << 8) + c;
        bits += 8;
        while (bits >= 0) {
            out.push_back(tbl[(val >> bits) & 0x3F]);
            bits -= 6;
        }
    }
    if (bits > -6) out.push_back(tbl[((val << 8) >> (bits + 8)) & 0x3F]);
    return out;
}

std::string unb64url(const std::string& in) {
    std::string out;
    int val = 0, bits = -8;
    for (unsigned char c : in) {
        int d;
        if (c >= 'A' && c <= 'Z') d = c - 'A';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
        else if (c >= '0' && c <= '9') d = c - '0' + 52;
        else if (c == '-') d = 62;
        else if (c == '_') d = 63;
        else return "";
        val = (val << 6) + d;
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xFF));
            bits -= 8;
        }
    }
    return out;
}

std::string iso_time(long epoch) {
    std::time_t t = epoch;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string header_value(const std::string& raw, const std::string& name) {
    // First occurrence of `name:` in the header block, unfolded; good enough for subjects and ids.
    std::size_t pos = 0;
    const std::string lname = lower(name) + ":";
    while (pos < raw.size()) {
        std::size_t eol = raw.find('\n', pos);
        if (eol == std::string::npos) eol = raw.size();
        std::string line = raw.substr(pos, eol - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        if (lower(line.substr(0, lname.size())) == lname) {
            std::string v = line.substr(lname.size());
            std::size_t next = eol + 1;
            while (next < raw.size() && (raw[next] == ' ' || raw[next] == '\t')) {
                std::size_t e2 = raw.find('\n', next);
                if (e2 == std::string::npos) e2 = raw.size();
                std::string cont = raw.substr(next, e2 - next);
                if (!cont.empty() && cont.back() == '\r') cont.pop_back();
                v += cont;
                next = e2 + 1;
            }
            auto b = v.find_first_not_of(" \t");
            auto e = v.find_last_not_of(" \t");
            return b == std::string::npos ? "" : v.substr(b, e - b + 1);
        }
        pos = eol + 1;
    }
    return "";
}

// Subjects may carry 8-bit bytes; JSON output must be valid UTF-8.
std::string utf8_safe(const std::string& s) {
    std::string out;
    for (unsigned char c : s) out.push_back(c < 0x80 ? static_cast<char>(c) : '?');
    return out;
}

// ---------------------------------------------------------------- loading
std::vector<std::string> load_mbox(const std::string& file) {
    std::string data;
    bool zst = file.size() > 4 && file.substr(file.size() - 4) == ".zst";
    if (zst) {
        std::string cmd = "zstd -dc --long=27 '" + file + "'";
        FILE* p = popen(cmd.c_str(), "r");
        if (!p) throw std::runtime_error("cannot run zstd");
        char buf[1 << 16];
        std::size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
            data.append(buf, n);
            if (opt.limit && data.size() > static_cast<std::size_t>(opt.limit) * 400000) break;
        }
        pclose(p);
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read " + file);
        std::ostringstream ss;
        ss << in.rdbuf();
        data = ss.str();
    }
    std::vector<std::string> out;
    std::size_t pos = 0;
    auto is_from = [&](std::size_t p) { return data.compare(p, 5, "From ") == 0; };
    if (!is_from(0)) throw std::runtime_error(file + ": not an mbox");
    while (pos < data.size()) {
        std::size_t body = data.find('\n', pos);
        if (body == std::string::npos) break;
        body += 1;
        // next From_ line preceded by an empty line
        std::size_t next = body;
        std::size_t end;
        for (;;) {
            std::size_t f = data.find("\n\nFrom ", next);
            if (f == std::string::npos) {
                end = data.size();
                next = data.size();
                break;
            }
            end = f + 1;  // keep the message's last newline, drop the separator line
            next = f + 2;
            break;
        }
        std::string msg;
        msg.reserve(end - body);
        std::size_t lp = body;
        while (lp < end) {
            std::size_t le = data.find('\n', lp);
            if (le == std::string::npos || le >= end) le = end - 1;
            std::size_t q = lp;
            while (q < le && data[q] == '>') ++q;
            if (q > lp && data.compare(q, 5, "From ") == 0) lp += 1;  // mboxrd unquote
            msg.append(data, lp, le + 1 - lp);
            lp = le + 1;
        }
        if (end == data.size() && !msg.empty() && msg.size() >= 2 && msg.compare(msg.size() - 2, 2, "\n\n") == 0)
            msg.pop_back();  // the final separator
        out.push_back(std::move(msg));
        if (opt.limit && static_cast<long>(out.size()) >= opt.limit) break;
        pos = next;
    }
    return out;
}

std::vector<std::string> load_maildir(const std::string& dir) {
    std::vector<fs::path> files;
    for (const char* sub : {"cur", "new"}) {
        fs::path d = fs::path(dir) / sub;
        if (!fs::exists(d)) continue;
        for (auto& e : fs::directory_iterator(d))
            if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        auto na = std::strtoll(a.filename().c_str(), nullptr, 10);
        auto nb = std::strtoll(b.filename().c_str(), nullptr, 10);
        return na != nb ? na < nb : a.filename() < b.filename();
    });
    std::vector<std::string> out;
    for (auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        out.push_back(ss.str());
        if (opt.limit && static_cast<long>(out.size()) >= opt.limit) break;
    }
    return out;
}

std::string synthetic_message(long i) {
    std::ostringstream m;
    m << "From: Sender " << i % 97 << " <sender" << i % 97 << "@example.org>\n"
      << "To: Archive <archive@" << opt.domain << ">\n"
      << "Subject: Synthetic message " << i << "\n"
      << "Date: " << "Mon, 1 Jan 2024 00:00:00 +0000\n"
      << "Message-ID: <synthetic." << i << "@fake-graph.test>\n"
      << "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
      << "This is synthetic message number " << i << ".\nword" << i << " lorem ipsum dolor sit amet\n";
    return m.str();
}

std::string big_message(long bytes) {
    std::string m = "From: Big Sender <big@example.org>\nTo: archive@" + opt.domain +
                     "\nSubject: A very large message\nDate: Tue, 2 Jan 2024 10:00:00 +0000\n"
                     "Message-ID: <big.1@fake-graph.test>\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/mixed; boundary=\"BIGBOUNDARY\"\n\n"
                     "--BIGBOUNDARY\nContent-Type: text/plain\n\nSee the attachment.\n"
                     "--BIGBOUNDARY\nContent-Type: application/octet-stream; name=\"big.bin\"\n"
                     "Content-Disposition: attachment; filename=\"big.bin\"\n"
                     "Content-Transfer-Encoding: base64\n\n";
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::mt19937 rng(42);
    m.reserve(static_cast<std::size_t>(bytes) + 200);
    while (static_cast<long>(m.size()) < bytes - 40) {
        for (int i = 0; i < 76; ++i) m.push_back(tbl[rng() & 63]);
        m.push_back('\n');
    }
    m += "--BIGBOUNDARY--\n";
    return m;
}

std::string new_message_id(Mailbox& mb) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "AAMkAD%s-%08llx_Rq=", mb.id.substr(0, 8).c_str(),
                  static_cast<unsigned long long>(mb.messages.size() + 1));
    return buf;
}

int folder_index(const Mailbox& mb, const std::string& path) {
    for (std::size_t i = 0; i < mb.folders.size(); ++i)
        if (lower(mb.folders[i].path) == lower(path)) return static_cast<int>(i);
    return -1;
}

void add_message(Mailbox& mb, int folder, std::string raw, long received_epoch) {
    Message m;
    m.id = new_message_id(mb);
    m.subject = utf8_safe(header_value(raw, "Subject"));
    m.message_id = utf8_safe(header_value(raw, "Message-ID"));
    m.received = iso_time(received_epoch);
    m.raw = std::make_shared<const std::string>(std::move(raw));
    m.folder = folder;
    m.change_seq = ++mb.seq;
    mb.by_id[m.id] = mb.messages.size();
    mb.messages.push_back(std::move(m));
}

void build_mailboxes(std::vector<std::string> raws) {
    std::vector<std::string> names = opt.mailbox_names;
    for (int i = static_cast<int>(names.size()); i < opt.mailbox_count; ++i)
        names.push_back("user" + std::to_string(i) + "@" + opt.domain);
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto mb = std::make_unique<Mailbox>();
        mb->upn = names[i];
        char idbuf[64];
        std::snprintf(idbuf, sizeof idbuf, "%08zx-aaaa-bbbb-cccc-%012zx", i + 0x1000, i);
        mb->id = idbuf;
        mb->has_mailbox = !opt.no_mailbox.count(lower(mb->upn));
        mb->denied = opt.denied.count(lower(mb->upn)) > 0;
        // folder tree; "!" prefix hidden, "?" prefix search folder
        for (std::string spec : opt.folders) {
            Folder f;
            if (!spec.empty() && spec[0] == '!') { f.hidden = true; spec.erase(0, 1); }
            if (!spec.empty() && spec[0] == '?') { f.search = true; spec.erase(0, 1); }
            f.path = spec;
            auto slash = spec.rfind('/');
            f.name = slash == std::string::npos ? spec : spec.substr(slash + 1);
            if (slash != std::string::npos) {
                f.parent = folder_index(*mb, spec.substr(0, slash));
                if (f.parent < 0) throw std::runtime_error("folder parent missing for " + spec);
            }
            char fid[96];
            std::snprintf(fid, sizeof fid, "AQMkAD%s-fld%02zu-AAA=", mb->id.substr(0, 8).c_str(), mb->folders.size());
            f.id = fid;
            int idx = static_cast<int>(mb->folders.size());
            if (f.parent >= 0) mb->folders[f.parent].children.push_back(idx);
            mb->folders.push_back(std::move(f));
        }
        mailbox_by_key[lower(mb->upn)] = mb.get();
        mailbox_by_key[lower(mb->id)] = mb.get();
        mailboxes.push_back(std::move(mb));
    }
    std::vector<std::vector<int>> real_folders(mailboxes.size());
    for (std::size_t m = 0; m < mailboxes.size(); ++m)
        for (std::size_t f = 0; f < mailboxes[m]->folders.size(); ++f)
            if (!mailboxes[m]->folders[f].search) real_folders[m].push_back(static_cast<int>(f));
    const long base = 1546300800;  // 2019-01-01
    for (std::size_t i = 0; i < raws.size(); ++i) {
        std::size_t m = i % mailboxes.size();
        std::size_t k = i / mailboxes.size();
        auto& rf = real_folders[m];
        if (rf.empty() || !mailboxes[m]->has_mailbox) continue;
        add_message(*mailboxes[m], rf[k % rf.size()], std::move(raws[i]), base + static_cast<long>(i) * 60);
    }
}

// ---------------------------------------------------------------- helpers
void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(j.dump(), "application/json; odata.metadata=minimal; odata.streaming=true");
}

void graph_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    json j = {{"error",
               {{"code", code},
                {"message", message},
                {"innerError", {{"date", iso_time(std::time(nullptr))}, {"request-id", "00000000-fake"}}}}}};
    send_json(res, status, j);
    if (status == 401) res.set_header("WWW-Authenticate", "Bearer realm=\"\", authorization_uri=\"fake\"");
}

std::string base_url(const httplib::Request& req) { return "http://" + req.get_header_value("Host"); }

std::string pct(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '=') out.push_back(static_cast<char>(c));
        else {
            char b[4];
            std::snprintf(b, sizeof b, "%%%02X", c);
            out += b;
        }
    }
    return out;
}

long prefer_maxpagesize(const httplib::Request& req) {
    long v = 0;
    std::size_t n = req.get_header_value_count("Prefer");
    for (std::size_t i = 0; i < n; ++i) {
        std::string p = req.get_header_value("Prefer", i);
        auto pos = p.find("odata.maxpagesize=");
        if (pos != std::string::npos) v = std::atol(p.c_str() + pos + 18);
    }
    return v;
}

const std::set<std::string> k_message_props = {
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "receivedDateTime", "sentDateTime",
    "hasAttachments", "internetMessageId", "subject", "bodyPreview", "parentFolderId", "conversationId",
    "isRead", "isDraft", "from", "sender", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "body", "flag"};

bool parse_select(const std::string& sel, std::vector<std::string>& out, std::string& bad) {
    out.clear();
    std::stringstream ss(sel);
    std::string p;
    while (std::getline(ss, p, ',')) {
        if (p.empty()) continue;
        if (!k_message_props.count(p)) {
            bad = p;
            return false;
        }
        out.push_back(p);
    }
    return true;
}

json message_json(const Mailbox& mb, const Message& m, const std::vector<std::string>& select) {
    json j;
    j["@odata.etag"] = "W/\"CQAAABYAAAA" + std::to_string(m.change_seq) + "\"";
    auto want = [&](const char* k) { return select.empty() || std::find(select.begin(), select.end(), k) != select.end(); };
    j["id"] = m.id;
    if (want("receivedDateTime")) j["receivedDateTime"] = m.received;
    if (want("sentDateTime")) j["sentDateTime"] = m.received;
    if (want("subject")) j["subject"] = m.subject;
    if (want("internetMessageId")) j["internetMessageId"] = m.message_id;
    if (want("parentFolderId")) j["parentFolderId"] = mb.folders[m.folder].id;
    if (want("hasAttachments")) j["hasAttachments"] = false;
    if (want("isRead")) j["isRead"] = false;
    if (want("lastModifiedDateTime")) j["lastModifiedDateTime"] = m.received;
    if (select.empty()) j["bodyPreview"] = "";
    return j;
}

json folder_json(const Mailbox& mb, int idx) {
    const Folder& f = mb.folders[idx];
    long total = 0;
    int target = f.search ? 0 : idx;
    for (auto& m : mb.messages)
        if (!m.removed && m.folder == target) ++total;
    json j = {{"id", f.id},
              {"displayName", f.name},
              {"parentFolderId", f.parent >= 0 ? mb.folders[f.parent].id : "AQMkAD-msgfolderroot"},
              {"childFolderCount", f.children.size()},
              {"unreadItemCount", 0},
              {"totalItemCount", total},
              {"isHidden", f.hidden}};
    if (f.search) j["@odata.type"] = "#microsoft.graph.mailSearchFolder";
    return j;
}

int find_folder(const Mailbox& mb, const std::string& key) {
    std::string k = lower(key);
    if (k == "inbox") return folder_index(mb, "Inbox");
    if (k == "sentitems") return folder_index(mb, "Sent Items");
    if (k == "archive") return folder_index(mb, "Archive");
    for (std::size_t i = 0; i < mb.folders.size(); ++i)
        if (mb.folders[i].id == key) return static_cast<int>(i);
    return -1;
}

std::vector<std::string> split_path(const std::string& p) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= p.size()) {
        auto s = p.find('/', pos);
        if (s == std::string::npos) s = p.size();
        if (s > pos) out.push_back(p.substr(pos, s - pos));
        pos = s + 1;
    }
    return out;
}

std::vector<std::string> split_list(const std::string& s, char sep);

// ---------------------------------------------------------------- auth
bool check_bearer(const httplib::Request& req, httplib::Response& res) {
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) != 0 || auth.size() == 7) {
        stats.status_401++;
        graph_error(res, 401, "InvalidAuthenticationToken", "Access token is empty.");
        return false;
    }
    std::string tok = auth.substr(7);
    std::lock_guard lk(token_mu);
    auto it = tokens.find(tok);
    if (it == tokens.end()) {
        stats.status_401++;
        graph_error(res, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.");
        return false;
    }
    if (Clock::now() >= it->second) {
        stats.status_401++;
        graph_error(res, 401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.");
        return false;
    }
    return true;
}

void token_error(httplib::Response& res, int status, const std::string& error, long code, const std::string& text) {
    json j = {{"error", error},
              {"error_description", "AADSTS" + std::to_string(code) + ": " + text +
                                        "\r\nTrace ID: 0000\r\nCorrelation ID: 0000\r\nTimestamp: " + iso_time(std::time(nullptr))},
              {"error_codes", {code}},
              {"timestamp", iso_time(std::time(nullptr))},
              {"trace_id", "0000"},
              {"correlation_id", "0000"}};
    send_json(res, status, j);
}

void token_device_code(httplib::Response& res, const std::string& tenant, const httplib::Params& form);
void token_refresh(httplib::Response& res, const std::string& tenant, const httplib::Params& form);
void token_auth_code(httplib::Response& res, const std::string& tenant, const httplib::Params& form);

void handle_token(const httplib::Request& req, httplib::Response& res) {
    stats.requests++;
    stats.token_requests++;
    std::string tenant = req.matches[1];
    if (lower(tenant) != lower(opt.tenant) && tenant != "organizations" && tenant != "common") {
        token_error(res, 400, "invalid_request", 90002,
                    "Tenant '" + tenant + "' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.");
        return;
    }
    httplib::Params form;
    httplib::detail::parse_query_text(req.body, form);
    auto get = [&](const char* k) {
        auto it = form.find(k);
        return it == form.end() ? std::string() : it->second;
    };
    if (get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code") return token_device_code(res, tenant, form);
    if (get("grant_type") == "refresh_token") return token_refresh(res, tenant, form);
    if (get("grant_type") == "authorization_code") return token_auth_code(res, tenant, form);
    if (get("grant_type") != "client_credentials") {
        token_error(res, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
        return;
    }
    if (get("client_id").empty() || get("scope").empty()) {
        token_error(res, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id' / 'scope'.");
        return;
    }
    if (get("client_id") != opt.client_id) {
        token_error(res, 400, "unauthorized_client", 700016,
                    "Application with identifier '" + get("client_id") + "' was not found in the directory '" + tenant + "'.");
        return;
    }
    if (get("client_secret") != opt.client_secret) {
        token_error(res, 401, "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" +
                        opt.client_id + "'.");
        return;
    }
    std::string scope = get("scope");
    if (scope.size() < 9 || scope.substr(scope.size() - 9) != "/.default" || scope.find(' ') != std::string::npos) {
        token_error(res, 400, "invalid_scope", 70011,
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid.");
        return;
    }
    static std::atomic<long> counter{0};
    std::string tok = "eyJ0eXAiOiJKV1Qi.fake." + std::to_string(++counter) + "." + std::to_string(std::rand());
    {
        std::lock_guard lk(token_mu);
        tokens[tok] = Clock::now() + std::chrono::seconds(opt.token_lifetime);
    }
    send_json(res, 200, {{"token_type", "Bearer"}, {"expires_in", opt.token_lifetime}, {"ext_expires_in", opt.token_lifetime}, {"access_token", tok}});
}

// ---------------------------------------------------------------- delegated flows
// Device code (scripted poll outcomes), authorization code + PKCE, refresh with rotation,
// revocation and expiry of refresh tokens, introspection of the access tokens issued.
struct DelegatedToken {
    std::string user, scope;
    Clock::time_point expires;
};
struct RefreshGrant {
    std::string user, scope, client_id;
};
struct DeviceGrant {
    std::string user_code, scope, client_id;
    Clock::time_point expires;
    bool used = false;
};
struct AuthCode {
    std::string user, scope, client_id, redirect_uri, challenge, method;
    Clock::time_point expires;
};
std::mutex deleg_mu;
std::unordered_map<std::string, DelegatedToken> delegated_tokens;  // access token -> who
std::unordered_map<std::string, RefreshGrant> refresh_grants;      // valid refresh tokens
std::set<std::string> expired_refresh;                             // expired by /_control/expire-refresh-tokens
std::unordered_map<std::string, DeviceGrant> device_grants;        // device_code -> grant
std::unordered_map<std::string, AuthCode> auth_codes;
std::deque<std::string> device_script;  // outcomes of the next polls: pending slow_down approve decline expire bad_code
std::string sign_in_user;               // who approves device codes and authorize requests
long device_interval = 5;
long device_expires_in = 900;
std::atomic<long> delegated_counter{0};
struct DelegatedStats {
    std::atomic<long> devicecode{0}, device_polls{0}, refreshes{0}, rotations{0}, auth_codes_redeemed{0}, invalid_grants{0};
} dstats;

std::string random_token(const std::string& prefix) {
    static std::mutex mu;
    static std::mt19937_64 rng(std::random_device{}());
    std::lock_guard lk(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()));
    return prefix + std::to_string(++delegated_counter) + "." + buf;
}

std::string s256(const std::string& verifier) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), d);
    return b64url(std::string(reinterpret_cast<const char*>(d), sizeof d));
}

std::string id_token_for(const std::string& user) {
    json h = {{"alg", "none"}, {"typ", "JWT"}};
    json p = {{"aud", opt.client_id}, {"iss", "https://login.microsoftonline.com/fake/v2.0"}, {"preferred_username", user},
              {"name", user}, {"tid", opt.tenant}};
    return b64url(h.dump()) + "." + b64url(p.dump()) + ".";
}

std::string scope_without_oidc(const std::string& scope) {
    std::string out;
    std::stringstream ss(scope);
    for (std::string s; ss >> s;)
        if (s != "openid" && s != "profile" && s != "email") out += (out.empty() ? "" : " ") + s;
    return out;
}

// A granted sign-in: access token (for the resource scopes) and a new refresh token.
json issue_delegated(const std::string& user, const std::string& scope, const std::string& client_id) {
    std::string at = opt.delegated_token_prefix.empty() ? random_token("eyJ0eXAiOiJKV1Qi.deleg.") : opt.delegated_token_prefix + user;
    std::string rt = random_token("0.AAAA-rt.");
    {
        std::lock_guard lk(deleg_mu);
        delegated_tokens[at] = {user, scope, Clock::now() + std::chrono::seconds(opt.token_lifetime)};
        refresh_grants[rt] = {user, scope, client_id};
    }
    std::string granted = scope_without_oidc(scope);
    json j = {{"token_type", "Bearer"}, {"scope", granted}, {"expires_in", opt.token_lifetime},
              {"ext_expires_in", opt.token_lifetime}, {"access_token", at}};
    if (scope.find("offline_access") != std::string::npos) j["refresh_token"] = rt;
    if (scope.find("openid") != std::string::npos) j["id_token"] = id_token_for(user);
    return j;
}

// Checks client_id (and a client secret when one is sent: a public client sends none).
bool check_client(httplib::Response& res, const std::string& tenant, const std::string& client_id, const std::string& secret) {
    if (client_id != opt.client_id) {
        token_error(res, 400, "unauthorized_client", 700016,
                    "Application with identifier '" + client_id + "' was not found in the directory '" + tenant + "'.");
        return false;
    }
    if (!secret.empty() && secret != opt.client_secret) {
        token_error(res, 401, "invalid_client", 7000215, "Invalid client secret provided.");
        return false;
    }
    return true;
}

void handle_devicecode(const httplib::Request& req, httplib::Response& res) {
    stats.requests++;
    dstats.devicecode++;
    std::string tenant = req.matches[1];
    if (lower(tenant) != lower(opt.tenant) && tenant != "organizations" && tenant != "common") {
        token_error(res, 400, "invalid_request", 90002, "Tenant '" + tenant + "' not found.");
        return;
    }
    httplib::Params form;
    httplib::detail::parse_query_text(req.body, form);
    auto get = [&](const char* k) { auto it = form.find(k); return it == form.end() ? std::string() : it->second; };
    if (!check_client(res, tenant, get("client_id"), "")) return;
    if (get("scope").empty()) {
        token_error(res, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
        return;
    }
    std::string dc = random_token("DAQABAAEAAAD-dc.");
    static std::atomic<long> n{0};
    char uc[16];
    std::snprintf(uc, sizeof uc, "FAKE%05ld", ++n);
    {
        std::lock_guard lk(deleg_mu);
        device_grants[dc] = {uc, get("scope"), get("client_id"), Clock::now() + std::chrono::seconds(device_expires_in)};
    }
    std::string uri = base_url(req) + "/devicelogin";
    send_json(res, 200, {{"device_code", dc}, {"user_code", uc}, {"verification_uri", uri}, {"expires_in", device_expires_in},
                         {"interval", device_interval},
                         {"message", std::string("To sign in, use a web browser to open the page ") + uri + " and enter the code " + uc +
                                         " to authenticate."}});
}

void token_device_code(httplib::Response& res, const std::string& tenant, const httplib::Params& form) {
    auto get = [&](const char* k) { auto it = form.find(k); return it == form.end() ? std::string() : it->second; };
    dstats.device_polls++;
    if (!check_client(res, tenant, get("client_id"), get("client_secret"))) return;
    std::string outcome = "pending";
    DeviceGrant g;
    {
        std::lock_guard lk(deleg_mu);
        auto it = device_grants.find(get("device_code"));
        if (it == device_grants.end() || it->second.used) {
            token_error(res, 400, "bad_verification_code", 70019, "Verification code expired or not recognised.");
            return;
        }
        if (!device_script.empty()) {
            outcome = device_script.front();
            device_script.pop_front();
        }
        if (Clock::now() >= it->second.expires) outcome = "expire";
        if (outcome == "approve" || outcome == "expire") it->second.used = true;
        g = it->second;
    }
    if (outcome == "pending")
        token_error(res, 400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.");
    else if (outcome == "slow_down")
        token_error(res, 400, "slow_down", 70016, "Polling too fast: slow down.");
    else if (outcome == "decline")
        token_error(res, 400, "authorization_declined", 70000, "The user declined the sign-in.");
    else if (outcome == "expire")
        token_error(res, 400, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.");
    else if (outcome == "bad_code")
        token_error(res, 400, "bad_verification_code", 70019, "Verification code expired or not recognised.");
    else
        send_json(res, 200, issue_delegated(sign_in_user, g.scope, g.client_id));
}

void token_refresh(httplib::Response& res, const std::string& tenant, const httplib::Params& form) {
    auto get = [&](const char* k) { auto it = form.find(k); return it == form.end() ? std::string() : it->second; };
    dstats.refreshes++;
    if (!check_client(res, tenant, get("client_id"), get("client_secret"))) return;
    RefreshGrant g;
    {
        std::lock_guard lk(deleg_mu);
        std::string rt = get("refresh_token");
        if (expired_refresh.count(rt)) {
            dstats.invalid_grants++;
            token_error(res, 400, "invalid_grant", 700082,
                        "The refresh token has expired due to inactivity. The token was issued on 2026-08-01 and was inactive for 90.00:00:00.");
            return;
        }
        auto it = refresh_grants.find(rt);
        if (it == refresh_grants.end()) {
            dstats.invalid_grants++;
            token_error(res, 400, "invalid_grant", 50173,
                        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.");
            return;
        }
        if (it->second.client_id != get("client_id")) {
            dstats.invalid_grants++;
            token_error(res, 400, "invalid_grant", 70000, "Provided grant is invalid or malformed.");
            return;
        }
        g = it->second;
        refresh_grants.erase(it);  // rotation: the old refresh token is spent
    }
    dstats.rotations++;
    std::string scope = get("scope").empty() ? g.scope : get("scope");
    send_json(res, 200, issue_delegated(g.user, scope, g.client_id));
}

void token_auth_code(httplib::Response& res, const std::string& tenant, const httplib::Params& form) {
    auto get = [&](const char* k) { auto it = form.find(k); return it == form.end() ? std::string() : it->second; };
    if (!check_client(res, tenant, get("client_id"), get("client_secret"))) return;
    AuthCode c;
    {
        std::lock_guard lk(deleg_mu);
        auto it = auth_codes.find(get("code"));
        if (it == auth_codes.end()) {
            dstats.invalid_grants++;
            token_error(res, 400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
            return;
        }
        c = it->second;
        auth_codes.erase(it);  // single use, whatever the outcome
    }
    if (Clock::now() >= c.expires) {
        token_error(res, 400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.");
        return;
    }
    if (c.client_id != get("client_id")) {
        token_error(res, 400, "invalid_grant", 70000, "Provided grant is invalid or malformed.");
        return;
    }
    if (c.redirect_uri != get("redirect_uri")) {
        token_error(res, 400, "invalid_grant", 70000, "The reply URL does not match the one used in the authorization request.");
        return;
    }
    if (!c.challenge.empty()) {
        std::string v = get("code_verifier");
        if (v.empty()) {
            token_error(res, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'code_verifier'.");
            return;
        }
        std::string expect = c.method == "S256" ? s256(v) : v;
        if (expect != c.challenge) {
            dstats.invalid_grants++;
            token_error(res, 400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.");
            return;
        }
    }
    dstats.auth_codes_redeemed++;
    send_json(res, 200, issue_delegated(c.user, c.scope, c.client_id));
}

// The browser side of the authorization code flow: the configured user "signs in" at once and
// is redirected back with a code (or with error=access_denied after /_control/device-script decline).
void handle_authorize(const httplib::Request& req, httplib::Response& res) {
    stats.requests++;
    auto p = [&](const char* k) { return req.has_param(k) ? req.get_param_value(k) : std::string(); };
    if (p("client_id") != opt.client_id) {
        res.status = 400;
        res.set_content("AADSTS700016: Application with identifier '" + p("client_id") + "' was not found.", "text/plain");
        return;
    }
    if (p("response_type") != "code" || p("redirect_uri").empty()) {
        res.status = 400;
        res.set_content("AADSTS900144: response_type=code and redirect_uri are required.", "text/plain");
        return;
    }
    std::string sep = p("redirect_uri").find('?') == std::string::npos ? "?" : "&";
    std::string code = random_token("0.AAAA-code.");
    {
        std::lock_guard lk(deleg_mu);
        if (!device_script.empty() && device_script.front() == "decline") {
            device_script.pop_front();
            res.set_redirect(p("redirect_uri") + sep + "error=access_denied&error_description=" +
                                 pct("AADSTS65004: User declined to consent to access the app.") + "&state=" + pct(p("state")),
                             302);
            return;
        }
        auth_codes[code] = {sign_in_user, p("scope"), p("client_id"), p("redirect_uri"), p("code_challenge"),
                            p("code_challenge_method").empty() ? "plain" : p("code_challenge_method"),
                            Clock::now() + std::chrono::seconds(600)};
    }
    res.set_redirect(p("redirect_uri") + sep + "code=" + pct(code) + "&state=" + pct(p("state")) + "&session_state=fake", 302);
}

// What a resource server (the SMTP test server) asks: is this bearer token valid, and whose?
void handle_introspect(const httplib::Request& req, httplib::Response& res) {
    std::string tok = req.has_param("token") ? req.get_param_value("token") : std::string();
    if (tok.empty()) {
        httplib::Params form;
        httplib::detail::parse_query_text(req.body, form);
        if (auto it = form.find("token"); it != form.end()) tok = it->second;
    }
    std::lock_guard lk(deleg_mu);
    auto it = delegated_tokens.find(tok);
    if (it == delegated_tokens.end() || Clock::now() >= it->second.expires) {
        send_json(res, 200, {{"active", false}});
        return;
    }
    send_json(res, 200, {{"active", true}, {"username", it->second.user}, {"scope", scope_without_oidc(it->second.scope)}});
}

void install_delegated_control(httplib::Server& svr) {
    // ?outcomes=pending,slow_down,approve&user=alice@contoso.test[&interval=1&expires_in=900]
    svr.Post("/_control/device-script", [](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lk(deleg_mu);
        device_script.clear();
        if (req.has_param("outcomes"))
            for (auto& o : split_list(req.get_param_value("outcomes"), ',')) device_script.push_back(o);
        if (req.has_param("user")) sign_in_user = req.get_param_value("user");
        if (req.has_param("interval")) device_interval = std::stol(req.get_param_value("interval"));
        if (req.has_param("expires_in")) device_expires_in = std::stol(req.get_param_value("expires_in"));
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/revoke-refresh-tokens", [](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lk(deleg_mu);
        std::string user = req.has_param("user") ? lower(req.get_param_value("user")) : "";
        for (auto it = refresh_grants.begin(); it != refresh_grants.end();)
            it = user.empty() || lower(it->second.user) == user ? refresh_grants.erase(it) : std::next(it);
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/expire-refresh-tokens", [](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lk(deleg_mu);
        for (auto& [rt, g] : refresh_grants) expired_refresh.insert(rt);
        refresh_grants.clear();
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/expire-access-tokens", [](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lk(deleg_mu);
        for (auto& [t, d] : delegated_tokens) d.expires = Clock::now();
        send_json(res, 200, {{"ok", true}});
    });
    svr.Get("/_delegated", [](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lk(deleg_mu);
        json users = json::array();
        for (auto& [rt, g] : refresh_grants) users.push_back(g.user);
        send_json(res, 200, {{"devicecode", dstats.devicecode.load()}, {"device_polls", dstats.device_polls.load()},
                             {"refreshes", dstats.refreshes.load()}, {"rotations", dstats.rotations.load()},
                             {"auth_codes_redeemed", dstats.auth_codes_redeemed.load()},
                             {"invalid_grants", dstats.invalid_grants.load()}, {"valid_refresh_tokens", refresh_grants.size()},
                             {"refresh_token_users", users}});
    });
    svr.Post("/_introspect", handle_introspect);
    svr.Get("/_introspect", handle_introspect);
}

// ---------------------------------------------------------------- limits
// Returns false (and fills res) when the request is throttled. On true, the caller must release().
bool admit(Mailbox& mb, httplib::Response& res) {
    long n = ++stats.mailbox_requests;
    std::lock_guard lk(limit_mu);
    mb.requests++;
    for (auto& s : opt.storms) {
        if (n >= s.at && n < s.at + s.len) {
            mb.throttled_injected++;
            stats.status_429++;
            stats.status_429_injected++;
            graph_error(res, 429, "TooManyRequests", "Please retry again later.");
            if (s.retry_after > 0) res.set_header("Retry-After", std::to_string(s.retry_after));
            return false;
        }
    }
    if (opt.rate_limit > 0) {
        double t = now_s();
        if (t - mb.window_start >= opt.rate_window) {
            mb.window_start = t - std::fmod(t - mb.window_start, opt.rate_window);
            mb.window_count = 0;
        }
        mb.window_count++;  // throttled requests count too
        if (mb.window_count > opt.rate_limit) {
            mb.throttled_rate++;
            stats.status_429++;
            stats.status_429_limit++;
            graph_error(res, 429, "ApplicationThrottled", "Application is over its MailboxRequestRate limit.");
            long ra = static_cast<long>(std::ceil(mb.window_start + opt.rate_window - t));
            res.set_header("Retry-After", std::to_string(std::max(1L, ra)));
            return false;
        }
    }
    if (opt.concurrency > 0 && mb.inflight >= opt.concurrency) {
        mb.throttled_conc++;
        stats.status_429++;
        stats.status_429_limit++;
        graph_error(res, 429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.");
        res.set_header("Retry-After", std::to_string(opt.conc_retry_after));
        return false;
    }
    mb.inflight++;
    mb.max_inflight = std::max(mb.max_inflight, mb.inflight);
    if (opt.fail_503_every > 0 && n % opt.fail_503_every == 0) {
        mb.inflight--;
        stats.status_503++;
        graph_error(res, 503, "ServiceUnavailable", "The service is temporarily unavailable.");
        return false;
    }
    if (opt.fail_504_every > 0 && n % opt.fail_504_every == 0) {
        mb.inflight--;
        stats.status_504++;
        graph_error(res, 504, "GatewayTimeout", "The gateway timed out.");
        return false;
    }
    return true;
}

void release(Mailbox& mb) {
    std::lock_guard lk(limit_mu);
    mb.inflight--;
}

void latency() {
    if (opt.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt.latency_ms));
}

// ---------------------------------------------------------------- delta
struct DeltaState {
    std::uint64_t gen = 0;
    int folder = 0;
    std::uint64_t base = 0;    // changes after this seq
    std::uint64_t target = 0;  // up to this seq (fixed for the round)
    long offset = 0;
    std::string select;
};

std::string encode_state(const DeltaState& s) {
    json j = {{"g", s.gen}, {"f", s.folder}, {"b", s.base}, {"t", s.target}, {"o", s.offset}, {"s", s.select}};
    return b64url(j.dump());
}

bool decode_state(const std::string& tok, DeltaState& s) {
    try {
        json j = json::parse(unb64url(tok));
        s.gen = j.at("g");
        s.folder = j.at("f");
        s.base = j.at("b");
        s.target = j.at("t");
        s.offset = j.at("o");
        s.select = j.at("s");
        return true;
    } catch (...) {
        return false;
    }
}

void handle_delta(const httplib::Request& req, httplib::Response& res, Mailbox& mb, int folder) {
    stats.delta_requests++;
    DeltaState st;
    std::string skip = req.get_param_value("$skiptoken");
    std::string dtok = req.get_param_value("$deltatoken");
    std::shared_lock lk(data_mu);
    if (!skip.empty() || !dtok.empty()) {
        if (!decode_state(skip.empty() ? dtok : skip, st) || st.folder != folder) {
            graph_error(res, 400, "BadRequest", "Invalid delta token.");
            return;
        }
        if (st.gen != mb.generation) {
            stats.status_410++;
            graph_error(res, 410, "SyncStateNotFound",
                        "The sync state generation is not found; generation=" + std::to_string(st.gen));
            return;
        }
        if (!dtok.empty()) {  // a new round: changes since the last one
            st.base = st.target;
            st.target = mb.seq;
            st.offset = 0;
        }
    } else {
        st.gen = mb.generation;
        st.folder = folder;
        st.base = 0;
        st.target = mb.seq;
        st.offset = 0;
        st.select = req.get_param_value("$select");
    }
    std::vector<std::string> select;
    std::string bad;
    if (!parse_select(st.select, select, bad)) {
        graph_error(res, 400, "RequestBroker--ParseUri", "Could not find a property named '" + bad + "' on type 'microsoft.graph.message'.");
        return;
    }
    long page = prefer_maxpagesize(req);
    if (page <= 0) page = 10;
    page = std::min(page, opt.delta_max_page);
    std::vector<const Message*> items;
    for (auto& m : mb.messages) {
        if (m.folder != folder || m.change_seq <= st.base || m.change_seq > st.target) continue;
        if (st.base == 0 && m.removed) continue;
        items.push_back(&m);
    }
    std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->change_seq < b->change_seq; });
    json value = json::array();
    long end = std::min<long>(static_cast<long>(items.size()), st.offset + page);
    for (long i = st.offset; i < end; ++i) {
        const Message& m = *items[i];
        if (m.removed) {
            value.push_back({{"@odata.type", "#microsoft.graph.message"}, {"id", m.id}, {"@removed", {{"reason", "deleted"}}}});
        } else {
            json j = message_json(mb, m, select);
            j["@odata.type"] = "#microsoft.graph.message";
            value.push_back(std::move(j));
        }
    }
    std::string link = base_url(req) + "/v1.0/users/" + pct(mb.upn) + "/mailFolders/" + pct(mb.folders[folder].id) + "/messages/delta?";
    json out = {{"@odata.context", base_url(req) + "/v1.0/$metadata#Collection(message)"}, {"value", value}};
    if (end < static_cast<long>(items.size())) {
        st.offset = end;
        out["@odata.nextLink"] = link + "%24skiptoken=" + encode_state(st);
    } else {
        st.offset = 0;
        out["@odata.deltaLink"] = link + "%24deltatoken=" + encode_state(st);
    }
    send_json(res, 200, out);
}

// ---------------------------------------------------------------- graph router
void handle_graph(const httplib::Request& req, httplib::Response& res) {
    stats.requests++;
    if (!check_bearer(req, res)) return;
    auto seg = split_path(req.path);  // v1.0, users, ...
    if (seg.size() < 2 || seg[0] != "v1.0") {
        stats.other_requests++;
        graph_error(res, 400, "BadRequest", "Invalid version.");
        return;
    }
    if (seg[1] == "me") {
        stats.other_requests++;
        graph_error(res, 400, "BadRequest", "/me request is only valid with delegated authentication flow.");
        return;
    }
    if (seg[1] != "users") {
        stats.other_requests++;
        graph_error(res, 400, "BadRequest", "Resource not found for the segment '" + seg[1] + "'.");
        return;
    }
    if (seg.size() == 2) {  // list users
        stats.user_requests++;
        long top = req.has_param("$top") ? std::atol(req.get_param_value("$top").c_str()) : 100;
        top = std::clamp(top, 1L, 999L);
        long skip = req.has_param("$skiptoken") ? std::atol(unb64url(req.get_param_value("$skiptoken")).c_str()) : 0;
        json value = json::array();
        long end = std::min<long>(static_cast<long>(mailboxes.size()), skip + top);
        for (long i = skip; i < end; ++i) {
            auto& mb = *mailboxes[i];
            value.push_back({{"id", mb.id}, {"userPrincipalName", mb.upn}, {"mail", mb.has_mailbox ? json(mb.upn) : json(nullptr)},
                             {"displayName", mb.upn.substr(0, mb.upn.find('@'))}});
        }
        json out = {{"value", value}};
        if (end < static_cast<long>(mailboxes.size()))
            out["@odata.nextLink"] = base_url(req) + "/v1.0/users?%24top=" + std::to_string(top) + "&%24skiptoken=" + b64url(std::to_string(end));
        send_json(res, 200, out);
        return;
    }
    auto it = mailbox_by_key.find(lower(seg[2]));
    if (it == mailbox_by_key.end()) {
        stats.other_requests++;
        graph_error(res, 404, "ErrorInvalidUser", "The requested user '" + seg[2] + "' is invalid.");
        return;
    }
    Mailbox& mb = *it->second;
    if (seg.size() == 3) {
        stats.user_requests++;
        send_json(res, 200, {{"id", mb.id}, {"userPrincipalName", mb.upn}, {"mail", mb.upn}});
        return;
    }
    if (mb.denied) {
        stats.status_403++;
        graph_error(res, 403, "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.");
        return;
    }
    if (!mb.has_mailbox) {
        graph_error(res, 404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise.");
        return;
    }
    if (!admit(mb, res)) {
        latency();
        return;
    }
    latency();
    struct Release {
        Mailbox& mb;
        ~Release() { release(mb); }
    } rel{mb};

    const std::string& what = seg[3];
    if (what == "mailFolders") {
        std::shared_lock lk(data_mu);
        if (seg.size() == 4 || (seg.size() == 6 && seg[5] == "childFolders")) {
            stats.folder_requests++;
            int parent = -1;
            if (seg.size() == 6) {
                parent = find_folder(mb, seg[4]);
                if (parent < 0) {
                    graph_error(res, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
                    return;
                }
            }
            bool hidden = req.get_param_value("includeHiddenFolders") == "true";
            std::vector<int> list;
            for (std::size_t i = 0; i < mb.folders.size(); ++i)
                if (mb.folders[i].parent == parent && (hidden || !mb.folders[i].hidden)) list.push_back(static_cast<int>(i));
            long top = req.has_param("$top") ? std::atol(req.get_param_value("$top").c_str()) : 10;
            top = std::clamp(top, 1L, 1000L);
            long skip = req.has_param("$skip") ? std::atol(req.get_param_value("$skip").c_str()) : 0;
            json value = json::array();
            long end = std::min<long>(static_cast<long>(list.size()), skip + top);
            for (long i = skip; i < end; ++i) value.push_back(folder_json(mb, list[i]));
            json out = {{"value", value}};
            if (end < static_cast<long>(list.size())) {
                std::string link = base_url(req) + "/v1.0/users/" + pct(mb.upn) + "/mailFolders";
                if (parent >= 0) link += "/" + pct(mb.folders[parent].id) + "/childFolders";
                link += "?";
                if (hidden) link += "includeHiddenFolders=true&";
                out["@odata.nextLink"] = link + "%24top=" + std::to_string(top) + "&%24skip=" + std::to_string(end);
            }
            send_json(res, 200, out);
            return;
        }
        int folder = find_folder(mb, seg[4]);
        if (folder < 0) {
            stats.other_requests++;
            graph_error(res, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
            return;
        }
        if (seg.size() == 5) {
            stats.folder_requests++;
            send_json(res, 200, folder_json(mb, folder));
            return;
        }
        if (seg.size() == 7 && seg[5] == "messages" && seg[6] == "delta") {
            lk.unlock();
            if (mb.folders[folder].search) {
                graph_error(res, 400, "ErrorInvalidRequest", "Delta is not supported on search folders.");
                return;
            }
            handle_delta(req, res, mb, folder);
            return;
        }
        if (seg.size() == 6 && seg[5] == "messages") {
            stats.list_requests++;
            int target = mb.folders[folder].search ? 0 : folder;
            std::vector<const Message*> items;
            for (auto& m : mb.messages)
                if (!m.removed && m.folder == target) items.push_back(&m);
            std::string orderby = req.get_param_value("$orderby");
            if (orderby == "receivedDateTime desc" || orderby == "receivedDateTime+desc")
                std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->received > b->received; });
            else if (!orderby.empty() && orderby != "receivedDateTime" && orderby != "receivedDateTime asc") {
                graph_error(res, 400, "BadRequest", "The $orderby expression is not supported.");
                return;
            }
            std::vector<std::string> select;
            std::string bad;
            if (!parse_select(req.get_param_value("$select"), select, bad)) {
                graph_error(res, 400, "RequestBroker--ParseUri", "Could not find a property named '" + bad + "' on type 'microsoft.graph.message'.");
                return;
            }
            long top = req.has_param("$top") ? std::atol(req.get_param_value("$top").c_str()) : 10;
            if (top < 1 || top > 1000) {
                graph_error(res, 400, "ErrorInvalidArgument", "The value of $top must be between 1 and 1000.");
                return;
            }
            long skip = req.has_param("$skip") ? std::atol(req.get_param_value("$skip").c_str()) : 0;
            json value = json::array();
            long end = std::min<long>(static_cast<long>(items.size()), skip + top);
            for (long i = skip; i < end; ++i) value.push_back(message_json(mb, *items[i], select));
            json out = {{"value", value}};
            if (end < static_cast<long>(items.size())) {
                std::string link = base_url(req) + "/v1.0/users/" + pct(mb.upn) + "/mailFolders/" + pct(mb.folders[folder].id) +
                                   "/messages?%24top=" + std::to_string(top);
                if (!select.empty()) link += "&%24select=" + pct(req.get_param_value("$select"));
                if (!orderby.empty()) link += "&%24orderby=" + pct(orderby);
                out["@odata.nextLink"] = link + "&%24skip=" + std::to_string(end);
            }
            send_json(res, 200, out);
            return;
        }
        if (seg.size() == 8 && seg[5] == "messages" && seg[7] == "$value") {
            // fall through to $value below with the message id
            seg = {seg[0], seg[1], seg[2], "messages", seg[6], "$value"};
        } else {
            stats.other_requests++;
            graph_error(res, 400, "BadRequest", "Unsupported request.");
            return;
        }
    }
    if (seg[3] == "messages" && seg.size() == 6 && seg[5] == "$value") {
        stats.value_requests++;
        std::shared_ptr<const std::string> raw;
        {
            std::shared_lock lk(data_mu);
            auto mit = mb.by_id.find(seg[4]);
            if (mit == mb.by_id.end() || mb.messages[mit->second].removed) {
                graph_error(res, 404, "ErrorItemNotFound", "The specified object was not found in the store.");
                return;
            }
            raw = mb.messages[mit->second].raw;
        }
        {
            std::lock_guard lk(limit_mu);
            mb.values++;
        }
        stats.value_bytes += raw->size();
        res.status = 200;
        res.set_content(*raw, "message/rfc822");  // not compressed by httplib
        return;
    }
    stats.other_requests++;
    graph_error(res, 400, "BadRequest", "Unsupported request.");
}

// ---------------------------------------------------------------- test hooks
json stats_json() {
    json mbs = json::array();
    std::lock_guard lk(limit_mu);
    for (auto& mb : mailboxes)
        mbs.push_back({{"upn", mb->upn}, {"requests", mb->requests}, {"values", mb->values},
                       {"throttled_rate", mb->throttled_rate}, {"throttled_concurrency", mb->throttled_conc},
                       {"throttled_injected", mb->throttled_injected}, {"max_inflight", mb->max_inflight}});
    return {{"requests", stats.requests.load()},         {"token_requests", stats.token_requests.load()},
            {"value_requests", stats.value_requests.load()}, {"list_requests", stats.list_requests.load()},
            {"delta_requests", stats.delta_requests.load()}, {"folder_requests", stats.folder_requests.load()},
            {"user_requests", stats.user_requests.load()},   {"other_requests", stats.other_requests.load()},
            {"status_429", stats.status_429.load()},         {"status_429_limit", stats.status_429_limit.load()},
            {"status_429_injected", stats.status_429_injected.load()}, {"status_503", stats.status_503.load()},
            {"status_504", stats.status_504.load()},         {"status_401", stats.status_401.load()},
            {"status_403", stats.status_403.load()},         {"status_410", stats.status_410.load()},
            {"value_bytes", stats.value_bytes.load()},       {"mailboxes", mbs}};
}

void reset_stats() {
    std::lock_guard lk(limit_mu);
    for (auto* a : {&stats.requests, &stats.token_requests, &stats.value_requests, &stats.list_requests, &stats.delta_requests,
                    &stats.folder_requests, &stats.user_requests, &stats.other_requests, &stats.status_429,
                    &stats.status_429_limit, &stats.status_429_injected, &stats.status_503, &stats.status_504,
                    &stats.status_401, &stats.status_403, &stats.status_410, &stats.mailbox_requests})
        a->store(0);
    stats.value_bytes = 0;
    for (auto& mb : mailboxes) {
        mb->requests = mb->values = mb->throttled_rate = mb->throttled_conc = mb->throttled_injected = 0;
        mb->max_inflight = 0;
    }
}

Mailbox* control_mailbox(const httplib::Request& req, httplib::Response& res) {
    auto it = mailbox_by_key.find(lower(req.get_param_value("mailbox")));
    if (it == mailbox_by_key.end()) {
        res.status = 404;
        res.set_content("{\"error\":\"no such mailbox\"}", "application/json");
        return nullptr;
    }
    return it->second;
}

void install_control(httplib::Server& svr) {
    svr.Get("/_stats", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, stats_json()); });
    svr.Get("/_dump", [](const httplib::Request& req, httplib::Response& res) {
        std::shared_lock lk(data_mu);
        json out = json::array();
        for (auto& mb : mailboxes) {
            if (req.has_param("mailbox") && lower(req.get_param_value("mailbox")) != lower(mb->upn)) continue;
            for (auto& m : mb->messages)
                out.push_back({{"mailbox", mb->upn}, {"folder", mb->folders[m.folder].path}, {"id", m.id},
                               {"size", m.raw->size()}, {"removed", m.removed}, {"subject", m.subject}});
        }
        send_json(res, 200, out);
    });
    svr.Post("/_control/reset-stats", [](const httplib::Request&, httplib::Response& res) {
        reset_stats();
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/add", [](const httplib::Request& req, httplib::Response& res) {
        Mailbox* mb = control_mailbox(req, res);
        if (!mb) return;
        std::unique_lock lk(data_mu);
        int f = folder_index(*mb, req.has_param("folder") ? req.get_param_value("folder") : "Inbox");
        if (f < 0) {
            res.status = 404;
            return;
        }
        add_message(*mb, f, req.body, std::time(nullptr));
        send_json(res, 200, {{"id", mb->messages.back().id}});
    });
    svr.Post("/_control/remove", [](const httplib::Request& req, httplib::Response& res) {
        Mailbox* mb = control_mailbox(req, res);
        if (!mb) return;
        std::unique_lock lk(data_mu);
        auto it = mb->by_id.find(req.get_param_value("id"));
        if (it == mb->by_id.end()) {
            res.status = 404;
            return;
        }
        mb->messages[it->second].removed = true;
        mb->messages[it->second].change_seq = ++mb->seq;
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/expire-deltas", [](const httplib::Request& req, httplib::Response& res) {
        std::unique_lock lk(data_mu);
        for (auto& mb : mailboxes)
            if (!req.has_param("mailbox") || lower(req.get_param_value("mailbox")) == lower(mb->upn)) mb->generation++;
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/revoke-tokens", [](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lk(token_mu);
        tokens.clear();
        send_json(res, 200, {{"ok", true}});
    });
    svr.Post("/_control/deny", [](const httplib::Request& req, httplib::Response& res) {
        Mailbox* mb = control_mailbox(req, res);
        if (!mb) return;
        mb->denied = req.get_param_value("on") != "0";
        send_json(res, 200, {{"ok", true}});
    });
}

std::vector<std::string> split_list(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string p;
    while (std::getline(ss, p, sep))
        if (!p.empty()) out.push_back(p);
    return out;
}

void usage() {
    std::cerr << "usage: fake-graph [--port N] [--port-file F] (--mbox F | --maildir D | --generate N)... [--limit N]\n"
                 "  [--big-message BYTES] [--mailboxes N] [--mailbox-names a@x,b@x] [--folders 'Inbox,Inbox/Sub,!Hidden,?Search']\n"
                 "  [--tenant T] [--client-id ID] [--client-secret S] [--token-lifetime SEC] [--delegated-token-prefix P] [--sign-in-user UPN]\n"
                 "  [--latency-ms MS] [--concurrency N] [--rate-limit N] [--rate-window SEC] [--concurrency-retry-after SEC]\n"
                 "  [--storm AT:LEN:RETRY_AFTER]... [--fail-503-every N] [--fail-504-every N] [--deny UPN]... [--no-mailbox UPN]...\n"
                 "  [--delta-max-page N] [--threads N] [--quiet]\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= args.size()) {
                usage();
                std::exit(2);
            }
            return args[++i];
        };
        if (a == "--port") opt.port = std::stoi(val());
        else if (a == "--port-file") opt.port_file = val();
        else if (a == "--mbox") opt.mbox_files.push_back(val());
        else if (a == "--maildir") opt.maildirs.push_back(val());
        else if (a == "--limit") opt.limit = std::stol(val());
        else if (a == "--generate") opt.generate = std::stol(val());
        else if (a == "--big-message") opt.big_message = std::stol(val());
        else if (a == "--mailboxes") opt.mailbox_count = std::stoi(val());
        else if (a == "--mailbox-names") opt.mailbox_names = split_list(val(), ',');
        else if (a == "--domain") opt.domain = val();
        else if (a == "--folders") opt.folders = split_list(val(), ',');
        else if (a == "--tenant") opt.tenant = val();
        else if (a == "--client-id") opt.client_id = val();
        else if (a == "--client-secret") opt.client_secret = val();
        else if (a == "--token-lifetime") opt.token_lifetime = std::stol(val());
        else if (a == "--delegated-token-prefix") opt.delegated_token_prefix = val();
        else if (a == "--sign-in-user") sign_in_user = val();
        else if (a == "--latency-ms") opt.latency_ms = std::stoi(val());
        else if (a == "--concurrency") opt.concurrency = std::stoi(val());
        else if (a == "--rate-limit") opt.rate_limit = std::stol(val());
        else if (a == "--rate-window") opt.rate_window = std::stod(val());
        else if (a == "--concurrency-retry-after") opt.conc_retry_after = std::stoi(val());
        else if (a == "--storm") {
            auto p = split_list(val(), ':');
            if (p.size() != 3) { usage(); return 2; }
            opt.storms.push_back({std::stol(p[0]), std::stol(p[1]), std::stol(p[2])});
        } else if (a == "--fail-503-every") opt.fail_503_every = std::stol(val());
        else if (a == "--fail-504-every") opt.fail_504_every = std::stol(val());
        else if (a == "--deny") opt.denied.insert(lower(val()));
        else if (a == "--no-mailbox") opt.no_mailbox.insert(lower(val()));
        else if (a == "--delta-max-page") opt.delta_max_page = std::stol(val());
        else if (a == "--threads") opt.threads = std::stoi(val());
        else if (a == "--quiet") opt.quiet = true;
        else {
            usage();
            return 2;
        }
    }
    std::vector<std::string> raws;
    try {
        for (auto& f : opt.mbox_files) {
            auto v = load_mbox(f);
            for (auto& m : v) raws.push_back(std::move(m));
        }
        for (auto& d : opt.maildirs) {
            auto v = load_maildir(d);
            for (auto& m : v) raws.push_back(std::move(m));
        }
        for (long i = 0; i < opt.generate; ++i) raws.push_back(synthetic_message(i));
        if (opt.limit && static_cast<long>(raws.size()) > opt.limit) raws.resize(opt.limit);
        std::string big;
        if (opt.big_message > 0) big = big_message(opt.big_message);
        build_mailboxes(std::move(raws));
        if (!big.empty()) {
            int inbox = folder_index(*mailboxes[0], "Inbox");
            add_message(*mailboxes[0], inbox < 0 ? 0 : inbox, std::move(big), 1704189600);
        }
    } catch (const std::exception& e) {
        std::cerr << "fake-graph: " << e.what() << "\n";
        return 2;
    }
    std::size_t total = 0;
    for (auto& mb : mailboxes) total += mb->messages.size();
    if (sign_in_user.empty() && !mailboxes.empty()) sign_in_user = mailboxes[0]->upn;

    httplib::Server svr;
    int nthreads = opt.threads;
    svr.new_task_queue = [nthreads] { return new httplib::ThreadPool(static_cast<std::size_t>(nthreads)); };
    svr.set_keep_alive_max_count(1000000);
    svr.set_keep_alive_timeout(60);
    svr.set_read_timeout(60);
    svr.set_write_timeout(120);
    svr.set_tcp_nodelay(true);
    svr.set_payload_max_length(256u << 20);
    svr.Post(R"(/([^/]+)/oauth2/v2\.0/token)", handle_token);
    svr.Post(R"(/([^/]+)/oauth2/v2\.0/devicecode)", handle_devicecode);
    svr.Get(R"(/([^/]+)/oauth2/v2\.0/authorize)", handle_authorize);
    install_delegated_control(svr);
    install_control(svr);
    svr.Get(R"(/v1\.0/.*)", handle_graph);
    svr.Get(R"(/v1\.0)", handle_graph);
    int port = opt.port;
    if (port == 0) {
        port = svr.bind_to_any_port("127.0.0.1");
    } else if (!svr.bind_to_port("127.0.0.1", port)) {
        port = -1;
    }
    if (port <= 0) {
        std::cerr << "fake-graph: cannot bind\n";
        return 2;
    }
    if (!opt.port_file.empty()) {
        std::string tmp = opt.port_file + ".tmp";
        std::ofstream(tmp) << port << "\n";
        fs::rename(tmp, opt.port_file);
    }
    if (!opt.quiet)
        std::cerr << "fake-graph: " << total << " messages in " << mailboxes.size() << " mailboxes, listening on 127.0.0.1:" << port
                  << std::endl;
    std::cout << port << std::endl;
    svr.listen_after_bind();
    return 0;
}
