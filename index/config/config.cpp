#include "index/config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mv {

std::string SourceConfig::get(const std::string& key, const std::string& fallback) const {
    auto it = strings.find(key);
    return it == strings.end() ? fallback : it->second;
}

std::vector<std::string> SourceConfig::get_list(const std::string& key, std::vector<std::string> fallback) const {
    auto it = lists.find(key);
    if (it != lists.end()) return it->second;
    auto s = strings.find(key);
    if (s != strings.end()) return {s->second};
    return fallback;
}

Result<long> SourceConfig::get_int(const std::string& key, long fallback) const {
    auto it = strings.find(key);
    if (it == strings.end()) return fallback;
    try {
        std::size_t used = 0;
        long v = std::stol(it->second, &used);
        if (used == it->second.size()) return v;
    } catch (...) {
    }
    return fail(Error::Kind::usage, "source '" + name + "': " + key + " must be an integer");
}

Result<bool> SourceConfig::get_bool(const std::string& key, bool fallback) const {
    auto it = strings.find(key);
    if (it == strings.end()) return fallback;
    if (it->second == "true") return true;
    if (it->second == "false") return false;
    return fail(Error::Kind::usage, "source '" + name + "': " + key + " must be true or false");
}

Result<std::string> SourceConfig::secret(const std::string& base) const {
    const std::string who = name.empty() ? type : name;
    if (auto env = strings.find(base + "_env"); env != strings.end()) {
        const char* v = std::getenv(env->second.c_str());
        if (!v || !*v)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_env names environment variable " +
                                                env->second + ", which is not set");
        return std::string(v);
    }
    if (auto file = strings.find(base + "_file"); file != strings.end()) {
        const std::string& f = file->second;
        struct stat st {};
        if (::stat(f.c_str(), &st) != 0)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_file " + f + ": " + std::strerror(errno) +
                                                " (create it, or fix the path)");
        if (::access(f.c_str(), R_OK) != 0)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_file " + f +
                                                ": permission denied (make it readable by the user running mailvault)");
        if (st.st_mode & 077)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_file " + f +
                                                " is readable by group or others; run: chmod 600 " + f);
        std::ifstream in(f, std::ios::binary);
        if (!in)
            return fail(Error::Kind::usage, "source '" + who + "': " + base + "_file " + f + " cannot be read");
        std::stringstream ss;
        ss << in.rdbuf();
        std::string v = ss.str();
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
        return v;
    }
    if (auto plain = strings.find(base); plain != strings.end()) return plain->second;
    return fail(Error::Kind::usage, "source '" + who + "': no " + base + " (set " + base + "_env, " + base + "_file or " + base + ")");
}

Result<bool> SourceConfig::check_secrets() const {
    for (const char* base : k_secret_keys) {
        const std::string b(base);
        if (strings.count(b + "_env") || strings.count(b + "_file")) {
            auto v = secret(b);
            if (!v) return fail(v.error());
        }
    }
    return true;
}

Result<long> parse_duration_seconds(const std::string& text) {
    auto bad = [&] {
        return fail(Error::Kind::usage, "'" + text + "' is not a duration; use e.g. 3600s, 90m, 2h, 1d or 1h30m");
    };
    if (text.empty()) return bad();
    long total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t start = i;
        long n = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            n = n * 10 + (text[i] - '0');
            if (n > 100000000L) return bad();
            ++i;
        }
        if (i == start) return bad();
        long unit = 1;
        if (i < text.size()) {
            switch (text[i]) {
                case 's': unit = 1; break;
                case 'm': unit = 60; break;
                case 'h': unit = 3600; break;
                case 'd': unit = 86400; break;
                default: return bad();
            }
            ++i;
        } else if (start != 0) {
            return bad();  // "1h30": the last number needs a unit
        }
        total += n * unit;
    }
    if (total <= 0) return bad();
    return total;
}

const SourceConfig* Config::source(const std::string& n) const {
    for (const auto& s : sources)
        if (s.name == n) return &s;
    return nullptr;
}

namespace {

std::string scalar_text(const toml::node& n) {
    if (auto s = n.value<std::string>()) return *s;
    if (n.is_boolean()) return *n.value<bool>() ? "true" : "false";
    if (n.is_integer()) return std::to_string(*n.value<int64_t>());
    if (n.is_floating_point()) return std::to_string(*n.value<double>());
    return {};
}

SourceConfig read_table(const toml::table& t) {
    SourceConfig sc;
    for (const auto& [k, v] : t) {
        std::string key(k.str());
        if (const auto* arr = v.as_array()) {
            std::vector<std::string> items;
            for (const auto& e : *arr) items.push_back(scalar_text(e));
            sc.lists[key] = std::move(items);
        } else if (!v.is_table()) {
            sc.strings[key] = scalar_text(v);
        }
    }
    sc.name = sc.get("name");
    sc.type = sc.get("type");
    return sc;
}

// ---- the known keys: adding a key to the file format is one line here ----
enum class KeyType { string, integer, boolean, list };  // list: a string or an array of strings

struct KnownKey {
    const char* section;  // "archive", "links", "serve", "sync", "users.*", "source" ([[source]] and [smtp])
    const char* key;
    KeyType type;
};

constexpr KnownKey k_known_keys[] = {
    {"archive", "path", KeyType::string},
    {"archive", "stemmer", KeyType::string},
    {"archive", "timezone", KeyType::string},
    {"links", "base_url", KeyType::string},
    {"links", "template", KeyType::string},
    {"links", "title_field", KeyType::string},
    {"sync", "deadline", KeyType::string},
    {"index", "attachment_text", KeyType::boolean},
    {"serve", "listen", KeyType::string},
    {"serve", "cert", KeyType::string},
    {"serve", "key", KeyType::string},
    {"serve", "session_idle", KeyType::string},
    {"serve", "session_max", KeyType::string},
    {"serve", "threads", KeyType::integer},
    {"serve", "request_timeout", KeyType::string},
    {"serve", "idle_timeout", KeyType::string},
    {"serve", "per_ip_connections", KeyType::integer},
    {"serve", "result_cache", KeyType::integer},
    {"serve", "block_cache", KeyType::integer},
    {"users.*", "password_hash", KeyType::string},
    {"users.*", "mailboxes", KeyType::list},
    {"users.*", "role", KeyType::string},
    // [[source]] (every type) and [smtp]; secrets (password, client_secret, token, refresh_token)
    // are also accepted as <key>_env and <key>_file.
    {"source", "name", KeyType::string},
    {"source", "type", KeyType::string},
    {"source", "host", KeyType::string},
    {"source", "port", KeyType::integer},
    {"source", "security", KeyType::string},
    {"source", "username", KeyType::string},
    {"source", "password", KeyType::string},
    {"source", "auth", KeyType::string},
    {"source", "auth_required", KeyType::boolean},
    {"source", "ca_file", KeyType::string},
    {"source", "trust_all_certificates", KeyType::boolean},
    {"source", "timeout", KeyType::integer},
    {"source", "connect_timeout", KeyType::integer},
    {"source", "reconnect_attempts", KeyType::integer},
    {"source", "fetch_batch", KeyType::integer},
    {"source", "queue_messages", KeyType::integer},
    {"source", "mailboxes", KeyType::list},
    {"source", "mailbox", KeyType::string},
    {"source", "folders", KeyType::list},
    {"source", "folder", KeyType::string},
    {"source", "exclude", KeyType::list},
    {"source", "include_hidden_folders", KeyType::boolean},
    {"source", "delete_after_archive", KeyType::boolean},
    {"source", "path", KeyType::string},
    {"source", "follow_symlinks", KeyType::boolean},
    {"source", "mbox_format", KeyType::string},
    {"source", "tenant", KeyType::string},
    {"source", "client_id", KeyType::string},
    {"source", "client_secret", KeyType::string},
    {"source", "scope", KeyType::string},
    {"source", "scopes", KeyType::list},
    {"source", "grant_type", KeyType::string},
    {"source", "authority_url", KeyType::string},
    {"source", "graph_url", KeyType::string},
    {"source", "redirect_uri", KeyType::string},
    {"source", "oauth", KeyType::string},
    {"source", "token", KeyType::string},
    {"source", "refresh_token", KeyType::string},
    {"source", "page_size", KeyType::integer},
    {"source", "concurrency", KeyType::integer},
    {"source", "parallel_mailboxes", KeyType::integer},
    {"source", "rate_limit", KeyType::integer},
    {"source", "rate_window", KeyType::integer},
    {"source", "retry_base_ms", KeyType::integer},
    {"source", "sender", KeyType::string},
    {"source", "helo", KeyType::string},
    {"source", "report_recipients", KeyType::list},
    {"source", "test_recipients", KeyType::list},
};

constexpr const char* k_known_tables[] = {"archive", "links", "source", "smtp", "users", "serve", "sync", "index"};

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
    std::string best;
    std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
    for (const auto& c : candidates) {
        std::size_t d = edit_distance(word, c);
        if (d < best_d) best_d = d, best = c;
    }
    return best;
}

// The section's keys, secrets with their _env/_file forms.
std::vector<std::string> keys_of(const std::string& section) {
    std::vector<std::string> out;
    for (const auto& k : k_known_keys)
        if (section == k.section) {
            out.emplace_back(k.key);
            if (section == "source")
                for (const char* s : k_secret_keys)
                    if (std::string(k.key) == s) {
                        out.push_back(std::string(s) + "_env");
                        out.push_back(std::string(s) + "_file");
                    }
        }
    return out;
}

KeyType type_of(const std::string& section, const std::string& key) {
    for (const auto& k : k_known_keys)
        if (section == k.section && key == k.key) return k.type;
    return KeyType::string;  // <secret>_env / <secret>_file
}

bool is_integer_text(const std::string& s) {
    if (s.empty()) return false;
    std::size_t i = (s[0] == '-') ? 1 : 0;
    return i < s.size() && std::all_of(s.begin() + i, s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Checks every key of one table; `label` is how the message names it ("archive", "source 'x'", "users.bob").
Result<bool> check_table(const std::filesystem::path& file, const toml::table& t, const std::string& section,
                         const std::string& label) {
    const auto known = keys_of(section);
    for (const auto& [k, v] : t) {
        const std::string key(k.str());
        const std::string where = file.string() + ":" + std::to_string(v.source().begin.line) + ": ";
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            std::string near = nearest(key, known);
            return fail(Error::Kind::usage, where + "unknown key '" + key + "' in " + label +
                                                (near.empty() ? "; remove it (see mailvault.example.toml)"
                                                              : "; did you mean '" + near + "'?"));
        }
        const KeyType type = type_of(section, key);
        bool ok = false;
        const char* want = "";
        switch (type) {
            case KeyType::string:
                ok = v.is_string();
                want = "a string in quotes, e.g. " ;
                break;
            case KeyType::integer:
                ok = v.is_integer() || (v.is_string() && is_integer_text(*v.value<std::string>()));
                want = "a whole number, e.g. ";
                break;
            case KeyType::boolean: {
                auto s = v.value<std::string>();
                ok = v.is_boolean() || (v.is_string() && (*s == "true" || *s == "false"));
                want = "true or false, e.g. ";
                break;
            }
            case KeyType::list:
                ok = v.is_string();
                if (const auto* arr = v.as_array()) {
                    ok = true;
                    for (const auto& e : *arr) ok = ok && e.is_string();
                }
                want = "a string or a list of strings, e.g. ";
                break;
        }
        if (!ok) {
            const char* example = type == KeyType::string    ? "\"...\""
                                  : type == KeyType::integer ? "10"
                                  : type == KeyType::boolean ? "true"
                                                             : "[\"...\"]";
            return fail(Error::Kind::usage, where + label + " key '" + key + "' must be " + want + key + " = " + example);
        }
    }
    return true;
}

bool holds_plain_secret(const toml::table& t) {
    for (const char* s : k_secret_keys)
        if (t.contains(s)) return true;
    return false;
}

// Every table, key and type of the file; the first problem as one line with file, line, key and fix.
Result<bool> validate(const std::filesystem::path& file, const toml::table& root) {
    const std::vector<std::string> tables(std::begin(k_known_tables), std::end(k_known_tables));
    bool secret_inside = false;
    int secret_line = 0;
    for (const auto& [k, v] : root) {
        const std::string name(k.str());
        const std::string where = file.string() + ":" + std::to_string(v.source().begin.line) + ": ";
        if (std::find(tables.begin(), tables.end(), name) == tables.end()) {
            std::string near = nearest(name, tables);
            return fail(Error::Kind::usage, where + "unknown " + (v.is_table() ? "table [" + name + "]" : "key '" + name + "'") +
                                                (near.empty() ? "; remove it (known tables: [archive], [links], [[source]], "
                                                                "[smtp], [users.NAME], [serve], [sync], [index])"
                                                              : "; did you mean [" + near + "]?"));
        }
        if (name == "source") {
            const auto* arr = v.as_array();
            if (!arr) return fail(Error::Kind::usage, where + "source must be written as [[source]] tables");
            for (const auto& node : *arr) {
                const auto* t = node.as_table();
                if (!t) return fail(Error::Kind::usage, where + "[[source]] must be a table");
                std::string label = "[[source]]";
                if (auto n = (*t)["name"].value<std::string>()) label = "source '" + *n + "'";
                auto r = check_table(file, *t, "source", label);
                if (!r) return r;
                if (auto ty = (*t)["type"].value<std::string>()) {
                    const std::vector<std::string> types{"imap", "pop3", "graph", "maildir", "mbox"};
                    if (std::find(types.begin(), types.end(), *ty) == types.end()) {
                        std::string near = nearest(*ty, types);
                        return fail(Error::Kind::usage, file.string() + ":" + std::to_string((*t)["type"].node()->source().begin.line) +
                                                            ": " + label + " type '" + *ty + "' is unknown; " +
                                                            (near.empty() ? "use imap, pop3, graph, maildir or mbox"
                                                                          : "did you mean '" + near + "'?"));
                    }
                }
                if (holds_plain_secret(*t) && !secret_inside) secret_inside = true, secret_line = t->source().begin.line;
            }
            continue;
        }
        const auto* t = v.as_table();
        if (!t) return fail(Error::Kind::usage, where + "'" + name + "' must be a table: write [" + name + "] on a line of its own");
        if (name == "users") {
            for (const auto& [u, un] : *t) {
                const auto* ut = un.as_table();
                const std::string uname(u.str());
                if (!ut)
                    return fail(Error::Kind::usage, file.string() + ":" + std::to_string(un.source().begin.line) +
                                                        ": users." + uname + " must be a table: write [users." + uname + "]");
                auto r = check_table(file, *ut, "users.*", "users." + uname);
                if (!r) return r;
            }
            continue;
        }
        auto r = check_table(file, *t, name == "smtp" ? "source" : name, "[" + name + "]");
        if (!r) return r;
        if (name == "smtp" && holds_plain_secret(*t) && !secret_inside) secret_inside = true, secret_line = t->source().begin.line;
    }
    if (secret_inside) {
        struct stat st {};
        if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077))
            return fail(Error::Kind::usage, file.string() + ":" + std::to_string(secret_line) +
                                                ": holds a password or token but is readable by group or others; run: chmod 600 " +
                                                file.string() + " (or use password_env / password_file)");
    }
    return true;
}

}  // namespace

Result<Config> load_config(const std::filesystem::path& file) {
    Config c;
    c.file = file;
    {
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0)
            return fail(Error::Kind::usage, file.string() + ": cannot read the config file: " + std::strerror(errno) +
                                                " (fix the path given with --config, or create the file)");
        if (S_ISDIR(st.st_mode))
            return fail(Error::Kind::usage, file.string() + ": is a directory; give the config file (mailvault.toml)");
        if (::access(file.c_str(), R_OK) != 0)
            return fail(Error::Kind::usage, file.string() + ": cannot read the config file: permission denied "
                                                            "(run as its owner, or fix its permissions)");
    }
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ":" << e.source().begin.line << ": " << e.description();
        return fail(Error::Kind::usage, msg.str());
    }
    if (auto ok = validate(file, root); !ok) return fail(ok.error());
    if (auto* a = root["archive"].as_table()) {
        c.archive_path = (*a)["path"].value_or(std::string{});
        c.stemmer = (*a)["stemmer"].value_or(std::string{"english"});
        c.timezone = (*a)["timezone"].value_or(std::string{});
    }
    if (auto* ix = root["index"].as_table()) c.attachment_text = (*ix)["attachment_text"].value_or(true);
    if (auto* sy = root["sync"].as_table()) {
        c.sync_deadline = (*sy)["deadline"].value_or(std::string{});
        if (!c.sync_deadline.empty())
            if (auto d = parse_duration_seconds(c.sync_deadline); !d)
                return fail(Error::Kind::usage, file.string() + ": [sync] deadline: " + d.error().message);
    }
    if (auto* l = root["links"].as_table()) {
        c.links_base_url = (*l)["base_url"].value_or(c.links_base_url);
        c.links_template = (*l)["template"].value_or(c.links_template);
        c.links_title_field = (*l)["title_field"].value_or(std::string{});
    }
    if (auto* arr = root["source"].as_array()) {
        for (const auto& node : *arr) {
            const auto* t = node.as_table();
            if (!t) return fail(Error::Kind::usage, file.string() + ": [[source]] must be a table");
            SourceConfig sc = read_table(*t);
            if (sc.name.empty()) return fail(Error::Kind::usage, file.string() + ": a [[source]] has no name");
            if (sc.type.empty()) return fail(Error::Kind::usage, file.string() + ": source '" + sc.name + "' has no type");
            for (const auto& other : c.sources)
                if (other.name == sc.name)
                    return fail(Error::Kind::usage, file.string() + ": source name '" + sc.name + "' is used twice");
            c.sources.push_back(std::move(sc));
        }
    }
    if (auto* s = root["smtp"].as_table()) {
        SourceConfig sc = read_table(*s);
        sc.name = "smtp";
        sc.type = "smtp";
        c.smtp = std::move(sc);
    }
    if (auto* users = root["users"].as_table()) {
        for (const auto& [name, node] : *users) {
            const auto* t = node.as_table();
            if (!t) continue;
            UserConfig u;
            u.name = std::string(name.str());
            u.password_hash = (*t)["password_hash"].value_or(std::string{});
            if (auto* mb = (*t)["mailboxes"].as_array())
                for (const auto& e : *mb) u.mailboxes.push_back(e.value_or(std::string{}));
            u.role = (*t)["role"].value_or(u.role);
            if (u.role != "user" && u.role != "auditor" && u.role != "admin")
                return fail(Error::Kind::usage, file.string() + ": users." + u.name + ".role: use user, auditor or admin");
            c.users.push_back(std::move(u));
        }
    }
    if (auto* s = root["serve"].as_table()) {
        c.serve_listen = (*s)["listen"].value_or(c.serve_listen);
        c.serve_cert = (*s)["cert"].value_or(std::string{});
        c.serve_key = (*s)["key"].value_or(std::string{});
        c.serve_session_idle = (*s)["session_idle"].value_or(c.serve_session_idle);
        c.serve_session_max = (*s)["session_max"].value_or(c.serve_session_max);
        c.serve_threads = (*s)["threads"].value_or(c.serve_threads);
        c.serve_request_timeout = (*s)["request_timeout"].value_or(c.serve_request_timeout);
        c.serve_idle_timeout = (*s)["idle_timeout"].value_or(c.serve_idle_timeout);
        c.serve_per_ip_connections = (*s)["per_ip_connections"].value_or(c.serve_per_ip_connections);
        if (c.serve_per_ip_connections < 1 || c.serve_per_ip_connections > 10000)
            return fail(Error::Kind::usage, file.string() + ": serve.per_ip_connections: use 1 to 10000");
        c.serve_result_cache = (*s)["result_cache"].value_or(c.serve_result_cache);
        if (c.serve_result_cache < 0 || c.serve_result_cache > 100000)
            return fail(Error::Kind::usage, file.string() + ": serve.result_cache: use 0 to 100000");
        c.serve_block_cache = (*s)["block_cache"].value_or(c.serve_block_cache);
        if (c.serve_block_cache < 0 || c.serve_block_cache > 4096)
            return fail(Error::Kind::usage, file.string() + ": serve.block_cache: use 0 to 4096 (MiB per worker thread)");
        if (c.serve_threads < 1 || c.serve_threads > 256)
            return fail(Error::Kind::usage, file.string() + ": serve.threads: use 1 to 256");
    }
    return c;
}

}  // namespace mv
